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
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("qft: cannot start the prompt: {e}");
            return ended(1);
        }
    };
    eprintln!(
        "Connected to {}. Type HELP for the commands, LOGOUT to leave.",
        session.client.remote_address()
    );
    let mut failed = 0;
    loop {
        // rustyline blocks its thread while the user types; keep it off the async workers.
        let (back, line) = match tokio::task::spawn_blocking(move || {
            let line = editor.readline("qft> ");
            (editor, line)
        })
        .await
        {
            Ok(pair) => pair,
            Err(_) => return ended(failed + 1),
        };
        editor = back;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("qft: {e}");
                return ended(failed + 1);
            }
        };
        let _ = editor.add_history_entry(line.as_str());
        match execute(session, &line, true).await {
            Step::Continue(n) => failed += n,
            Step::Stop(n) => return ended(failed + n),
            Step::Interrupted => unreachable!("a terminal prompt cancels, never interrupts"),
        }
    }
    ended(failed)
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
    let failed = tokio::select! {
        failed = session.run(&command) => failed,
        _ = tokio::signal::ctrl_c() => {
            if !at_terminal {
                return Step::Interrupted;
            }
            eprintln!("qft: cancelled");
            1
        }
    };
    if let Some(reason) = session.client.closed() {
        eprintln!("qft: the connection was closed: {reason}");
        return Step::Stop(failed.max(1));
    }
    Step::Continue(failed)
}
