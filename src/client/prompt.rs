//! The prompt: line editing on a terminal, one command per line from a pipe.

use std::io::IsTerminal;

use rustyline::error::ReadlineError;
use tokio::io::AsyncBufReadExt;

use super::command::{self, Command};
use super::session::Session;

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
    if std::io::stdin().is_terminal() {
        interactive(session).await
    } else {
        batch(session).await
    }
}

async fn interactive(session: &Session) -> Ended {
    eprintln!(
        "Connected to {}. Type HELP for the commands, LOGOUT to leave.",
        session.client.remote_address()
    );
    let mut history: Vec<String> = Vec::new();
    let mut failed = 0;
    loop {
        let line = match read_line(&history).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("qft: {e}");
                return ended(failed + 1);
            }
        };
        if !line.trim().is_empty() {
            history.push(line.clone());
        }
        match execute(session, &line, true).await {
            Step::Continue(n) => failed += n,
            Step::Stop(n) => return ended(failed + n),
            Step::Interrupted => unreachable!("a terminal prompt cancels, never interrupts"),
        }
    }
    ended(failed)
}

/// Reads one line with editing and `history`. `Ok(None)` at end of input (Ctrl-D).
///
/// The editor lives only while a line is read: rustyline takes over SIGINT for its editor's
/// lifetime, and while a command runs Ctrl-C must reach our handler, which cancels the command.
/// It runs on a blocking thread because it blocks while the user types.
async fn read_line(history: &[String]) -> Result<Option<String>, String> {
    let history = history.to_vec();
    let read = tokio::task::spawn_blocking(move || {
        let mut editor =
            rustyline::DefaultEditor::new().map_err(|e| format!("cannot start the prompt: {e}"))?;
        for entry in &history {
            let _ = editor.add_history_entry(entry.as_str());
        }
        loop {
            match editor.readline("qft> ") {
                Ok(line) => return Ok(Some(line)),
                // Ctrl-C at the prompt clears the line, as in a shell.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    read.await.map_err(|e| e.to_string())?
}

async fn batch(session: &Session) -> Ended {
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
        match execute(session, &line, false).await {
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

async fn execute(session: &Session, line: &str, at_terminal: bool) -> Step {
    let command = match command::parse(line) {
        Ok(Some(command)) => command,
        Ok(None) => return Step::Continue(0),
        Err(e) => {
            eprintln!("qft: {e}");
            return Step::Continue(1);
        }
    };
    if command == Command::Logout {
        return Step::Stop(0);
    }
    // Ctrl-C during a command cancels it: dropping it drops its streams (the server sees them
    // reset) and its temp files (removed). At a terminal the session goes on; a script stops.
    let finished = tokio::select! {
        failed = session.run(&command) => Some(failed),
        _ = tokio::signal::ctrl_c() => None,
    };
    // Only now is the cancelled command dropped (with its progress bar): report after that.
    let failed = match finished {
        Some(failed) => failed,
        None if at_terminal => {
            eprintln!("qft: cancelled");
            1
        }
        None => return Step::Interrupted,
    };
    if let Some(reason) = session.client.closed() {
        eprintln!("qft: the connection was closed: {reason}");
        return Step::Stop(failed.max(1));
    }
    Step::Continue(failed)
}
