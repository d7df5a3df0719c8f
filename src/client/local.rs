//! The prompt's local side, as sftp has it: `lls`, `lcd`, `lpwd`, `!command`, and `~` in local
//! paths. The local working directory is the process's own, so relative paths in `put` and
//! downloads without `-o` follow it, and so does the completion of local paths.

use std::path::{Path, PathBuf};

use super::ClientError;
use crate::protocol::Entry;

/// A local directory's entries in the shape of a remote listing, so they print the same way;
/// a file is shown alone, as `ls FILE` shows it. Symlinks are shown as what they are, not
/// followed.
pub fn list(dir: &Path) -> Result<Vec<Entry>, ClientError> {
    let meta = dir.metadata().map_err(ClientError::local(dir))?;
    if !meta.is_dir() {
        let name = dir.file_name().unwrap_or(dir.as_os_str());
        let name = name.to_string_lossy().into_owned();
        return Ok(vec![crate::fsutil::entry(name, &meta)]);
    }
    let read = std::fs::read_dir(dir).map_err(ClientError::local(dir))?;
    let mut entries = Vec::new();
    for item in read.filter_map(Result::ok) {
        let Ok(meta) = item.path().symlink_metadata() else {
            continue;
        };
        let name = item.file_name().to_string_lossy().into_owned();
        entries.push(crate::fsutil::entry(name, &meta));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// `lcd`: changes the local working directory (home without an argument).
pub fn change_dir(dir: Option<&Path>) -> Result<PathBuf, ClientError> {
    let target = match dir {
        Some(dir) => dir.to_path_buf(),
        None => home()?,
    };
    std::env::set_current_dir(&target).map_err(ClientError::local(&target))?;
    current_dir()
}

/// `lpwd`: the local working directory.
pub fn current_dir() -> Result<PathBuf, ClientError> {
    std::env::current_dir().map_err(ClientError::local(Path::new(".")))
}

fn home() -> Result<PathBuf, ClientError> {
    dirs::home_dir().ok_or_else(|| ClientError::Unsafe {
        path: PathBuf::from("~"),
        reason: "no home directory is known".into(),
    })
}

/// A local path as typed at the prompt, with a leading `~` (alone or before `/`) standing for
/// the home directory, as a shell has it. `~user` and a `~` elsewhere are left as typed.
pub fn expand_tilde(typed: &str) -> PathBuf {
    let rest = match typed.strip_prefix('~') {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => return PathBuf::from(typed),
    };
    match dirs::home_dir() {
        Some(home) if rest.is_empty() => home,
        Some(home) => home.join(rest),
        None => PathBuf::from(typed),
    }
}

/// `!command`: runs `command` with the user's shell (`$SHELL`, else `/bin/sh`), or the shell
/// itself for `None`, with the terminal handed over, and waits for it. `stdin` says whether it
/// may read the prompt's input: not when that input is a script, whose next lines it would eat.
/// Ctrl-C meanwhile is the child's business (it is in the same process group, so it gets it);
/// the prompt only keeps it from ending qft. A command that fails is a failure (a script stops);
/// the shell itself is not judged by how it exits.
pub async fn shell(command: Option<&str>, stdin: bool) -> Result<(), ClientError> {
    let program = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut cmd = std::process::Command::new(&program);
    if let Some(command) = command {
        cmd.arg("-c").arg(command);
    }
    if !stdin {
        cmd.stdin(std::process::Stdio::null());
    }
    let shown = PathBuf::from(&program);
    let mut wait = tokio::task::spawn_blocking(move || cmd.status());
    let status = loop {
        tokio::select! {
            status = &mut wait => break status,
            _ = tokio::signal::ctrl_c() => continue,
        }
    };
    let status = status
        .map_err(|e| ClientError::local(&shown)(std::io::Error::other(e)))?
        .map_err(ClientError::local(&shown))?;
    // An interactive shell's status is that of the last thing typed in it: no verdict on `!`.
    if status.success() || command.is_none() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was ended by a signal".to_owned(),
    };
    Err(ClientError::Local {
        path: PathBuf::from(format!("!{}", command.unwrap_or(""))),
        source: std::io::Error::other(how),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tilde_is_the_home_directory() {
        let Some(home) = dirs::home_dir() else { return };
        assert_eq!(expand_tilde("~"), home);
        assert_eq!(expand_tilde("~/a/b"), home.join("a/b"));
        assert_eq!(expand_tilde("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(expand_tilde("a/~"), PathBuf::from("a/~"));
    }

    #[test]
    fn a_file_lists_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), b"abc").unwrap();
        let entries = list(&dir.path().join("f.txt")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].name.as_str(), entries[0].size), ("f.txt", 3));
    }
}
