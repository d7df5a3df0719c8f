//! The prompt: line editing on a terminal, one command per line from a pipe.

use std::io::IsTerminal;

use rustyline::error::ReadlineError;
use tokio::io::AsyncBufReadExt;

use super::command::{self, Command};
use super::session::Session;

/// Reads and runs commands until LOGOUT, end of input or a lost connection. Returns how many
/// commands failed.
pub async fn run(session: &Session) -> usize {
    if std::io::stdin().is_terminal() {
        interactive(session).await
    } else {
        batch(session).await
    }
}

async fn interactive(session: &Session) -> usize {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("qft: cannot start the prompt: {e}");
            return 1;
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
            Err(_) => return failed + 1,
        };
        editor = back;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("qft: {e}");
                return failed + 1;
            }
        };
        let _ = editor.add_history_entry(line.as_str());
        match execute(session, &line).await {
            Step::Continue(n) => failed += n,
            Step::Stop(n) => return failed + n,
        }
    }
    failed
}

async fn batch(session: &Session) -> usize {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut failed = 0;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("qft: cannot read commands: {e}");
                return failed + 1;
            }
        };
        match execute(session, &line).await {
            Step::Continue(n) => failed += n,
            Step::Stop(n) => return failed + n,
        }
    }
    failed
}

enum Step {
    Continue(usize),
    Stop(usize),
}

async fn execute(session: &Session, line: &str) -> Step {
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
    let failed = session.run(&command).await;
    if let Some(reason) = session.client.closed() {
        eprintln!("qft: the connection was closed: {reason}");
        return Step::Stop(failed.max(1));
    }
    Step::Continue(failed)
}
