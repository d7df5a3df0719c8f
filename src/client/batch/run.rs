//! Running a [`Plan`]: its transfers in parallel, each as its own task on its own QUIC stream of
//! the one connection, at most `jobs` at a time, with a bar per transfer above a total bar. Each
//! result is reported as it comes, and the summary at the end names every failure again.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinSet;

use super::identical::{compare, Sameness};
use super::plan::{Job, Plan};
use super::Batch;
use crate::client::json::Summary;
use crate::client::output::Format;
use crate::client::progress::Bar;
use crate::client::resume::partial_path;
use crate::client::tree::ensure_dirs;
use crate::client::{Client, ClientError, Keep, TransferReport};

/// How one job ended well.
enum Done {
    /// The file moved and was verified.
    Moved(TransferReport),
    /// A download found the local file already the same as the server's: nothing to do.
    Identical,
}

/// What a skipped identical file is reported with.
const IDENTICAL: &str = "already here, identical (same size and SHA-256)";

/// How one file of a job ended, as the summary counts it.
struct Finished {
    label: String,
    download: bool,
    /// Its size, if known before it moved.
    known: Option<u64>,
    result: Result<Done, ClientError>,
}

impl Job {
    /// Moves the job's files (one, or a bundle's), with `bar` showing its progress.
    async fn run(self, client: Client, force: bool, keep: Keep, bar: Bar) -> Vec<Finished> {
        if let Job::Bundle { files, sizes } = self {
            bar.set_length(sizes.iter().sum());
            let results = client.upload_bundle(&files, keep, &bar).await;
            let each = files.into_iter().zip(sizes).zip(results);
            return each
                .map(|(((path, _), size), result)| Finished {
                    label: path.display().to_string(),
                    download: false,
                    known: Some(size),
                    result: result.map(Done::Moved),
                })
                .collect();
        }
        let (label, download, known) = (self.label(), self.downloads(), self.size());
        let result = self.run_one(client, force, keep, bar).await;
        vec![Finished {
            label,
            download,
            known,
            result,
        }]
    }

    /// Moves the one file, with `bar` showing its progress.
    async fn run_one(
        self,
        client: Client,
        force: bool,
        keep: Keep,
        bar: Bar,
    ) -> Result<Done, ClientError> {
        match self {
            Job::Download {
                name,
                dest,
                under,
                size,
            } => {
                match &under {
                    Some((base, dirs)) => {
                        ensure_dirs(base, dirs)?;
                    }
                    // A place the user chose (`-o new/dir/file`): its directories are made, as
                    // a tree's are.
                    None => {
                        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                            std::fs::create_dir_all(parent).map_err(ClientError::local(parent))?;
                        }
                    }
                }
                // Without -f an existing file is never replaced: if it already is the server's
                // file, there is nothing to do (a re-run); otherwise it is refused.
                if !force {
                    if let Ok(meta) = dest.symlink_metadata() {
                        let may_be_same = meta.is_file() && size.is_none_or(|s| s == meta.len());
                        if may_be_same
                            && compare(&client, &name, &dest).await? == Sameness::Identical
                        {
                            return Ok(Done::Identical);
                        }
                        return Err(ClientError::Exists(dest));
                    }
                }
                match client
                    .download_keeping(&name, &dest, force, keep, &bar)
                    .await
                {
                    Ok(report) => Ok(Done::Moved(report)),
                    Err(e) => Err(unhide(e, &dest)),
                }
            }
            Job::Upload { path, name, .. } => client
                .upload_keeping(&path, &name, keep, &bar)
                .await
                .map(Done::Moved),
            Job::DownloadToStdout { name } => {
                let mut stdout = tokio::io::stdout();
                match client.download_to_writer(&name, &mut stdout, &bar).await {
                    Ok(report) => Ok(Done::Moved(report)),
                    // The reader stopped reading (`| head`): it has what it wanted. Quietly,
                    // with success, as for any output (`display::emit`).
                    Err(ClientError::Local { source, .. })
                        if source.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        std::process::exit(0)
                    }
                    Err(e) => Err(e),
                }
            }
            Job::UploadStdin { name } => client.upload_stdin(&name, &bar).await.map(Done::Moved),
            Job::Bundle { .. } => unreachable!("a bundle runs in `run`"),
        }
    }
}

/// A failure about a download's hidden partial is told about the file the person asked for:
/// the partial's name is qft's business.
fn unhide(e: ClientError, dest: &Path) -> ClientError {
    match e {
        ClientError::Local { path, source } if path == partial_path(dest) => ClientError::Local {
            path: dest.to_path_buf(),
            source,
        },
        other => other,
    }
}

/// Bars of running transfers, cleared at once if the batch is cancelled (the aborted tasks drop
/// their own bars a moment later, which would leave the screen briefly wrong).
struct Active {
    bars: HashMap<tokio::task::Id, (ProgressBar, Option<u64>)>,
    total: Bar,
}

impl Drop for Active {
    fn drop(&mut self) {
        for (bar, _) in self.bars.values() {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}

impl Batch<'_> {
    /// Runs a plan: reports what planning found, makes a tree's directories, then runs the transfers
    /// `jobs` at a time and reports each, and a summary for more than one item.
    pub(super) async fn run(&self, plan: Plan, started: Instant) -> usize {
        let out = self.out;
        let Plan {
            jobs,
            dirs,
            skipped,
            failed,
        } = plan;
        let count: usize = jobs.iter().map(Job::files).sum();
        let items = count + skipped.len() + failed.len();
        let mut summary = Summary::default();
        for s in &skipped {
            out.skipped(&s.name, s.reason);
        }
        summary.skipped = skipped.len();
        for (name, e) in &failed {
            out.failure(Some(name), e);
            summary.failures.push(name.clone());
        }
        for (base, parts) in &dirs {
            if let Err(e) = std::fs::create_dir_all(base).map_err(ClientError::local(base)) {
                out.failure(None, &e);
                summary.failures.push(base.display().to_string());
                break;
            }
            if let Err(e) = ensure_dirs(base, parts) {
                let shown = parts.join("/");
                out.failure(Some(&shown), &e);
                summary.failures.push(shown);
            }
        }

        let planned: u64 = jobs.iter().filter_map(Job::size).sum();
        let mut active = Active {
            bars: HashMap::new(),
            total: if count > 1 {
                out.progress.total()
            } else {
                Bar::hidden()
            },
        };
        let mut queue = jobs.into_iter();
        let mut set = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut finished = 0usize;
        let mut done_bytes = 0u64;
        let mut unplanned_done = 0u64;
        loop {
            while set.len() < self.jobs.max(1) {
                let Some(job) = queue.next() else { break };
                let label = job.label();
                let known = job.size();
                let bar = out.progress.bar(&label, Some(&active.total));
                let watch = (*bar).clone();
                let client = self.client.clone();
                let (force, keep) = (self.force, self.keep);
                let handle = set.spawn(job.run(client, force, keep, bar));
                active.bars.insert(handle.id(), (watch, known));
            }
            let next = tokio::select! {
                next = set.join_next_with_id() => next,
                _ = tick.tick(), if count > 1 && out.progress.enabled() => {
                    let (mut pos, mut len) = (done_bytes, planned + unplanned_done);
                    for (bar, known) in active.bars.values() {
                        pos += bar.position();
                        if known.is_none() {
                            len += bar.length().unwrap_or(0);
                        }
                    }
                    active.total.set_length(len.max(pos));
                    active.total.set_position(pos);
                    active.total.set_message(format!("total {finished}/{count} files"));
                    continue;
                }
            };
            let Some(next) = next else { break };
            match next {
                Ok((id, ended)) => {
                    active.bars.remove(&id);
                    for Finished {
                        label,
                        download,
                        known,
                        result,
                    } in ended
                    {
                        finished += 1;
                        match result {
                            Ok(Done::Identical) => {
                                done_bytes += known.unwrap_or(0);
                                summary.skipped += 1;
                                out.skipped(&label, IDENTICAL);
                            }
                            Ok(Done::Moved(report)) => {
                                done_bytes += report.bytes;
                                if known.is_none() {
                                    unplanned_done += report.bytes;
                                }
                                summary.files += 1;
                                summary.bytes += report.bytes;
                                summary.resumed += report.resumed_from;
                                out.transferred(download, &report);
                            }
                            Err(e) => {
                                if let Some(k) = known {
                                    done_bytes += k;
                                }
                                out.failure(Some(&label), &e);
                                summary.failures.push(label);
                            }
                        }
                    }
                }
                Err(e) => {
                    finished += 1;
                    active.bars.remove(&e.id());
                    let e = ClientError::Interrupted(format!("a transfer task failed: {e}"));
                    out.failure(None, &e);
                    summary.failures.push("(unknown)".into());
                }
            }
        }
        drop(active);
        summary.failed = summary.failures.len();
        summary.seconds = started.elapsed().as_secs_f64();
        if items > 1 || out.format == Format::Json {
            out.summary(&summary);
        }
        summary.failed
    }
}
