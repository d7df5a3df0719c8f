//! Running commands for a person or a script: a [`Session`] dispatches each [`Command`] to the
//! client, and its results and failures to [`super::output`]. The prompt and one-shot use share
//! this; many-file transfers are handed to `batch`, which imports the output module, not this one.

use super::batch::Batch;
use super::command::Command;
use super::output::Output;
use super::progress::Progress;
use super::{Client, ClientError};
use crate::paths::sanitize;
use crate::protocol::EntryKind;

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
    /// Replace existing local files on download.
    pub force: bool,
    /// How many transfers of one command run at once (`-j`).
    pub jobs: usize,
}

/// Transfers run at once unless `-j` says otherwise: enough to hide the round trip each small
/// file costs on a long path (300 files of 4 KiB at 50 ms: 4.5 s with 4 at once, 2.4 s with 8,
/// 1.4 s with 16, 1.4 s with 32), and within the server's default of 32 streams a connection.
/// Large files gain nothing from more (they share one connection's congestion control): with
/// more at once they finish together rather than one after another.
pub const DEFAULT_JOBS: usize = 16;

impl Session {
    /// Runs `command` and returns how many of its operations failed (each already reported).
    /// `Logout` and the prompt's own commands (`cd`, `lcd`...) are the prompt's business and do
    /// nothing here.
    pub async fn run(&self, command: &Command) -> usize {
        let out = self.output();
        match command {
            Command::List { dir } => match self.client.list(dir).await {
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
            } => self.batch().get(names, output.as_deref(), *recursive).await,
            Command::Put {
                paths,
                recursive,
                into,
            } => self.batch().put(paths, *recursive, into).await,
            Command::Delete { names } => self.delete(names).await,
            Command::Shutdown => match self.client.shutdown().await {
                Ok(()) => {
                    out.print("the server is shutting down");
                    0
                }
                Err(e) => out.fail(None, &e),
            },
            _ => 0,
        }
    }

    /// Where this session's results and failures are printed.
    pub(super) fn output(&self) -> Output<'_> {
        Output {
            progress: &self.progress,
            format: self.format,
        }
    }

    /// What a many-file transfer needs from this session.
    fn batch(&self) -> Batch<'_> {
        Batch {
            client: &self.client,
            out: self.output(),
            force: self.force,
            jobs: self.jobs,
        }
    }

    /// DELETE, with patterns matched against the listing. Directories are not deleted.
    async fn delete(&self, names: &[String]) -> usize {
        let out = self.output();
        let mut failed = 0;
        for pattern in names {
            let targets = match self.expand_remote_files(pattern).await {
                Ok(targets) => targets,
                Err(e) => {
                    failed += out.fail(Some(pattern), &e);
                    continue;
                }
            };
            for name in targets {
                match self.client.delete(&name).await {
                    Ok(()) => out.deleted(&name),
                    Err(e) => failed += out.fail(Some(&name), &e),
                }
            }
        }
        failed
    }

    /// The names a DELETE argument stands for: itself, or with wildcards every matching
    /// non-directory (a pattern never deletes a directory's contents).
    async fn expand_remote_files(&self, arg: &str) -> Result<Vec<String>, ClientError> {
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
