//! Many files at once: `get a b c`, `get '*.log'`, `put *.txt`, `get -r DIR`, `put -r DIR`.
//!
//! A command is first turned into a [`Plan`] (patterns matched, trees walked, local places
//! chosen), then its transfers run in parallel, each as its own task on its own QUIC stream of the
//! one connection, at most `jobs` at a time. One failure never stops the others; each is reported
//! as it happens and named again in the summary. Cancelling (dropping the returned future) aborts
//! every task, and each aborted download removes its temp file as it is dropped.
//!
//! A batch gets what it needs from its caller as a [`Batch`] and prints through
//! [`super::output`]; it never sees the session that made it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinSet;

use super::json::Summary;
use super::output::{Format, Output};
use super::pattern::{expand_local, has_wildcards, RemotePattern};
use super::progress::Bar;
use super::remote_path::{join, last};
use super::tree::{ensure_dirs, walk_local, walk_remote, Skipped};
use super::{Client, ClientError, TransferReport};
use crate::paths::{sanitize, NameError, SafeName};
use crate::protocol::{EntryKind, ErrorCode};

/// One file to move.
#[derive(Debug)]
enum Job {
    Download {
        /// The remote name.
        name: String,
        /// Where it goes.
        dest: PathBuf,
        /// For a tree: the chosen directory and the components below it that must be directories
        /// (made, and checked not to be symlinks, just before writing).
        under: Option<(PathBuf, Vec<String>)>,
        /// From the listing, when the name came from one.
        size: Option<u64>,
    },
    Upload {
        /// The local file.
        path: PathBuf,
        /// The remote name.
        name: String,
        /// From the local walk.
        size: Option<u64>,
    },
}

impl Job {
    /// How the job is named in bars, errors and the summary.
    fn label(&self) -> String {
        match self {
            Job::Download { name, .. } => name.clone(),
            Job::Upload { path, .. } => path.display().to_string(),
        }
    }

    fn size(&self) -> Option<u64> {
        match self {
            Job::Download { size, .. } | Job::Upload { size, .. } => *size,
        }
    }

    async fn run(
        self,
        client: Client,
        force: bool,
        bar: Bar,
    ) -> Result<TransferReport, ClientError> {
        match self {
            Job::Download {
                name, dest, under, ..
            } => {
                if let Some((base, dirs)) = &under {
                    ensure_dirs(base, dirs)?;
                }
                client.download(&name, &dest, force, &bar).await
            }
            Job::Upload { path, name, .. } => client.upload(&path, &name, &bar).await,
        }
    }
}

/// What a command will do, worked out before any transfer starts.
#[derive(Debug, Default)]
struct Plan {
    jobs: Vec<Job>,
    /// Local directories of a tree (so empty ones are copied too): base and components.
    dirs: Vec<(PathBuf, Vec<String>)>,
    skipped: Vec<Skipped>,
    /// Failures found while planning, with the name they concern.
    failed: Vec<(String, ClientError)>,
}

impl Plan {
    fn fail(&mut self, name: impl Into<String>, e: ClientError) {
        self.failed.push((name.into(), e));
    }

    fn skip(&mut self, name: String, reason: &'static str) {
        self.skipped.push(Skipped { name, reason });
    }

    fn download(&mut self, name: &str, output: Option<&Path>, many: bool, size: Option<u64>) {
        match local_target(name, output, many) {
            Ok(dest) => self.jobs.push(Job::Download {
                name: name.to_owned(),
                dest,
                under: None,
                size,
            }),
            Err(e) => self.fail(name, e),
        }
    }

    /// A remote tree `name` goes to `<output or .>/<last part of name>/...`.
    fn download_tree(&mut self, name: &str, tree: super::tree::RemoteTree, output: Option<&Path>) {
        // No "./" in front of the paths shown for the current directory.
        let base = output.unwrap_or(Path::new("")).to_path_buf();
        let top = last(name).to_owned();
        for rel in tree.dirs {
            let mut dirs = vec![top.clone()];
            dirs.extend(rel);
            self.dirs.push((base.clone(), dirs));
        }
        for (rel, size) in tree.files {
            let remote = join(name, &rel.join("/"));
            let mut dirs = vec![top.clone()];
            dirs.extend(rel);
            let file = dirs.pop().unwrap_or_default();
            let mut dest = base.clone();
            dest.extend(&dirs);
            dest.push(&file);
            self.jobs.push(Job::Download {
                name: remote,
                dest,
                under: Some((base.clone(), dirs)),
                size: Some(size),
            });
        }
        self.skipped.extend(tree.skipped);
    }

    /// Two remote files that would land on one local path: the first wins, the others fail
    /// (nothing is silently overwritten by its own batch). The same name twice is sent once.
    fn dedupe_downloads(&mut self) {
        let mut seen: HashMap<PathBuf, String> = HashMap::new();
        let mut kept = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if let Job::Download { name, dest, .. } = &job {
                // A file named like another download's partial would be written into it.
                let looks_partial = dest
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".qft-part"));
                if looks_partial {
                    let reason =
                        "a name qft keeps for unfinished downloads; not written".to_string();
                    self.fail(
                        name.clone(),
                        ClientError::Unsafe {
                            path: dest.clone(),
                            reason,
                        },
                    );
                    continue;
                }
                match seen.get(dest) {
                    Some(first) if first == name => continue,
                    Some(first) => {
                        let reason = format!(
                            "would also receive '{}' in this batch; not overwriting",
                            sanitize(first)
                        );
                        self.fail(
                            name.clone(),
                            ClientError::Unsafe {
                                path: dest.clone(),
                                reason,
                            },
                        );
                        continue;
                    }
                    None => {
                        seen.insert(dest.clone(), name.clone());
                    }
                }
            }
            kept.push(job);
        }
        self.jobs = kept;
    }

    /// Two local files that would be stored under one remote name: the second is refused
    /// rather than racing the first (the last to finish would silently win).
    fn dedupe_uploads(&mut self) {
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        let mut kept = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if let Job::Upload { path, name, .. } = &job {
                match seen.get(name) {
                    Some(first) if first == path => continue,
                    Some(first) => {
                        let reason = format!(
                            "would be stored as '{}' like {} in this batch; not sent",
                            sanitize(name),
                            sanitize(&first.display().to_string())
                        );
                        self.fail(
                            name.clone(),
                            ClientError::Unsafe {
                                path: path.clone(),
                                reason,
                            },
                        );
                        continue;
                    }
                    None => {
                        seen.insert(name.clone(), path.clone());
                    }
                }
            }
            kept.push(job);
        }
        self.jobs = kept;
    }
}

/// What a batch needs from whoever runs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batch<'a> {
    /// The connection; each transfer runs on a clone of it.
    pub client: &'a Client,
    /// Where results, failures, bars and the summary go.
    pub out: Output<'a>,
    /// Replace existing local files on download.
    pub force: bool,
    /// How many transfers run at once.
    pub jobs: usize,
}

impl Batch<'_> {
    /// GET: downloads `names` (patterns expanded against the server's listing, directories copied
    /// whole with `recursive`) into `output` or the current directory. Returns how many failed.
    pub async fn get(&self, names: &[String], output: Option<&Path>, recursive: bool) -> usize {
        let started = Instant::now();
        let many = names.len() > 1 || recursive || names.iter().any(|n| has_wildcards(n));
        let mut plan = Plan::default();
        for name in names {
            plan_get(self.client, name, output, recursive, many, &mut plan).await;
        }
        plan.dedupe_downloads();
        self.run(plan, started).await
    }

    /// PUT: uploads local `paths` (patterns expanded on the local disk, directories sent whole
    /// with `recursive`) into the remote directory `into` ("" for the root). Returns how many
    /// failed.
    pub async fn put(&self, paths: &[PathBuf], recursive: bool, into: &str) -> usize {
        let started = Instant::now();
        let mut plan = Plan::default();
        for arg in paths {
            match expand_local(arg) {
                Ok(expanded) => {
                    for path in expanded {
                        plan_put(path, recursive, into, &mut plan).await;
                    }
                }
                Err(e) => plan.fail(arg.display().to_string(), e),
            }
        }
        plan.dedupe_uploads();
        self.run(plan, started).await
    }
}

/// Adds what one GET argument stands for to `plan`.
async fn plan_get(
    client: &Client,
    name: &str,
    output: Option<&Path>,
    recursive: bool,
    many: bool,
    plan: &mut Plan,
) {
    if name.is_empty() {
        let e = ClientError::InvalidName {
            name: String::new(),
            reason: NameError::Empty,
        };
        return plan.fail(name, e);
    }
    if has_wildcards(name) {
        let pattern = match RemotePattern::new(name) {
            Ok(p) => p,
            Err(e) => return plan.fail(name, e),
        };
        let entries = match client.list(&pattern.dir).await {
            Ok(entries) => entries,
            Err(e) => return plan.fail(name, e),
        };
        let mut matched: Vec<_> = entries
            .iter()
            .filter(|e| pattern.matches(&e.name))
            .collect();
        if matched.is_empty() {
            // A name that merely contains a wildcard character is itself.
            matched.extend(entries.iter().find(|e| e.name == last(name)));
        }
        if matched.is_empty() {
            let e = ClientError::NoMatch {
                pattern: sanitize(name),
                remote: true,
            };
            return plan.fail(name, e);
        }
        for entry in matched {
            let full = join(&pattern.dir, &entry.name);
            match entry.kind {
                EntryKind::File => plan.download(&full, output, many, Some(entry.size)),
                EntryKind::Dir if recursive => match walk_remote(client, &full).await {
                    Ok(tree) => plan.download_tree(&full, tree, output),
                    Err(e) => plan.fail(full, e),
                },
                EntryKind::Dir => plan.skip(full, "a directory (use -r to copy it)"),
                EntryKind::Other => plan.skip(full, "not a regular file or directory"),
            }
        }
    } else if recursive {
        if let Err(reason) = SafeName::new(name) {
            let e = ClientError::InvalidName {
                name: sanitize(name),
                reason,
            };
            return plan.fail(name, e);
        }
        match walk_remote(client, name).await {
            Ok(tree) => plan.download_tree(name, tree, output),
            // `get -r FILE` copies the file, as `cp -r` does.
            Err(ClientError::Remote {
                code: ErrorCode::NotADirectory,
                ..
            }) => plan.download(name, output, many, None),
            Err(e) => plan.fail(name, e),
        }
    } else {
        plan.download(name, output, many, None);
    }
}

/// Adds what one local path (already expanded) stands for to `plan`.
async fn plan_put(path: PathBuf, recursive: bool, into: &str, plan: &mut Plan) {
    let label = path.display().to_string();
    // A path named on the command line is followed if it is a link, as every shell tool does;
    // links inside a directory being sent are not.
    let meta = match tokio::fs::metadata(&path).await {
        Ok(meta) => meta,
        Err(source) => return plan.fail(label, ClientError::Local { path, source }),
    };
    let Some(top) = top_name(&path) else {
        let e = ClientError::Unsafe {
            path,
            reason: "has no file name to store it under".into(),
        };
        return plan.fail(label, e);
    };
    let top = join(into, &top);
    if meta.is_file() {
        plan.jobs.push(Job::Upload {
            path,
            name: top,
            size: Some(meta.len()),
        });
    } else if meta.is_dir() && recursive {
        let tree = walk_local(path.clone()).await;
        if tree.files.is_empty() && tree.skipped.is_empty() && tree.failed.is_empty() {
            plan.skip(
                label.clone(),
                "an empty directory (the server makes directories only to hold files)",
            );
        }
        for (file, rel, size) in tree.files {
            plan.jobs.push(Job::Upload {
                path: file,
                name: join(&top, &rel.join("/")),
                size: Some(size),
            });
        }
        plan.skipped.extend(tree.skipped);
        for e in tree.failed {
            plan.fail(label.clone(), e);
        }
    } else if meta.is_dir() {
        let e = ClientError::Unsafe {
            path,
            reason: "is a directory; use -r to send it".into(),
        };
        plan.fail(label, e);
    } else {
        let e = ClientError::Unsafe {
            path,
            reason: "is not a regular file".into(),
        };
        plan.fail(label, e);
    }
}

/// The name a local file or directory is stored under: its last component, or for `.` and `..`
/// the name of the directory they stand for.
fn top_name(path: &Path) -> Option<String> {
    match path.file_name() {
        Some(name) => name.to_str().map(str::to_owned),
        None => path
            .canonicalize()
            .ok()?
            .file_name()?
            .to_str()
            .map(str::to_owned),
    }
}

/// Where a download of `name` goes: `output` itself for one file, else `output` (or the current
/// directory) joined with the name's last component. Only that plain component comes from the
/// network side, and it was validated, so nothing lands outside the chosen directory.
fn local_target(name: &str, output: Option<&Path>, many: bool) -> Result<PathBuf, ClientError> {
    let safe = SafeName::new(name).map_err(|reason| ClientError::InvalidName {
        name: sanitize(name),
        reason,
    })?;
    let file = safe.file_name();
    Ok(match output {
        None => PathBuf::from(file),
        Some(out) if many || out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') => {
            out.join(file)
        }
        Some(out) => out.to_path_buf(),
    })
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
    async fn run(&self, plan: Plan, started: Instant) -> usize {
        let out = self.out;
        let Plan {
            jobs,
            dirs,
            skipped,
            failed,
        } = plan;
        let items = jobs.len() + skipped.len() + failed.len();
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

        let count = jobs.len();
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
                let force = self.force;
                let handle = set.spawn(async move {
                    let download = matches!(job, Job::Download { .. });
                    (label, download, job.run(client, force, bar).await)
                });
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
            finished += 1;
            match next {
                Ok((id, (label, download, result))) => {
                    let known = active.bars.remove(&id).and_then(|(_, k)| k);
                    match result {
                        Ok(report) => {
                            done_bytes += report.bytes;
                            if known.is_none() {
                                unplanned_done += report.bytes;
                            }
                            summary.files += 1;
                            summary.bytes += report.bytes;
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
                Err(e) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_land_under_the_chosen_place() {
        assert_eq!(
            local_target("a/b.txt", None, false).unwrap(),
            PathBuf::from("b.txt")
        );
        assert_eq!(
            local_target("b.txt", Some(Path::new("/tmp/x.bin")), false).unwrap(),
            PathBuf::from("/tmp/x.bin")
        );
        assert_eq!(
            local_target("d/b.txt", Some(Path::new("out")), true).unwrap(),
            PathBuf::from("out/b.txt")
        );
        assert!(local_target("../b.txt", None, false).is_err());
    }

    #[test]
    fn a_tree_lands_under_its_own_name_in_the_chosen_place() {
        let tree = super::super::tree::RemoteTree {
            dirs: vec![vec![], vec!["sub".into()]],
            files: vec![(vec!["sub".into(), "f.txt".into()], 3)],
            skipped: vec![],
        };
        let mut plan = Plan::default();
        plan.download_tree("top/docs", tree, Some(Path::new("out")));
        assert_eq!(
            plan.dirs,
            [
                (PathBuf::from("out"), vec!["docs".to_string()]),
                (PathBuf::from("out"), vec!["docs".into(), "sub".into()])
            ]
        );
        match &plan.jobs[..] {
            [Job::Download {
                name, dest, under, ..
            }] => {
                assert_eq!(name, "top/docs/sub/f.txt");
                assert_eq!(dest, &PathBuf::from("out/docs/sub/f.txt"));
                assert_eq!(
                    under,
                    &Some((PathBuf::from("out"), vec!["docs".into(), "sub".into()]))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_local_files_for_one_remote_name_are_not_both_sent() {
        let mut plan = Plan::default();
        for path in ["a/x", "b/x", "a/x"] {
            plan.jobs.push(Job::Upload {
                path: PathBuf::from(path),
                name: "x".into(),
                size: None,
            });
        }
        plan.dedupe_uploads();
        assert_eq!(plan.jobs.len(), 1, "the first is kept, its repeat dropped");
        assert_eq!(plan.failed.len(), 1, "the other file is refused");
    }

    #[test]
    fn a_remote_file_named_like_a_partial_is_not_downloaded() {
        let mut plan = Plan::default();
        plan.download("f", None, true, None);
        plan.download(".f.qft-part", None, true, None);
        plan.dedupe_downloads();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.failed.len(), 1);
    }

    #[test]
    fn two_names_for_one_local_file_do_not_overwrite_each_other() {
        let mut plan = Plan::default();
        for name in ["a/x", "b/x", "a/x"] {
            plan.download(name, None, true, None);
        }
        plan.dedupe_downloads();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.failed.len(), 1);
        assert_eq!(plan.failed[0].0, "b/x");
    }
}
