//! How a sync tells what it did: a line per action (sent, deleted, made; with `--dry-run`, what
//! it would do), the unchanged ones only as JSON records, and a summary at the end. With
//! `--json` each is a record (`sync`, `sync_summary`; see [`crate::client::json`]).

use console::style;
use indicatif::HumanBytes;

use crate::client::json::{Record, SyncSummary};
use crate::client::output::{Format, Output};
use crate::paths::sanitize;
use crate::transfer::hex;

/// One action, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A file sent (or to be sent).
    Send,
    /// A destination entry removed.
    Delete,
    /// A directory made.
    Mkdir,
    /// A file left as it is (the same on both sides), or left out (not a regular file).
    Skip,
}

impl Action {
    fn word(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Action::Send, false) => "sent",
            (Action::Send, true) => "would send",
            (Action::Delete, false) => "deleted",
            (Action::Delete, true) => "would delete",
            (Action::Mkdir, false) => "made",
            (Action::Mkdir, true) => "would make",
            (Action::Skip, _) => "skipped",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Delete => "delete",
            Action::Mkdir => "mkdir",
            Action::Skip => "skip",
        }
    }
}

/// Reports one action on `name` (its path below the synced directory).
pub fn action(
    out: &Output<'_>,
    what: Action,
    name: &str,
    reason: Option<&str>,
    bytes: Option<u64>,
    sha256: Option<[u8; 32]>,
    dry_run: bool,
) {
    if out.format == Format::Json {
        let record = Record::Sync {
            action: what.key(),
            name: name.to_owned(),
            reason: reason.map(str::to_owned),
            bytes,
            sha256: sha256.as_ref().map(hex),
            dry_run,
        };
        return out.print(&record.line());
    }
    // Unchanged files are counted, not listed; `--quiet` lists nothing.
    if out.quiet || (what == Action::Skip && reason == Some(UNCHANGED)) {
        return;
    }
    let word = what.word(dry_run);
    let name = sanitize(name);
    match out.format {
        Format::Human => {
            let mut line = format!("{word} {name}");
            let detail: Vec<String> = reason
                .map(str::to_owned)
                .into_iter()
                .chain(bytes.map(|b| HumanBytes(b).to_string()))
                .collect();
            if !detail.is_empty() {
                line.push_str(&format!(" ({})", detail.join(", ")));
            }
            out.print(&line);
        }
        _ => out.print(&format!(
            "{word}\t{name}\t{}\t{}",
            bytes.map_or("-".into(), |b| b.to_string()),
            reason.unwrap_or("-")
        )),
    }
}

/// Why an unchanged file is skipped.
pub const UNCHANGED: &str = "unchanged";

/// The end of a sync: on stdout for a person or with `--json`, on stderr for a pipe.
pub fn summary(out: &Output<'_>, s: &SyncSummary) {
    if out.format == Format::Json {
        return out.print(&Record::SyncSummary(s.clone()).line());
    }
    if out.quiet {
        return;
    }
    let would = if s.dry_run {
        " (dry run: nothing changed)"
    } else {
        ""
    };
    let mut text = format!(
        "sync: {} sent ({}), {} unchanged, {} deleted, {} directories made in {:.2} s{would}",
        s.sent,
        HumanBytes(s.bytes),
        s.skipped,
        s.deleted,
        s.made,
        s.seconds
    );
    if s.failed > 0 {
        let names: Vec<String> = s.failures.iter().map(|n| sanitize(n)).collect();
        let failed = format!("; {} failed: {}", s.failed, names.join(", "));
        text.push_str(&match out.format {
            Format::Human => style(failed).red().to_string(),
            _ => failed,
        });
    }
    match out.format {
        Format::Human => out.print(&text),
        _ => out.progress.suspend(|| eprintln!("{text}")),
    }
}
