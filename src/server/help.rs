//! HELP: the server's command reference, as the original design had the server describe itself.

use tokio::io::AsyncWrite;

use super::exchange::{Failure, Outcome};
use crate::protocol::{write_frame, CommandHelp, Response};

/// (name, aliases, usage, summary) for every command, in display order.
const COMMANDS: &[(&str, &[&str], &str, &str)] = &[
    (
        "LIST",
        &["ls"],
        "LIST [dir]",
        "List files with their size and modification time.",
    ),
    (
        "UPLOAD",
        &["put"],
        "UPLOAD <path>",
        "Send a local file; the server stores it under its file name.",
    ),
    (
        "DOWNLOAD",
        &["get"],
        "DOWNLOAD <name>",
        "Fetch a file into the current local directory.",
    ),
    (
        "DELETE",
        &["rm"],
        "DELETE <name>",
        "Delete a file on the server (-r: a directory).",
    ),
    (
        "MKDIR",
        &[],
        "MKDIR <dir>",
        "Make a directory on the server (-p: and parents).",
    ),
    (
        "RMDIR",
        &[],
        "RMDIR <dir>",
        "Remove an empty directory on the server.",
    ),
    (
        "RENAME",
        &["mv"],
        "RENAME <a> <b>",
        "Rename a file or directory; never replaces one.",
    ),
    (
        "STAT",
        &[],
        "STAT <name>",
        "Show size, time, permissions, SHA-256 if known.",
    ),
    (
        "SUM",
        &[],
        "SUM <name>",
        "Print SHA-256 lines for sha256sum -c.",
    ),
    (
        "SYNC",
        &[],
        "SYNC <a> <b>",
        "Make b hold what a holds; one side remote, as :dir.",
    ),
    (
        "DF",
        &[],
        "DF",
        "Show how much more the server can store, as uploads see it.",
    ),
    (
        "SHARE",
        &[],
        "SHARE <name>",
        "Make a link for a browser or qft get (admin only).",
    ),
    ("HELP", &["?"], "HELP", "Show this list."),
    ("LOGOUT", &["quit", "exit"], "LOGOUT", "End the session."),
    (
        "SHUTDOWN",
        &[],
        "SHUTDOWN",
        "Stop the server (clients with the admin permission only).",
    ),
];

/// The command reference as sent to clients.
pub fn commands() -> Vec<CommandHelp> {
    COMMANDS
        .iter()
        .map(|(name, aliases, usage, summary)| CommandHelp {
            name: (*name).into(),
            aliases: aliases.iter().map(|a| (*a).into()).collect(),
            usage: (*usage).into(),
            summary: (*summary).into(),
        })
        .collect()
}

pub(super) async fn run<W: AsyncWrite + Unpin>(send: &mut W) -> Outcome {
    write_frame(
        send,
        &Response::Help {
            commands: commands(),
        },
    )
    .await
    .map_err(Failure::abort)?;
    Ok(0)
}
