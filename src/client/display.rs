//! How results look: human-friendly on a terminal, tab-separated for scripts. Every name from the
//! server is sanitized here before it reaches the terminal.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use indicatif::HumanBytes;

use super::TransferReport;
use crate::paths::sanitize;
use crate::protocol::{CommandHelp, Entry, EntryKind};
use crate::transfer::hex;

/// Writes a line to stdout. A closed pipe (`qft ... list | head`) ends the program quietly with
/// success, as ripgrep does, instead of reporting an error nobody will read.
pub fn emit(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("qft: cannot write output: {e}");
    }
}

/// A listing: `SIZE  DATE  NAME` with human sizes for a person, `BYTES<TAB>RFC3339<TAB>NAME` for a
/// script. Directories end in `/`.
pub fn listing(entries: &[Entry], human: bool) -> String {
    let mut out = String::new();
    for e in entries {
        let name = match e.kind {
            EntryKind::Dir => format!("{}/", sanitize(&e.name)),
            _ => sanitize(&e.name),
        };
        let when = e
            .modified
            .map(|s| {
                humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string()
            })
            .unwrap_or_else(|| "-".into());
        if human {
            let size = match e.kind {
                EntryKind::File => HumanBytes(e.size).to_string(),
                _ => "-".into(),
            };
            // "2026-11-21T15:10:36Z" -> "2026-11-21 15:10" (UTC).
            let short = when.get(..16).map(|w| w.replace('T', " ")).unwrap_or(when);
            out.push_str(&format!("{size:>10}  {short:<16}  {name}\n"));
        } else {
            out.push_str(&format!("{}\t{when}\t{name}\n", e.size));
        }
    }
    if human && entries.is_empty() {
        out.push_str("(empty)\n");
    }
    out.pop();
    out
}

/// The server's command reference as a table.
pub fn help(commands: &[CommandHelp]) -> String {
    let width = commands.iter().map(|c| c.usage.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in commands {
        let aliases = if c.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", sanitize(&c.aliases.join(", ")))
        };
        out.push_str(&format!(
            "  {:<width$}  {}{aliases}\n",
            sanitize(&c.usage),
            sanitize(&c.summary)
        ));
    }
    out.pop();
    out
}

/// One finished transfer. `verb` is "downloaded" or "uploaded".
pub fn transfer(verb: &str, r: &TransferReport, human: bool) -> String {
    let name = sanitize(&r.name);
    if human {
        let secs = r.elapsed.as_secs_f64().max(1e-6);
        let rate = HumanBytes((r.bytes as f64 / secs) as u64);
        format!(
            "{verb} {name} ({} in {secs:.2} s, {rate}/s, SHA-256 verified)",
            HumanBytes(r.bytes)
        )
    } else {
        format!(
            "{verb}\t{name}\t{}\t{}\t{}",
            sanitize(&r.path.display().to_string()),
            r.bytes,
            hex(&r.sha256)
        )
    }
}
