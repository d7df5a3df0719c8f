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
        let when = e.modified.and_then(rfc3339).unwrap_or_else(|| "-".into());
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

/// Seconds since the epoch as RFC 3339 UTC; `None` for times that cannot be shown (a server may
/// send any number, and humantime stops at the year 9999).
pub(super) fn rfc3339(secs: u64) -> Option<String> {
    const YEAR_10000: u64 = 253_402_300_800;
    if secs >= YEAR_10000 {
        return None;
    }
    let when = UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    Some(humantime::format_rfc3339_seconds(when).to_string())
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

/// A command the prompt runs itself, without the server: listed by HELP after the server's.
#[derive(Debug, Clone, Copy)]
pub struct PromptCommand {
    /// The command word.
    pub name: &'static str,
    /// How it is typed.
    pub usage: &'static str,
    /// What it does, one phrase.
    pub summary: &'static str,
}

impl PromptCommand {
    /// In the shape of the server's reference (for `--json`).
    pub fn help(&self) -> CommandHelp {
        CommandHelp {
            name: self.name.to_owned(),
            aliases: Vec::new(),
            usage: self.usage.to_owned(),
            summary: self.summary.to_owned(),
        }
    }
}

/// The prompt's own commands, as sftp has them.
pub const PROMPT_COMMANDS: &[PromptCommand] = &[
    PromptCommand {
        name: "cd",
        usage: "cd [DIR]",
        summary: "the remote directory names are relative to (/ is the top)",
    },
    PromptCommand {
        name: "pwd",
        usage: "pwd",
        summary: "show the remote directory",
    },
    PromptCommand {
        name: "lcd",
        usage: "lcd [DIR]",
        summary: "change the local directory (~ is your home, and the default)",
    },
    PromptCommand {
        name: "lls",
        usage: "lls [-l] [DIR]",
        summary: "list a local directory (or show one file)",
    },
    PromptCommand {
        name: "lpwd",
        usage: "lpwd",
        summary: "show the local directory",
    },
    PromptCommand {
        name: "!",
        usage: "!COMMAND",
        summary: "run COMMAND in a local shell; ! alone starts a shell",
    },
];

/// What HELP at the prompt adds to the server's reference: the prompt's own commands, the
/// options of the transfer commands, and how names are typed.
pub fn prompt_help() -> String {
    let mut out = String::from("The prompt's own commands:\n");
    let width = PROMPT_COMMANDS
        .iter()
        .map(|c| c.usage.len())
        .max()
        .unwrap_or(0);
    for c in PROMPT_COMMANDS {
        out.push_str(&format!("  {:<width$}  {}\n", c.usage, c.summary));
    }
    out.push_str(
        "Options:
  -r          get, put: copy directories with everything in them
  -o PATH     get: where to write: a file for one name, else a directory
  -o REMOTE   put: where to store: a remote directory, or one file's name
              (put FILE... DIR/ stores in DIR too)
  -f          get: replace local files (an identical one is skipped without it)
  -l          ls, lls: accepted; listings are always long
Names:
  Quote names with spaces: get \"my file.txt\" or get my\\ file.txt.
  Wildcards * ? [...] in a name's last part: get '*.log' matches the server's
  names, put *.txt local ones; * skips names starting with a dot.
  ~ in a local path is your home directory.
  A line starting with - may fail without stopping a script or a paste.",
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, modified: Option<u64>) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::File,
            size: 1536,
            modified,
        }
    }

    #[test]
    fn listing_for_scripts_and_people() {
        let entries = [entry("a.txt", Some(0)), entry("evil\x1b[2J", None)];
        assert_eq!(
            listing(&entries, false),
            "1536\t1970-01-01T00:00:00Z\ta.txt\n1536\t-\tevil\\u{1b}[2J"
        );
        let human = listing(&entries, true);
        assert!(
            human.starts_with("  1.50 KiB  1970-01-01 00:00  a.txt\n"),
            "{human:?}"
        );
    }

    #[test]
    fn any_time_a_server_sends_is_shown_without_panicking() {
        for t in [u64::MAX, 253_402_300_800, 253_402_300_799] {
            let text = listing(&[entry("f", Some(t))], false);
            assert!(text.starts_with("1536\t"), "{text}");
        }
        assert_eq!(listing(&[entry("f", Some(u64::MAX))], false), "1536\t-\tf");
    }
}
