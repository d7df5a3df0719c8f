//! Commands as a person types them at the prompt: the original design's names, case-insensitive,
//! with short aliases, each with the options that apply to it (and only those).
//!
//! This module owns the [`Command`] type and the word lists the prompt completes from;
//! [`parse()`] turns a typed line into a `Command`, with each command's options read by `flags`
//! and typos answered by `typo`.

mod flags;
mod parse;
mod typo;

use std::path::PathBuf;

use super::keep::Keep;
use super::share::ShareCommand;
use super::sync::SyncSpec;

pub use parse::parse;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LIST [-l] [dir | file | pattern]`
    List {
        /// "" for the root; a file lists that file alone, a pattern what it matches.
        dir: String,
    },
    /// `DOWNLOAD [-r] [-f] [-o PATH] <name>...`
    Get {
        /// Remote names; wildcards in the last part match against the server's listing.
        names: Vec<String>,
        /// Where to write: a file (one name) or a directory; `None` is the current directory.
        output: Option<PathBuf>,
        /// Copy directories with everything in them.
        recursive: bool,
        /// Replace existing local files (otherwise an identical one is skipped, a different one
        /// refused).
        force: bool,
        /// What the local files keep of the server's (`-p`: the time, `--perms`: the bits).
        keep: Keep,
    },
    /// `UPLOAD [-r] [-o REMOTE] <path>... [REMOTE_DIR/]`
    Put {
        /// Local paths; wildcards are expanded on the local disk. Each is stored under its file
        /// name.
        paths: Vec<PathBuf>,
        /// Send directories with everything in them.
        recursive: bool,
        /// The remote directory names are relative to ("" for the root): the prompt's `cd`.
        into: String,
        /// Where to store, as typed (relative to `into`): a remote directory (several paths, a
        /// tree, a trailing `/`, or a directory that exists) or, for one file, its remote name.
        output: Option<String>,
        /// What the stored files keep of the local ones (`-p`: the time, `--perms`: the bits).
        keep: Keep,
    },
    /// DELETE <name>...
    Delete {
        /// Remote names; wildcards match files (never directories).
        names: Vec<String>,
    },
    /// HELP
    Help,
    /// LOGOUT
    Logout,
    /// SHUTDOWN (admin only)
    Shutdown,
    /// `cd [dir]`: the prompt's remote working directory (the root without an argument).
    Cd {
        /// Relative to the current one; `/` is the root.
        dir: Option<String>,
    },
    /// `pwd`: show the remote working directory.
    Pwd,
    /// `lcd [dir]`: change the local working directory (home without an argument).
    Lcd {
        /// The new directory.
        dir: Option<PathBuf>,
    },
    /// `lls [-l] [dir | file]`: list a local directory (or show one file).
    Lls {
        /// The directory (the current one without an argument).
        dir: Option<PathBuf>,
    },
    /// `lpwd`: show the local working directory.
    Lpwd,
    /// `DF`: how much more the server can store.
    Df,
    /// `!command`: run a local shell command (`!` alone: an interactive shell), as in sftp.
    Shell {
        /// The command line for the shell; `None` for the shell itself.
        command: Option<String>,
    },
    // Managing the server's names, and sync.
    /// `MKDIR [-p] <dir>...`
    Mkdir {
        /// Remote directories to make.
        names: Vec<String>,
        /// Make missing parents; one already there is fine.
        parents: bool,
    },
    /// `RMDIR <dir>...`: remove empty remote directories.
    Rmdir {
        /// Remote directories.
        names: Vec<String>,
    },
    /// `RENAME <from> <to>` (`mv`): into `to` if it is a directory (or ends in `/`).
    Rename {
        /// The remote name.
        from: String,
        /// Its new name, or the directory to move it into.
        to: String,
    },
    /// `STAT [--sha256] <name>...`
    Stat {
        /// Remote names; wildcards match files.
        names: Vec<String>,
        /// Have the server compute the SHA-256 if it does not know it.
        digest: bool,
    },
    /// `SUM <name>...`: `SHA256  NAME` lines, as sha256sum prints them.
    Sum {
        /// Remote names as typed (relative to `into`); wildcards match files.
        names: Vec<String>,
        /// The remote directory names are relative to ("" for the root): the prompt's `cd`.
        /// Lines name files relative to it, as they were typed.
        into: String,
    },
    /// `DELETE -r [-y] <name>...`: a directory and everything in it.
    DeleteTree {
        /// Remote names.
        names: Vec<String>,
        /// Do not ask (and, away from a terminal, where nobody can be asked, proceed).
        yes: bool,
    },
    /// `SYNC [options] SRC DST`: make DST hold what SRC holds.
    Sync(SyncSpec),
    /// `SHARE NAME [options]`, `SHARE --list`, `SHARE --revoke ID` (admin only).
    Share(ShareCommand),
}

/// Every command word the prompt knows, for completion and "did you mean".
pub const WORDS: &[&str] = &[
    "bye", "cd", "delete", "df", "download", "exit", "get", "help", "lcd", "list", "lls", "logout",
    "lpwd", "ls", "mkdir", "mv", "put", "pwd", "quit", "rename", "rm", "rmdir", "share",
    "shutdown", "stat", "sum", "sync", "upload",
];

/// Commands whose arguments are local paths (completed from the local disk).
pub fn takes_local_paths(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "put" | "upload" | "lcd" | "lls"
    )
}

/// Commands whose arguments are remote names (completed from the server's listing), and whether
/// only directories make sense.
pub fn takes_remote_names(word: &str) -> Option<bool> {
    match word.to_lowercase().as_str() {
        "get" | "download" | "rm" | "delete" | "ls" | "list" => Some(false),
        "mv" | "rename" | "stat" | "sum" | "share" => Some(false),
        "cd" | "mkdir" | "rmdir" => Some(true),
        _ => None,
    }
}

/// A GET's names and where it writes: `-o`, or else a last argument that can only be a local
/// path (`/…`, `.`, `..`, `./…`, `../…`, `~…`), as sftp's `get REMOTE LOCAL` and scp's last
/// argument read it. No server name looks like that (they are relative, without `.` or `..`
/// parts), so before this, `get f.bin /tmp/f.bin` downloaded f.bin and then failed on
/// "/tmp/f.bin" as a name. A leading `~` is the home directory, as `-o ~/x` has it at the
/// prompt. Both the prompt's parser and the one-shot command line build a GET through this.
pub fn get_destination(
    mut names: Vec<String>,
    output: Option<PathBuf>,
) -> (Vec<String>, Option<PathBuf>) {
    if output.is_none() && names.len() > 1 && names.last().is_some_and(|l| is_local_path(l)) {
        let last = names.pop().unwrap_or_default();
        return (names, Some(super::local::expand_tilde(&last)));
    }
    (names, output)
}

/// Whether `text` can only name a local path (see [`get_destination`]).
fn is_local_path(text: &str) -> bool {
    matches!(text, "." | ".." | "~")
        || ["/", "./", "../", "~/"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
}

/// A line of a script (or of a paste) that starts with `-` may fail without stopping the lines
/// after it, as in `sftp -b`. Returns whether it may, and the line without the `-`.
pub fn may_fail(line: &str) -> (bool, &str) {
    match line.trim_start().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_get_s_last_argument_is_where_it_goes_only_when_no_server_name_could_be_it() {
        for (typed, wanted, output) in [
            (
                &["f.bin", "/tmp/f.bin"][..],
                &["f.bin"][..],
                Some("/tmp/f.bin"),
            ),
            (&["a", "b", "."], &["a", "b"], Some(".")),
            (&["a", ".."], &["a"], Some("..")),
            (&["a", "./x"], &["a"], Some("./x")),
            (&["a", "../x/"], &["a"], Some("../x/")),
            // Server names, as before.
            (&["a", "b"], &["a", "b"], None),
            (&["a", "docs/"], &["a", "docs/"], None),
            (&["a", ".hidden"], &["a", ".hidden"], None),
            // One argument is always the name.
            (&["/tmp/x"], &["/tmp/x"], None),
        ] {
            let (rest, out) = get_destination(names(typed), None);
            assert_eq!(rest, names(wanted), "{typed:?}");
            assert_eq!(out, output.map(PathBuf::from), "{typed:?}");
        }
        // -o decides where it is given: the last argument stays a name.
        let (rest, out) = get_destination(names(&["a", "/tmp/x"]), Some(PathBuf::from("d")));
        assert_eq!((rest.len(), out), (2, Some(PathBuf::from("d"))));
        // ~ is the home directory, where one is known.
        if let Some(home) = dirs::home_dir() {
            let (_, out) = get_destination(names(&["a", "~/x"]), None);
            assert_eq!(out, Some(home.join("x")));
        }
    }

    #[test]
    fn a_leading_dash_lets_a_line_fail() {
        assert_eq!(may_fail("-rm x"), (true, "rm x"));
        assert_eq!(may_fail("  -cd a"), (true, "cd a"));
        assert_eq!(may_fail("rm -x"), (false, "rm -x"));
    }
}
