//! The prompt: line editing, history and completion on a terminal, one command per line from a
//! pipe. It owns the session's working directories: the remote one (`cd`, `pwd`, against which
//! typed names are resolved) and the local one (`lcd`, `lpwd`, the process's own).

use std::io::IsTerminal;
use std::path::PathBuf;

use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use tokio::io::AsyncBufReadExt;

use super::command::{self, Command};
use super::complete::{QftHelper, RemoteNames};
use super::display::emit;
use super::session::Session;
use super::{local, remote_path, ClientError};

/// The history file in the qft home.
pub const HISTORY_FILE: &str = "history";

/// Lines of history kept.
const HISTORY_SIZE: usize = 1000;

/// How a prompt session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// How many commands failed.
    pub failed: usize,
    /// Ctrl-C stopped a script read from a pipe (at a terminal it only cancels one command).
    pub interrupted: bool,
}

/// Reads and runs commands until LOGOUT, end of input or a lost connection.
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

/// Where history lives: the qft home's file, or (without a home) this session's memory.
enum History {
    File(PathBuf),
    Memory(Vec<String>),
}

struct Prompt<'a> {
    session: &'a Session,
    /// The remote working directory, "" for the root.
    cwd: String,
    /// Completion's cache of remote listings (terminal only).
    names: Option<RemoteNames>,
}

impl Prompt<'_> {
    async fn interactive(&mut self) -> Ended {
        eprintln!(
            "Connected to {}. Type HELP for the commands, LOGOUT to leave.",
            self.session.client.remote_address()
        );
        let mut history = match crate::home::qft_home() {
            Ok(home) => History::File(home.join(HISTORY_FILE)),
            Err(_) => History::Memory(Vec::new()),
        };
        let mut failed = 0;
        loop {
            let helper = QftHelper::new(self.names.clone(), &self.cwd);
            let (line, kept) = match read_line(helper, history).await {
                Ok((Some(line), kept)) => (line, kept),
                Ok((None, _)) => break,
                Err(e) => {
                    eprintln!("qft: {e}");
                    return ended(failed + 1);
                }
            };
            history = kept;
            match self.execute(&line, true).await {
                Step::Continue(n) => failed += n,
                Step::Stop(n) => return ended(failed + n),
                Step::Interrupted => {
                    // A terminal prompt only cancels; count it and go on.
                    failed += 1;
                }
            }
        }
        ended(failed)
    }

    async fn batch(&mut self) -> Ended {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut failed = 0;
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("qft: cannot read commands: {e}");
                    return ended(failed + 1);
                }
            };
            match self.execute(&line, false).await {
                Step::Continue(n) => failed += n,
                Step::Stop(n) => return ended(failed + n),
                Step::Interrupted => {
                    return Ended {
                        failed: failed + 1,
                        interrupted: true,
                    }
                }
            }
        }
        ended(failed)
    }

    async fn execute(&mut self, line: &str, at_terminal: bool) -> Step {
        let command =
            match command::parse(line).and_then(|c| c.map(|c| self.resolve(c)).transpose()) {
                Ok(Some(command)) => command,
                Ok(None) => return Step::Continue(0),
                Err(e) => {
                    eprintln!("qft: {e}");
                    return Step::Continue(1);
                }
            };
        let changes_server = matches!(command, Command::Put { .. } | Command::Delete { .. });
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
                    Some(failed) => failed,
                    None => {
                        eprintln!("qft: cancelled");
                        return if at_terminal {
                            Step::Continue(1)
                        } else {
                            Step::Interrupted
                        };
                    }
                }
            }
        };
        if let Some(reason) = self.session.client.closed() {
            eprintln!("qft: the connection was closed: {reason}");
            return Step::Stop(failed.max(1));
        }
        Step::Continue(failed)
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
            } => Command::Get {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
                output,
                recursive,
            },
            Command::Delete { names } => Command::Delete {
                names: names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
            },
            Command::Put {
                paths, recursive, ..
            } => Command::Put {
                paths,
                recursive,
                into: self.cwd.clone(),
            },
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
                emit(&crate::paths::sanitize(&dir.display().to_string()));
                0
            }
            Err(e) => self.session.output().fail(None, &e),
        }
    }
}

/// Reads one line with editing, completion and history. `None` at end of input (Ctrl-D).
///
/// The editor lives only while a line is read: rustyline takes over SIGINT for its editor's
/// lifetime, and while a command runs Ctrl-C must reach our handler, which cancels the command.
/// So each line gets a new editor, handed the history and the shared completion cache. It runs on
/// a blocking thread because it blocks while the user types.
async fn read_line(
    helper: QftHelper,
    history: History,
) -> Result<(Option<String>, History), String> {
    let read = tokio::task::spawn_blocking(move || {
        let mut history = history;
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .max_history_size(HISTORY_SIZE)
            .and_then(|c| c.history_ignore_dups(true))
            .map_err(|e| e.to_string())?
            .history_ignore_space(true)
            .build();
        let mut editor = rustyline::Editor::<QftHelper, FileHistory>::with_config(config)
            .map_err(|e| format!("cannot start the prompt: {e}"))?;
        editor.set_helper(Some(helper));
        match &history {
            History::File(path) if path.exists() => {
                // An unreadable history costs the recall, not the session.
                let _ = editor.load_history(path);
            }
            History::File(_) => {}
            History::Memory(lines) => {
                for line in lines {
                    let _ = editor.add_history_entry(line.as_str());
                }
            }
        }
        let line = loop {
            match editor.readline("qft> ") {
                Ok(line) => break line,
                // Ctrl-C at the prompt clears the line, as in a shell.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok((None, history)),
                Err(e) => return Err(e.to_string()),
            }
        };
        if !line.trim().is_empty() && editor.add_history_entry(line.as_str()).unwrap_or(false) {
            match &mut history {
                History::File(path) => {
                    if let Err(e) = editor.append_history(path) {
                        eprintln!("qft: cannot save history in {}: {e}", path.display());
                        let lines = editor.history().iter().cloned().collect();
                        history = History::Memory(lines);
                    }
                }
                History::Memory(lines) => lines.push(line.clone()),
            }
        }
        Ok((Some(line), history))
    });
    read.await.map_err(|e| e.to_string())?
}

fn ended(failed: usize) -> Ended {
    Ended {
        failed,
        interrupted: false,
    }
}

enum Step {
    Continue(usize),
    Stop(usize),
    Interrupted,
}
