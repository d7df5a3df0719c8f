//! The prompt's local side, as sftp has it: `lls`, `lcd`, `lpwd`. The local working directory is
//! the process's own, so relative paths in `put` and downloads without `-o` follow it, and so does
//! the completion of local paths.

use std::path::{Path, PathBuf};

use super::ClientError;
use crate::protocol::Entry;

/// A local directory's entries in the shape of a remote listing, so they print the same way.
/// Symlinks are shown as what they are, not followed.
pub fn list(dir: &Path) -> Result<Vec<Entry>, ClientError> {
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
        None => dirs::home_dir().ok_or_else(|| ClientError::Unsafe {
            path: PathBuf::from("~"),
            reason: "no home directory is known".into(),
        })?,
    };
    std::env::set_current_dir(&target).map_err(ClientError::local(&target))?;
    current_dir()
}

/// `lpwd`: the local working directory.
pub fn current_dir() -> Result<PathBuf, ClientError> {
    std::env::current_dir().map_err(ClientError::local(Path::new(".")))
}
