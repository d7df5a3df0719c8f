//! The session's commands on the server's names, as sftp has them: `mkdir [-p]`, `rmdir`,
//! `rename`/`mv`, `stat`, `sum` (lines `sha256sum -c` reads) and `rm -r` (which asks first at a
//! terminal, and elsewhere needs `--yes`). Each prints one line (or record) per name.

use std::io::IsTerminal;

use indicatif::HumanBytes;

use super::json::Record;
use super::output::Format;
use super::remote_path::{join, last, resolve};
use super::session::Session;
use super::ClientError;
use crate::paths::sanitize;
use crate::protocol::{EntryInfo, EntryKind, ErrorCode};
use crate::transfer::hex;

impl Session {
    /// MKDIR: each directory, with its parents if `parents`.
    pub(super) async fn mkdir(&self, names: &[String], parents: bool) -> usize {
        let out = self.output();
        let mut failed = 0;
        for name in names {
            match self.client.make_dir(name, parents).await {
                Ok(()) => self.said("made", name, Record::Made { name: name.clone() }),
                Err(e) => failed += out.fail(Some(name), &e),
            }
        }
        failed
    }

    /// RMDIR: each empty directory.
    pub(super) async fn rmdir(&self, names: &[String]) -> usize {
        let out = self.output();
        let mut failed = 0;
        for name in names {
            match self.client.remove_dir(name).await {
                Ok(()) => self.said("removed", name, Record::Removed { name: name.clone() }),
                Err(e) => failed += out.fail(Some(name), &e),
            }
        }
        failed
    }

    /// RENAME: `from` becomes `to`, or moves into `to` when that is a directory (or ends in `/`),
    /// as `mv` does. An existing file is never replaced.
    pub(super) async fn rename(&self, from: &str, to: &str) -> usize {
        let out = self.output();
        let target = match self.rename_target(from, to).await {
            Ok(target) => target,
            Err(e) => return out.fail(Some(from), &e),
        };
        match self.client.rename(from, &target).await {
            Ok(()) => {
                let record = Record::Renamed {
                    from: from.to_owned(),
                    to: target.clone(),
                };
                let text = format!("{} -> {}", sanitize(from), sanitize(&target));
                self.said_text("renamed", &text, record);
                0
            }
            Err(e) => out.fail(Some(from), &e),
        }
    }

    async fn rename_target(&self, from: &str, to: &str) -> Result<String, ClientError> {
        let into = |dir: &str| join(dir.trim_end_matches('/'), last(from));
        if to.ends_with('/') {
            return Ok(into(to));
        }
        match self.client.stat(to, false).await {
            Ok(info) if info.kind == EntryKind::Dir => Ok(into(to)),
            _ => Ok(to.to_owned()),
        }
    }

    /// STAT: each name (patterns match files), with the SHA-256 when known, or read with
    /// `digest`.
    pub(super) async fn stat(&self, names: &[String], digest: bool) -> usize {
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
                match self.client.stat(&name, digest).await {
                    Ok(info) => self.print_stat(&info),
                    Err(e) => failed += out.fail(Some(&name), &e),
                }
            }
        }
        failed
    }

    fn print_stat(&self, info: &EntryInfo) {
        let out = self.output();
        let kind = match info.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Other => "other",
        };
        let time = info.modified.and_then(super::display::rfc3339);
        let mode = info.mode.map(|m| format!("{m:o}"));
        let sha = info.sha256.as_ref().map(hex);
        let name = sanitize(&info.name);
        match out.format {
            Format::Json => out.print(&Record::stat(info).line()),
            Format::Human => out.print(&format!(
                "{name}: {kind}, {}, modified {}, mode {}, SHA-256 {}",
                HumanBytes(info.size),
                time.as_deref().unwrap_or("unknown"),
                mode.as_deref().unwrap_or("unknown"),
                sha.as_deref()
                    .unwrap_or("not known (stat --sha256 reads the file)")
            )),
            Format::Tsv => out.print(&format!(
                "{name}\t{kind}\t{}\t{}\t{}\t{}",
                info.size,
                time.as_deref().unwrap_or("-"),
                mode.as_deref().unwrap_or("-"),
                sha.as_deref().unwrap_or("-")
            )),
        }
    }

    /// SUM: `SHA256  NAME` for each file (patterns match files), as sha256sum prints it, so that
    /// `sha256sum -c` checks the downloaded copies. Names are shown as typed, relative to `into`.
    pub(super) async fn sum(&self, names: &[String], into: &str) -> usize {
        let out = self.output();
        let mut failed = 0;
        for typed in names {
            let pattern = match resolve(into, typed) {
                Ok(p) => p,
                Err(e) => {
                    failed += out.fail(Some(typed), &e);
                    continue;
                }
            };
            let targets = match self.expand_remote_files(&pattern).await {
                Ok(targets) => targets,
                Err(e) => {
                    failed += out.fail(Some(typed), &e);
                    continue;
                }
            };
            for name in targets {
                let shown = shown_from(into, &name);
                match self.client.stat(&name, true).await {
                    Ok(info) if info.kind != EntryKind::File => {
                        let e = ClientError::Remote {
                            code: ErrorCode::IsADirectory,
                            message: format!("'{}' is not a file", sanitize(&shown)),
                        };
                        failed += out.fail(Some(&shown), &e);
                    }
                    Ok(EntryInfo {
                        sha256: Some(sha256),
                        ..
                    }) => match out.format {
                        Format::Json => out.print(
                            &Record::Sum {
                                name: shown,
                                sha256: hex(&sha256),
                            }
                            .line(),
                        ),
                        _ => out.print(&format!("{}  {}", hex(&sha256), sanitize(&shown))),
                    },
                    Ok(_) => {
                        let e =
                            ClientError::Protocol("a STAT without the SHA-256 asked for".into());
                        failed += out.fail(Some(&shown), &e);
                    }
                    Err(e) => failed += out.fail(Some(&shown), &e),
                }
            }
        }
        failed
    }

    /// DELETE -r: each name, a directory with everything in it. At a terminal each directory is
    /// asked about first; elsewhere nobody can be asked, and `--yes` is needed.
    pub(super) async fn delete_tree(&self, names: &[String], yes: bool) -> usize {
        let out = self.output();
        let at_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let mut failed = 0;
        for name in names {
            if !yes {
                let is_dir = match self.client.stat(name, false).await {
                    Ok(info) => info.kind == EntryKind::Dir,
                    Err(e) => {
                        failed += out.fail(Some(name), &e);
                        continue;
                    }
                };
                if is_dir && !at_terminal {
                    let e = ClientError::Usage(format!(
                        "'{}' is a directory: deleting it with everything in it needs --yes \
                         when nobody is at a terminal to ask",
                        sanitize(name)
                    ));
                    failed += out.fail(Some(name), &e);
                    continue;
                }
                if is_dir && !self.ask(name).await {
                    out.print(&format!("kept {}", sanitize(name)));
                    continue;
                }
            }
            match self.client.delete_tree(name).await {
                Ok(files) => {
                    let record = Record::Deleted {
                        name: name.clone(),
                        files: Some(files),
                    };
                    let plural = if files == 1 { "" } else { "s" };
                    let text = format!("{} ({files} file{plural})", sanitize(name));
                    self.said_text("deleted", &text, record);
                }
                Err(e) => failed += out.fail(Some(name), &e),
            }
        }
        failed
    }

    /// Asks on the terminal whether to delete the directory `name`: only "y" or "yes" is a yes.
    async fn ask(&self, name: &str) -> bool {
        let question = format!(
            "Delete the directory '{}' on the server, with everything in it? [y/N] ",
            sanitize(name)
        );
        self.progress.suspend(|| eprint!("{question}"));
        let answer = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await;
        matches!(answer, Ok(Ok(line)) if matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
    }

    /// One line for a person or a pipe (`verb NAME`), or `record` for `--json`; nothing with
    /// `--quiet`.
    fn said(&self, verb: &str, name: &str, record: Record) {
        self.said_text(verb, &sanitize(name), record)
    }

    fn said_text(&self, verb: &str, text: &str, record: Record) {
        let out = self.output();
        match out.format {
            Format::Json => out.print(&record.line()),
            _ if out.quiet => {}
            Format::Human => out.print(&format!("{verb} {text}")),
            Format::Tsv => out.print(&format!("{verb}\t{text}")),
        }
    }
}

/// `name` as it was typed relative to `into`: without `into/` in front when it is below it.
fn shown_from(into: &str, name: &str) -> String {
    if into.is_empty() {
        return name.to_owned();
    }
    match name.strip_prefix(into).and_then(|r| r.strip_prefix('/')) {
        Some(rest) => rest.to_owned(),
        None => format!("/{name}"),
    }
}
