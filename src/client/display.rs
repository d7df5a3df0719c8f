//! How results look: human-friendly on a terminal, tab-separated for scripts. Every name from the
//! server is sanitized here before it reaches the terminal.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use indicatif::HumanBytes;

use super::{Space, TransferReport};
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
  -p          get, put: keep the modification time; mkdir: make parents
  --perms     get, put, sync: keep the permission bits (never setuid)
  -r [-y]     rm: a directory and all in it (asks first; -y does not)
  --sha256    stat: have the server read the file for its SHA-256
  -l          ls, lls: accepted; listings are always long
Share links (admin; the server runs with --web):
  share NAME [--expires TIME] [--uses N] [--upload-only] [--url URL]
  prints a link to NAME for a browser or qft get LINK (default: 1d, any uses);
  --upload-only: a drop box for a directory; --url: the page as others reach it
  share --list, share --revoke ID: the links, and taking one back
Sync (one side remote, written :dir; : alone is the remote directory):
  sync [--delete] [-n] [-c] [--exclude GLOB] [--exclude-from FILE] SRC DST
  sends new and changed files (size or time; -c: SHA-256) keeping times;
  --delete removes what SRC lacks; -n only prints the plan
Names:
  Quote names with spaces: get \"my file.txt\" or get my\\ file.txt.
  Wildcards * ? [...] in a name's last part: get '*.log' matches the server's
  names, put *.txt local ones; * skips names starting with a dot.
  ~ in a local path is your home directory.
  A line starting with - may fail without stopping a script or a paste.",
    );
    out
}

/// How much more the server can store: a sentence for a person; for a script
/// `AVAILABLE<TAB>MAX_UPLOAD` in bytes, `-` for unknown (S3) or no limit.
pub fn space(space: &Space, human: bool) -> String {
    if !human {
        let field = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        return format!("{}\t{}", field(space.available), field(space.max_upload));
    }
    let mut text = match space.available {
        Some(n) => format!("{} available for uploads", HumanBytes(n)),
        None => "the server cannot tell its free space: its storage has no fixed size \
                 (an S3 bucket)"
            .to_owned(),
    };
    if let Some(max) = space.max_upload {
        text.push_str(&format!(
            "; the largest upload accepted is {}",
            HumanBytes(max)
        ));
    }
    text
}

/// One finished transfer. `verb` is "downloaded" or "uploaded". The rate is of the bytes that
/// moved: a resumed transfer's held part did not.
pub fn transfer(verb: &str, r: &TransferReport, human: bool) -> String {
    let name = sanitize(&r.name);
    if human {
        let secs = r.elapsed.as_secs_f64().max(1e-6);
        let moved = r.bytes.saturating_sub(r.resumed_from);
        let rate = HumanBytes((moved as f64 / secs) as u64);
        let resumed = match r.resumed_from {
            0 => String::new(),
            from => format!(", resumed from {}", HumanBytes(from)),
        };
        format!(
            "{verb} {name} ({} in {secs:.2} s, {rate}/s{resumed}, SHA-256 verified)",
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

    /// Issue 15, item 8: a resumed transfer's rate counted the bytes that were already here.
    #[test]
    fn regression_a_resumed_transfers_rate_counts_only_what_moved() {
        let report = TransferReport {
            name: "big.bin".into(),
            path: "big.bin".into(),
            bytes: 100 << 20,
            sha256: [0; 32],
            elapsed: Duration::from_secs(2),
            resumed_from: 80 << 20,
        };
        assert_eq!(
            transfer("downloaded", &report, true),
            "downloaded big.bin (100.00 MiB in 2.00 s, 10.00 MiB/s, resumed from 80.00 MiB, \
             SHA-256 verified)"
        );
        let whole = TransferReport {
            resumed_from: 0,
            ..report
        };
        assert!(transfer("downloaded", &whole, true).contains("in 2.00 s, 50.00 MiB/s, SHA"));
    }

    #[test]
    fn df_for_people_and_scripts() {
        let known = Space {
            available: Some(3 << 30),
            max_upload: Some(1 << 30),
        };
        assert_eq!(
            space(&known, true),
            "3.00 GiB available for uploads; the largest upload accepted is 1.00 GiB"
        );
        assert_eq!(space(&known, false), "3221225472\t1073741824");
        let s3 = Space {
            available: None,
            max_upload: None,
        };
        assert!(space(&s3, true).contains("cannot tell its free space"));
        assert_eq!(space(&s3, false), "-\t-");
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
