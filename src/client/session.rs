//! Running commands for a person or a script: a [`Session`] dispatches each [`Command`] to the
//! client, and its results and failures to [`super::output`]. The prompt and one-shot use share
//! this; many-file transfers are handed to `batch`, which imports the output module, not this one.

use super::batch::Batch;
use super::command::Command;
use super::output::Output;
use super::progress::Progress;
use super::{Client, ClientError};
use crate::paths::sanitize;
use crate::protocol::{Entry, EntryKind, ErrorCode};

pub use super::output::Format;

/// A connected client and how to present its work.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub client: Client,
    /// Progress bars (or none).
    pub progress: Progress,
    /// How results are printed.
    pub format: Format,
    /// Replace existing local files on download (`qft connect --force`: for every command of
    /// the session; `get -f` asks it for one).
    pub force: bool,
    /// `--quiet`: errors only (see [`Output::quiet`]).
    pub quiet: bool,
    /// How many transfers of one command run at once (`-j`).
    pub jobs: usize,
}

/// Transfers run at once unless `-j` says otherwise: enough to hide the round trip each small
/// file costs on a long path (300 files of 4 KiB at 50 ms: 4.5 s with 4 at once, 2.4 s with 8,
/// 1.4 s with 16, 1.4 s with 32), and within the server's default of 32 streams a connection.
/// Large files gain nothing from more (they share one connection's congestion control): with
/// more at once they finish together rather than one after another.
pub const DEFAULT_JOBS: usize = 16;

/// The most transfers `-j` (or a host's `jobs` in config.toml) may ask for at once: within the
/// server's default of 32 streams a connection, with room for a listing beside them.
pub const MAX_JOBS: u16 = 64;

impl Session {
    /// Runs `command` and returns how many of its operations failed (each already reported).
    /// `Logout` and the prompt's own commands (`cd`, `lcd`...) are the prompt's business and do
    /// nothing here.
    pub async fn run(&self, command: &Command) -> usize {
        let out = self.output();
        match command {
            Command::List { dir } => match self.list(dir).await {
                Ok(entries) => {
                    out.listing(&entries);
                    0
                }
                Err(e) => out.fail(Some(dir), &e),
            },
            Command::Help => match self.client.help().await {
                Ok(commands) => {
                    out.help(&commands);
                    0
                }
                Err(e) => out.fail(None, &e),
            },
            Command::Get {
                names,
                output,
                recursive,
                force,
                keep,
            } => {
                let batch = Batch {
                    force: self.force || *force,
                    keep: *keep,
                    ..self.batch()
                };
                batch.get(names, output.as_deref(), *recursive).await
            }
            Command::Put {
                paths,
                recursive,
                into,
                output,
                keep,
            } => {
                let (paths, output) = destination(paths, output.as_deref());
                let batch = Batch {
                    keep: *keep,
                    ..self.batch()
                };
                batch.put(paths, *recursive, into, output).await
            }
            Command::Delete { names } => self.delete(names).await,
            Command::Df => match self.client.space().await {
                Ok(space) => {
                    out.space(&space);
                    0
                }
                Err(e) => out.fail(None, &e),
            },
            Command::Shutdown => match self.client.shutdown().await {
                Ok(()) => {
                    out.print("the server is shutting down");
                    0
                }
                Err(e) => out.fail(None, &e),
            },
            // Managing the server's names, and sync (`names`, `sync`).
            Command::Mkdir { names, parents } => self.mkdir(names, *parents).await,
            Command::Rmdir { names } => self.rmdir(names).await,
            Command::Rename { from, to } => self.rename(from, to).await,
            Command::Stat { names, digest } => self.stat(names, *digest).await,
            Command::Sum { names, into } => self.sum(names, into).await,
            Command::DeleteTree { names, yes } => self.delete_tree(names, *yes).await,
            Command::Sync(spec) => self.sync(spec).await,
            Command::Share(share) => self.share(share).await,
            _ => 0,
        }
    }

    /// Where this session's results and failures are printed.
    pub fn output(&self) -> Output<'_> {
        Output {
            progress: &self.progress,
            format: self.format,
            quiet: self.quiet,
            data_on_stdout: false,
        }
    }

    /// What a many-file transfer needs from this session.
    fn batch(&self) -> Batch<'_> {
        Batch {
            client: &self.client,
            out: self.output(),
            force: self.force,
            jobs: self.jobs,
            keep: crate::client::Keep::default(),
        }
    }

    /// LIST of a directory; of a file, that file alone; of a pattern, the names it matches (as
    /// `ls` has it).
    async fn list(&self, arg: &str) -> Result<Vec<Entry>, ClientError> {
        use super::pattern::{has_wildcards, RemotePattern};
        use super::remote_path::last;
        let (dir, only) = match self.client.list(arg).await {
            Ok(entries) => return Ok(entries),
            Err(ClientError::Remote {
                code: ErrorCode::NotADirectory,
                ..
            }) => {
                let dir = arg.rsplit_once('/').map_or("", |(dir, _)| dir);
                (dir.to_owned(), Only::Name(last(arg).to_owned()))
            }
            Err(e) if has_wildcards(arg) => match RemotePattern::new(arg) {
                Ok(pattern) => (pattern.dir.clone(), Only::Matching(pattern)),
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let entries = self.client.list(&dir).await?;
        let kept: Vec<Entry> = entries.into_iter().filter(|e| only.keeps(e)).collect();
        if kept.is_empty() {
            return Err(ClientError::NoMatch {
                pattern: sanitize(arg),
                remote: true,
            });
        }
        Ok(kept)
    }

    /// DELETE, with patterns matched against the listing. Directories are not deleted.
    async fn delete(&self, names: &[String]) -> usize {
        let out = self.output();
        let started = std::time::Instant::now();
        let mut summary = super::json::Summary::default();
        for pattern in names {
            let targets = match self.expand_remote_files(pattern).await {
                Ok(targets) => targets,
                Err(e) => {
                    out.failure(Some(pattern), &e);
                    summary.failures.push(pattern.clone());
                    continue;
                }
            };
            for name in targets {
                match self.client.delete(&name).await {
                    Ok(()) => {
                        out.deleted(&name);
                        summary.files += 1;
                    }
                    Err(e) => {
                        out.failure(Some(&name), &e);
                        summary.failures.push(name);
                    }
                }
            }
        }
        summary.failed = summary.failures.len();
        summary.seconds = started.elapsed().as_secs_f64();
        out.json_summary(&summary);
        summary.failed
    }

    /// The names a DELETE argument stands for: itself, or with wildcards every matching
    /// non-directory (a pattern never deletes a directory's contents).
    pub(super) async fn expand_remote_files(&self, arg: &str) -> Result<Vec<String>, ClientError> {
        use super::pattern::{has_wildcards, RemotePattern};
        use super::remote_path::{join, last};
        if !has_wildcards(arg) {
            return Ok(vec![arg.to_owned()]);
        }
        let pattern = RemotePattern::new(arg)?;
        let entries = self.client.list(&pattern.dir).await?;
        let mut names: Vec<String> = entries
            .iter()
            .filter(|e| e.kind != EntryKind::Dir && pattern.matches(&e.name))
            .map(|e| join(&pattern.dir, &e.name))
            .collect();
        if names.is_empty() && entries.iter().any(|e| e.name == last(arg)) {
            names.push(arg.to_owned());
        }
        if names.is_empty() {
            return Err(ClientError::NoMatch {
                pattern: sanitize(arg),
                remote: true,
            });
        }
        Ok(names)
    }
}

/// Where a PUT stores: `-o`, or else a last argument that ends in `/` and is no local path
/// (`put a.txt b.txt docs/`), as scp reads its last argument. A last argument that exists here
/// stays a local path, so nothing that worked before changes meaning.
fn destination<'a>(
    paths: &'a [std::path::PathBuf],
    output: Option<&'a str>,
) -> (&'a [std::path::PathBuf], Option<&'a str>) {
    if output.is_some() {
        return (paths, output);
    }
    match paths.split_last() {
        Some((last, rest)) if !rest.is_empty() => match last.to_str() {
            Some(text) if text.ends_with('/') && last.symlink_metadata().is_err() => {
                (rest, Some(text))
            }
            _ => (paths, None),
        },
        _ => (paths, None),
    }
}

/// What of a directory's listing `ls` shows when it was given a file or a pattern.
enum Only {
    /// The file of this name.
    Name(String),
    /// The names a pattern matches.
    Matching(super::pattern::RemotePattern),
}

impl Only {
    fn keeps(&self, entry: &Entry) -> bool {
        match self {
            Only::Name(name) => entry.name == *name,
            Only::Matching(pattern) => pattern.matches(&entry.name),
        }
    }
}
