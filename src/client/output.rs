//! How the client presents results, shared by the session, the batch runner, the prompt and the
//! command line: the [`Format`] of stdout, and an [`Output`] that prints each kind of result in
//! it and each failure on stderr (and as a JSON record), with the progress bars lifted meanwhile.
//! It imports nothing that runs commands, so everything that does can import it.

use std::io::IsTerminal;

use console::style;
use indicatif::HumanBytes;

use super::display::{self, emit};
use super::json::{Record, Summary};
use super::progress::Progress;
use super::resume::Kept;
use super::{ClientError, Space, TransferReport};
use crate::paths::sanitize;
use crate::protocol::{CommandHelp, Entry, ErrorCode, ShareInfo};

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

/// Where results go: stdout in one [`Format`], failures on stderr, both printed around the bars
/// of one [`Progress`]. Cheap to copy; borrowed from whoever owns the bars.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// The bars to lift off the screen while a line is printed (and to draw new ones on).
    pub progress: &'a Progress,
    /// How results are printed.
    pub format: Format,
    /// `--quiet`: errors only. The per-file lines and summaries of transfers and deletions are
    /// left out (not with `--json`, whose records are a program's contract); what was asked to
    /// be shown (a listing, HELP, pwd) is still shown.
    pub quiet: bool,
    /// Stdout carries a file's bytes (`get NAME -o -`): results go to stderr instead, in the
    /// same format, so nothing but the data reaches stdout.
    pub data_on_stdout: bool,
}

impl Output<'_> {
    /// Whether per-file chatter is left out.
    fn hushed(&self) -> bool {
        self.quiet && self.format != Format::Json
    }

    /// Writes a result line on stdout, with any progress bars lifted off the screen meanwhile.
    pub fn print(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.data_on_stdout {
            true => self.progress.suspend(|| eprintln!("{text}")),
            false => self.progress.suspend(|| emit(text)),
        }
    }

    /// Reports a failure (see [`Output::failure`]); returns 1 to count it.
    pub fn fail(&self, name: Option<&str>, e: &ClientError) -> usize {
        self.failure(name, e);
        1
    }

    /// Reports a failure on stderr, and as a record with `--json`. `name` is what it concerns:
    /// added to the sentence when the sentence does not say it.
    pub fn failure(&self, name: Option<&str>, e: &ClientError) {
        let message = e.to_string();
        let text = match name.map(sanitize) {
            Some(n) if !n.is_empty() && !message.contains(&n) => {
                format!("{n}: {}", hint(e, &message))
            }
            _ => hint(e, &message),
        };
        self.progress.suspend(|| eprintln!("qft: {text}"));
        if self.format == Format::Json {
            self.print(&Record::error(e, name).line());
        }
    }

    /// A directory listing (remote, or local for `lls`).
    pub fn listing(&self, entries: &[Entry]) {
        match self.format {
            Format::Json => {
                for e in entries {
                    self.print(&Record::entry(e).line());
                }
            }
            Format::Human => self.print(&display::listing(entries, true)),
            Format::Tsv => self.print(&display::listing(entries, false)),
        }
    }

    /// How much more the server can store (`df`).
    pub fn space(&self, space: &Space) {
        match self.format {
            Format::Json => self.print(&Record::space(space).line()),
            Format::Human => self.print(&display::space(space, true)),
            Format::Tsv => self.print(&display::space(space, false)),
        }
    }

    /// The server's command reference.
    pub fn help(&self, commands: &[CommandHelp]) {
        match self.format {
            Format::Json => {
                for c in commands {
                    self.print(&Record::command(c).line());
                }
            }
            _ => self.print(&display::help(commands)),
        }
    }

    /// The prompt's own part of HELP, after the server's: what the client does itself.
    pub fn prompt_help(&self) {
        match self.format {
            Format::Json => {
                for c in display::PROMPT_COMMANDS {
                    self.print(&Record::command(&c.help()).line());
                }
            }
            _ => self.print(&display::prompt_help()),
        }
    }

    /// A script (or a paste) stopped at a line that failed: on stderr, and as an error record
    /// with `--json` (code `stopped`), so a program learns that the lines after it did not run.
    pub fn stopped(&self, text: &str) {
        self.progress.suspend(|| eprintln!("qft: {text}"));
        if self.format == Format::Json {
            let record = Record::Error {
                code: "stopped",
                message: text.to_owned(),
                name: None,
                fingerprint: None,
            };
            self.print(&record.line());
        }
    }

    /// A command was cancelled (Ctrl-C): says so on stderr, with the partials it kept.
    pub fn cancelled(&self, kept: &[Kept]) {
        let text = cancelled(kept);
        self.progress.suspend(|| eprintln!("qft: {text}"));
    }

    /// One verified transfer.
    pub fn transferred(&self, download: bool, r: &TransferReport) {
        if self.hushed() {
            return;
        }
        let verb = if download { "downloaded" } else { "uploaded" };
        match self.format {
            Format::Json => self.print(&Record::transfer(download, r).line()),
            Format::Human => self.print(&display::transfer(verb, r, true)),
            Format::Tsv => self.print(&display::transfer(verb, r, false)),
        }
    }

    /// A share link. One just made (`link`) is printed as `qft share` prints it: the link alone
    /// on stdout, what it allows on stderr; without a link, a line of `share --list`.
    pub fn shared(&self, share: &ShareInfo, link: Option<&str>) {
        match (self.format, link) {
            (Format::Json, _) => self.print(&Record::share(share, link).line()),
            (_, Some(link)) => {
                let what = crate::share::summary(share);
                self.progress.suspend(|| eprintln!("{what}"));
                self.print(link);
            }
            (_, None) => self.print(&crate::share::list_line(share, crate::share::now())),
        }
    }

    /// A share link revoked.
    pub fn revoked(&self, id: &str) {
        match self.format {
            Format::Json => self.print(&Record::Revoked { id: id.to_owned() }.line()),
            _ => {
                let id = sanitize(id);
                self.progress.suspend(|| eprintln!("revoked {id}"));
            }
        }
    }

    /// One deleted remote file.
    pub fn deleted(&self, name: &str) {
        if self.hushed() {
            return;
        }
        match self.format {
            Format::Json => self.print(
                &Record::Deleted {
                    name: name.to_owned(),
                    files: None,
                }
                .line(),
            ),
            Format::Human => self.print(&format!("deleted {}", sanitize(name))),
            Format::Tsv => self.print(&format!("deleted\t{}", sanitize(name))),
        }
    }

    /// An entry a command left out, and why.
    pub fn skipped(&self, name: &str, reason: &str) {
        if self.hushed() {
            return;
        }
        match self.format {
            Format::Json => self.print(
                &Record::Skipped {
                    name: name.to_owned(),
                    reason: reason.to_owned(),
                }
                .line(),
            ),
            Format::Human => self.print(&format!("skipped {}: {reason}", sanitize(name))),
            Format::Tsv => self.print(&format!("skipped\t{}\t{reason}", sanitize(name))),
        }
    }

    /// The end of a command that has a summary only for programs (delete): a `summary` record
    /// with `--json`, so that every get, put and delete ends with one; nothing otherwise.
    pub fn json_summary(&self, s: &Summary) {
        if self.format == Format::Json {
            self.print(&Record::Summary(s.clone()).line());
        }
    }

    /// The end of a batch: on stdout for a person or with `--json`; on stderr for a pipe, so
    /// the tab-separated results stay one kind of line.
    pub fn summary(&self, s: &Summary) {
        if self.format == Format::Json {
            return self.print(&Record::Summary(s.clone()).line());
        }
        if self.hushed() {
            return;
        }
        // The rate of what moved: parts that resumed transfers already held did not.
        let moved = s.bytes.saturating_sub(s.resumed);
        let rate = HumanBytes((moved as f64 / s.seconds.max(1e-6)) as u64);
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
            Format::Human => self.print(&text),
            _ => self.progress.suspend(|| eprintln!("{text}")),
        }
    }
}

/// What Ctrl-C left: "cancelled", and where the partials it kept are (they are resumed by the
/// same command, and a person who is not told may think the work is lost, or delete them).
fn cancelled(kept: &[Kept]) -> String {
    let mut downloads = Vec::new();
    let mut uploads = Vec::new();
    for k in kept {
        match k {
            Kept::Download { dest, bytes } => downloads.push((dest, *bytes)),
            Kept::Upload { name } => uploads.push(name),
        }
    }
    let mut said = vec!["cancelled".to_owned()];
    match downloads.as_slice() {
        [] => {}
        [(dest, bytes)] => said.push(format!(
            "kept the {} received of {} (hidden beside it) for the same get to resume",
            HumanBytes(*bytes),
            sanitize(&dest.display().to_string())
        )),
        many => said.push(format!(
            "kept what was received of {} files (hidden beside each) for the same get to resume",
            many.len()
        )),
    }
    match uploads.as_slice() {
        [] => {}
        [name] => said.push(format!(
            "the server keeps what it received of {} for the same put to resume",
            sanitize(name)
        )),
        many => said.push(format!(
            "the server keeps what it received of {} files for the same put to resume",
            many.len()
        )),
    }
    said.join("; ")
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
