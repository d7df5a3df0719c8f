//! Running commands for a person or a script: show progress, print each result on stdout in the
//! chosen [`Format`] and each failure on stderr. The prompt and one-shot use share this; many-file
//! transfers are the `batch` module's.

use std::io::IsTerminal;

use console::style;
use indicatif::HumanBytes;

use super::command::Command;
use super::display::{self, emit};
use super::json::{Record, Summary};
use super::progress::Progress;
use super::{batch, Client, ClientError, TransferReport};
use crate::paths::sanitize;
use crate::protocol::{EntryKind, ErrorCode};

/// How results are written on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For a person at a terminal: aligned columns, human sizes.
    Human,
    /// For a pipe: one tab-separated line per result.
    Tsv,
    /// `--json`: one JSON object per line (see [`super::json`]).
    Json,
}

impl Format {
    /// Human on a terminal, tab-separated otherwise, unless JSON was asked for.
    pub fn detect(json: bool) -> Self {
        match (json, std::io::stdout().is_terminal()) {
            (true, _) => Format::Json,
            (false, true) => Format::Human,
            (false, false) => Format::Tsv,
        }
    }
}

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
        match command {
            Command::List { dir } => match self.client.list(dir).await {
                Ok(entries) => {
                    self.listing(&entries);
                    0
                }
                Err(e) => self.fail(Some(dir), &e),
            },
            Command::Help => match self.client.help().await {
                Ok(commands) => {
                    match self.format {
                        Format::Json => {
                            for c in &commands {
                                self.out(&Record::command(c).line());
                            }
                        }
                        _ => self.out(&display::help(&commands)),
                    }
                    0
                }
                Err(e) => self.fail(None, &e),
            },
            Command::Get {
                names,
                output,
                recursive,
            } => batch::get(self, names, output.as_deref(), *recursive).await,
            Command::Put {
                paths,
                recursive,
                into,
            } => batch::put(self, paths, *recursive, into).await,
            Command::Delete { names } => self.delete(names).await,
            Command::Shutdown => match self.client.shutdown().await {
                Ok(()) => {
                    self.out("the server is shutting down");
                    0
                }
                Err(e) => self.fail(None, &e),
            },
            _ => 0,
        }
    }

    /// DELETE, with patterns matched against the listing. Directories are not deleted.
    async fn delete(&self, names: &[String]) -> usize {
        let mut failed = 0;
        for pattern in names {
            let targets = match self.expand_remote_files(pattern).await {
                Ok(targets) => targets,
                Err(e) => {
                    failed += self.fail(Some(pattern), &e);
                    continue;
                }
            };
            for name in targets {
                match self.client.delete(&name).await {
                    Ok(()) => self.deleted(&name),
                    Err(e) => failed += self.fail(Some(&name), &e),
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

    /// Writes a result line on stdout, with any progress bars lifted off the screen meanwhile.
    fn out(&self, text: &str) {
        if !text.is_empty() {
            self.progress.suspend(|| emit(text));
        }
    }

    /// Reports a failure (on stderr, and as a record with `--json`); returns 1 to count it.
    /// `name` is what it concerns: added to the sentence when the sentence does not say it.
    pub(super) fn fail(&self, name: Option<&str>, e: &ClientError) -> usize {
        self.failure(name, e);
        1
    }

    pub(super) fn failure(&self, name: Option<&str>, e: &ClientError) {
        let message = e.to_string();
        let text = match name.map(sanitize) {
            Some(n) if !n.is_empty() && !message.contains(&n) => {
                format!("{n}: {}", hint(e, &message))
            }
            _ => hint(e, &message),
        };
        self.progress.suspend(|| eprintln!("qft: {text}"));
        if self.format == Format::Json {
            self.out(&Record::error(e, name).line());
        }
    }

    pub(super) fn listing(&self, entries: &[crate::protocol::Entry]) {
        match self.format {
            Format::Json => {
                for e in entries {
                    self.out(&Record::entry(e).line());
                }
            }
            Format::Human => self.out(&display::listing(entries, true)),
            Format::Tsv => self.out(&display::listing(entries, false)),
        }
    }

    pub(super) fn transferred(&self, download: bool, r: &TransferReport) {
        let verb = if download { "downloaded" } else { "uploaded" };
        match self.format {
            Format::Json => self.out(&Record::transfer(download, r).line()),
            Format::Human => self.out(&display::transfer(verb, r, true)),
            Format::Tsv => self.out(&display::transfer(verb, r, false)),
        }
    }

    fn deleted(&self, name: &str) {
        match self.format {
            Format::Json => self.out(
                &Record::Deleted {
                    name: name.to_owned(),
                }
                .line(),
            ),
            Format::Human => self.out(&format!("deleted {}", sanitize(name))),
            Format::Tsv => self.out(&format!("deleted\t{}", sanitize(name))),
        }
    }

    pub(super) fn skipped(&self, name: &str, reason: &str) {
        match self.format {
            Format::Json => self.out(
                &Record::Skipped {
                    name: name.to_owned(),
                    reason: reason.to_owned(),
                }
                .line(),
            ),
            Format::Human => self.out(&format!("skipped {}: {reason}", sanitize(name))),
            Format::Tsv => self.out(&format!("skipped\t{}\t{reason}", sanitize(name))),
        }
    }

    /// The end of a batch: on stdout for a person or with `--json`; on stderr for a pipe, so
    /// the tab-separated results stay one kind of line.
    pub(super) fn summary(&self, s: &Summary) {
        if self.format == Format::Json {
            return self.out(&Record::Summary(s.clone()).line());
        }
        let rate = HumanBytes((s.bytes as f64 / s.seconds.max(1e-6)) as u64);
        let files = if s.files == 1 { "file" } else { "files" };
        let mut text = format!(
            "{} {files}, {} in {:.2} s ({rate}/s)",
            s.files,
            HumanBytes(s.bytes),
            s.seconds
        );
        if s.skipped > 0 {
            text.push_str(&format!(", {} skipped", s.skipped));
        }
        if s.failed > 0 {
            let names: Vec<String> = s.failures.iter().map(|n| sanitize(n)).collect();
            let failed = format!("; {} failed: {}", s.failed, names.join(", "));
            text.push_str(&match self.format {
                Format::Human => style(failed).red().to_string(),
                _ => failed,
            });
        }
        match self.format {
            Format::Human => self.out(&text),
            _ => self.progress.suspend(|| eprintln!("{text}")),
        }
    }
}

/// The sentence for `e`, with a hint where the next step is obvious.
fn hint(e: &ClientError, message: &str) -> String {
    match e {
        ClientError::Remote {
            code: ErrorCode::IsADirectory,
            ..
        } => format!("{message}; use -r to copy a directory"),
        _ => message.to_owned(),
    }
}
