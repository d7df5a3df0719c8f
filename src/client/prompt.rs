//! The prompt: line editing, history and completion on a terminal, one command per line from a
//! pipe. It owns the session's working directories: the remote one (`cd`, `pwd`, against which
//! typed names are resolved) and the local one (`lcd`, `lpwd`, the process's own).
//!
//! Every line is its own command, in the order it came, however it came: typed, typed ahead
//! while a command ran, or pasted (a bracketed paste arrives as one edited text; it is split
//! into its lines here). A script read from a pipe stops at its first line that fails, as
//! `sftp -b` does, and so does a multi-line paste: a `-` in front of a line lets it fail.

use std::io::IsTerminal;
use std::path::PathBuf;

use tokio::io::AsyncBufReadExt;

use super::command::{self, Command};
use super::complete::RemoteNames;
use super::display::emit;
use super::editor::LineEditor;
use super::session::Session;
use super::share::ShareCommand;
use super::{local, remote_path, ClientError};
use crate::paths::sanitize;

pub use super::editor::HISTORY_FILE;

/// How a prompt session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// How many commands failed (a failure a line's leading `-` allowed is not counted).
    pub failed: usize,
    /// Ctrl-C stopped a script read from a pipe (at a terminal it only cancels one command).
    pub interrupted: bool,
}

/// Reads and runs commands until LOGOUT, end of input, a lost connection, or (from a pipe) a
/// command that fails.
pub async fn run(session: &Session) -> Ended {
    let mut prompt = Prompt {
        session,
        cwd: String::new(),
        names: None,
    };
    if std::io::stdin().is_terminal() {
        prompt.names = Some(RemoteNames::new(
            session.client.clone(),
            tokio::runtime::Handle::current(),
        ));
        prompt.interactive().await
    } else {
        prompt.batch().await
    }
}

struct Prompt<'a> {
    session: &'a Session,
    /// The remote working directory, "" for the root.
    cwd: String,
    /// Completion's cache of remote listings (terminal only).
    names: Option<RemoteNames>,
}

/// What running one line came to.
enum Step {
    /// It ran; this many of its operations failed.
    Ran(usize),
    /// The session ends (LOGOUT, a lost connection), with this many failures.
    Stop(usize),
    /// Ctrl-C cancelled it.
    Interrupted,
}

impl Prompt<'_> {
    async fn interactive(&mut self) -> Ended {
        eprintln!(
            "Connected to {}. Type HELP for the commands, LOGOUT to leave.",
            self.session.client.remote_address()
        );
        let mut editor = match LineEditor::open(self.names.clone()) {
            Ok(editor) => editor,
            Err(e) => {
                eprintln!("qft: {e}");
                return ended(1);
            }
        };
        let mut failed = 0;
        loop {
            let text = match editor.read(&self.cwd).await {
                Ok(Some(text)) => text,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("qft: {e}");
                    return ended(failed + 1);
                }
            };
            // A multi-line paste arrives as one text: its lines run one by one, never as one
            // command's arguments.
            let lines: Vec<&str> = text
                .split(['\n', '\r'])
                .filter(|l| !l.trim().is_empty())
                .collect();
            for (i, line) in lines.iter().enumerate() {
                editor.remember(line);
                let (may_fail, line) = command::may_fail(line);
                let left = lines.len() - i - 1;
                match self.execute(line, true).await {
                    Step::Ran(0) => {}
                    Step::Ran(_) if may_fail => {}
                    Step::Ran(n) => {
                        failed += n;
                        if left > 0 {
                            let at = format!("line {} of the paste", i + 1);
                            self.stopped(&at, line, left);
                            break;
                        }
                    }
                    Step::Stop(n) => return ended(failed + n),
                    Step::Interrupted => {
                        // A terminal prompt only cancels; count it and go on, without what was
                        // pasted or typed ahead (the terminal drops what it held, too).
                        failed += 1;
                        if left > 0 {
                            eprintln!("qft: the {} after it not run", lines_text(left));
                        }
                        editor.forget_typed_ahead();
                        break;
                    }
                }
            }
        }
        ended(failed)
    }

    async fn batch(&mut self) -> Ended {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut number = 0usize;
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("qft: cannot read commands: {e}");
                    return ended(1);
                }
            };
            number += 1;
            let (may_fail, line) = command::may_fail(&line);
            match self.execute(line, false).await {
                Step::Ran(0) => {}
                Step::Ran(_) if may_fail => {}
                Step::Ran(n) => {
                    // As sftp -b: a script does not go on after a command that failed (a `cd`
                    // that failed would have the next `rm` delete in the wrong directory).
                    self.stopped(&format!("line {number}"), line, 0);
                    return ended(n);
                }
                Step::Stop(n) => return ended(n),
                Step::Interrupted => {
                    return Ended {
                        failed: 1,
                        interrupted: true,
                    }
                }
            }
        }
        // Every line ran, and none failed but those allowed to.
        ended(0)
    }

    /// Says that a script or paste stopped at `at` (which failed), and how many lines of it
    /// were left unrun when that is known.
    fn stopped(&self, at: &str, line: &str, left: usize) {
        let mut text = format!("stopped at {at}, which failed: {}", sanitize(line.trim()));
        if left > 0 {
            text.push_str(&format!("; the {} after it not run", lines_text(left)));
        }
        text.push_str(" (a '-' in front of a line lets it fail)");
        self.session.output().stopped(&text);
    }

    async fn execute(&mut self, line: &str, at_terminal: bool) -> Step {
        let command =
            match command::parse(line).and_then(|c| c.map(|c| self.resolve(c)).transpose()) {
                Ok(Some(command)) => command,
                Ok(None) => return Step::Ran(0),
                Err(e) => {
                    eprintln!("qft: {e}");
                    return Step::Ran(1);
                }
            };
        let changes_server = matches!(
            command,
            Command::Put { .. }
                | Command::Delete { .. }
                | Command::Mkdir { .. }
                | Command::Rmdir { .. }
                | Command::Rename { .. }
                | Command::DeleteTree { .. }
                | Command::Sync(_)
        );
        let failed = match command {
            Command::Logout => return Step::Stop(0),
            Command::Cd { dir } => self.cd(dir.as_deref().unwrap_or("")).await,
            Command::Pwd => {
                emit(&remote_path::display(&self.cwd));
                0
            }
            Command::Lcd { dir } => match local::change_dir(dir.as_deref()) {
                Ok(_) => 0,
                Err(e) => self.session.output().fail(None, &e),
            },
            Command::Lpwd => self.local(local::current_dir()),
            Command::Lls { dir } => {
                let dir = dir.unwrap_or_else(|| PathBuf::from("."));
                match local::list(&dir) {
                    Ok(entries) => {
                        self.session.output().listing(&entries);
                        0
                    }
                    Err(e) => self.session.output().fail(None, &e),
                }
            }
            Command::Shell { command } => {
                match local::shell(command.as_deref(), at_terminal).await {
                    Ok(()) => 0,
                    Err(e) => self.session.output().fail(None, &e),
                }
            }
            command => {
                // Ctrl-C during a command cancels it: dropping it drops its streams (the server
                // sees them reset) and its temp files (removed). At a terminal the session goes
                // on; a script stops.
                let finished = tokio::select! {
                    failed = self.session.run(&command) => Some(failed),
                    _ = tokio::signal::ctrl_c() => None,
                };
                if changes_server {
                    if let Some(names) = &self.names {
                        names.invalidate();
                    }
                }
                // Only now is the cancelled command dropped (with its bars): report after that.
                match finished {
                    Some(failed) => {
                        if command == Command::Help {
                            self.session.output().prompt_help();
                        }
                        failed
                    }
                    None => {
                        let kept = self.session.client.take_kept();
                        self.session.output().cancelled(&kept);
                        return match at_terminal {
                            true => Step::Ran(1),
                            false => Step::Interrupted,
                        };
                    }
                }
            }
        };
        if let Some(reason) = self.session.client.closed() {
            // Said once: a command that failed because of it has already said why.
            if !self.session.client.close_explained() {
                eprintln!("qft: {reason}");
            }
            return Step::Stop(failed.max(1));
        }
        Step::Ran(failed)
    }

    /// Typed remote names are relative to the remote working directory.
    fn resolve(&self, command: Command) -> Result<Command, String> {
        let resolve = |name: &str| remote_path::resolve(&self.cwd, name).map_err(|e| e.to_string());
        Ok(match command {
            Command::List { dir } => Command::List {
                dir: resolve(&dir)?,
            },
            Command::Get {
                names,
                output,
                recursive,
                force,
                keep,
            } => Command::Get {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
                output,
                recursive,
                force,
                keep,
            },
            Command::Delete { names } => Command::Delete {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
            },
            Command::Put {
                paths,
                recursive,
                output,
                keep,
                ..
            } => Command::Put {
                paths,
                recursive,
                into: self.cwd.clone(),
                output,
                keep,
            },
            // Managing the server's names, and sync.
            Command::Mkdir { names, parents } => Command::Mkdir {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
                parents,
            },
            Command::Rmdir { names } => Command::Rmdir {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
            },
            Command::Rename { from, to } => Command::Rename {
                from: resolve(&from)?,
                // A trailing '/' says "into this directory": kept through the resolution.
                to: match to.ends_with('/') {
                    true => format!("{}/", resolve(&to)?),
                    false => resolve(&to)?,
                },
            },
            Command::Stat { names, digest } => Command::Stat {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
                digest,
            },
            Command::Sum { names, .. } => Command::Sum {
                names,
                into: self.cwd.clone(),
            },
            Command::DeleteTree { names, yes } => Command::DeleteTree {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
                yes,
            },
            Command::Share(ShareCommand::Create {
                name,
                expires,
                upload_only,
                uses,
                url,
            }) => Command::Share(ShareCommand::Create {
                name: resolve(&name)?,
                expires,
                upload_only,
                uses,
                url,
            }),
            Command::Sync(mut spec) => {
                if let Some(remote) = spec.remote_mut() {
                    *remote = resolve(remote)?;
                }
                Command::Sync(spec)
            }
            other => other,
        })
    }

    /// `cd`: the directory must exist on the server; its listing primes completion.
    async fn cd(&mut self, dir: &str) -> usize {
        let target = match remote_path::resolve(&self.cwd, if dir.is_empty() { "/" } else { dir }) {
            Ok(target) => target,
            Err(e) => return self.session.output().fail(None, &e),
        };
        match self.session.client.list(&target).await {
            Ok(entries) => {
                if let Some(names) = &self.names {
                    names.remember(&target, entries);
                }
                self.cwd = target;
                0
            }
            Err(e) => self.session.output().fail(Some(&target), &e),
        }
    }

    fn local(&self, result: Result<PathBuf, ClientError>) -> usize {
        match result {
            Ok(dir) => {
                emit(&sanitize(&dir.display().to_string()));
                0
            }
            Err(e) => self.session.output().fail(None, &e),
        }
    }
}

fn lines_text(n: usize) -> String {
    match n {
        1 => "1 line".to_owned(),
        n => format!("{n} lines"),
    }
}

fn ended(failed: usize) -> Ended {
    Ended {
        failed,
        interrupted: false,
    }
}
