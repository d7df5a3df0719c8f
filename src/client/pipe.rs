//! Pipes: `get NAME -o -` writes one file's bytes to stdout, and `put - --name NAME` stores
//! what stdin gives. The rules for when a command means a pipe, and the checks that such a
//! command can work, made before anything is done; the transfers themselves are
//! [`super::Client::download_to_writer`] and [`super::Client::upload_stdin`].
//!
//! When stdout carries data, nothing else goes there: results, summaries and `--json` records
//! go to stderr ([`super::output::Output::data_on_stdout`]), and progress is on stderr anyway.

use std::path::{Path, PathBuf};

use super::command::Command;
use super::pattern::has_wildcards;
use super::ClientError;

/// The path that means stdout (for `-o`) or stdin (for `put`).
pub const STD_STREAM: &str = "-";

/// Whether a download's `-o` is stdout.
pub fn to_stdout(output: Option<&Path>) -> bool {
    output == Some(Path::new(STD_STREAM))
}

/// Whether an upload reads stdin.
pub fn from_stdin(paths: &[PathBuf]) -> bool {
    paths.iter().any(|p| p == Path::new(STD_STREAM))
}

/// Checks a command that uses stdin or stdout as a file, before anything is done: `Err` says
/// why it cannot work (a usage mistake). Other commands pass.
pub fn check(command: &Command) -> Result<(), ClientError> {
    match command {
        Command::Get {
            names,
            output,
            recursive,
            ..
        } if to_stdout(output.as_deref()) => check_get(names, *recursive),
        Command::Put {
            paths,
            recursive,
            output,
            ..
        } if from_stdin(paths) => check_put(paths, *recursive, output.as_deref()),
        _ => Ok(()),
    }
}

/// `get -o -`: one file, named plainly.
pub(super) fn check_get(names: &[String], recursive: bool) -> Result<(), ClientError> {
    let one = matches!(names, [name] if !has_wildcards(name));
    if !one || recursive {
        return Err(ClientError::Usage(
            "get -o - writes one file to stdout: give one name, without a pattern or -r".into(),
        ));
    }
    Ok(())
}

/// `put -`: stdin alone, and a name to store it as.
pub(super) fn check_put(
    paths: &[PathBuf],
    recursive: bool,
    output: Option<&str>,
) -> Result<(), ClientError> {
    if paths.len() > 1 || recursive {
        return Err(ClientError::Usage(
            "put - reads stdin alone: no other paths, no -r".into(),
        ));
    }
    match output {
        Some(name) if !name.is_empty() && !name.ends_with('/') => Ok(()),
        _ => Err(ClientError::Usage(
            "put - needs a name to store what stdin gives: --name NAME (or -o DIR/NAME)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_are_one_file_with_a_name() {
        assert!(check_get(&["a".into()], false).is_ok());
        assert!(check_get(&["a".into(), "b".into()], false).is_err());
        assert!(check_get(&["*.log".into()], false).is_err());
        assert!(check_get(&["d".into()], true).is_err());
        let stdin = [PathBuf::from("-")];
        assert!(check_put(&stdin, false, Some("x.tar")).is_ok());
        assert!(check_put(&stdin, false, Some("backups/x.tar")).is_ok());
        assert!(check_put(&stdin, false, None).is_err());
        assert!(check_put(&stdin, false, Some("backups/")).is_err());
        assert!(check_put(&[PathBuf::from("-"), PathBuf::from("a")], false, Some("x")).is_err());
    }
}
