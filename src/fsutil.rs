//! Small file helpers that both sides need: the server's local storage, the client's downloads and
//! the TLS files in the qft home. They live here, not in `storage`, so that nothing outside the
//! server imports the server's storage.
//!
//! The rule they share: a file appears under its name only whole and durable. Data goes to a
//! temp file in the same directory (so the rename stays on one filesystem), is fsynced, renamed
//! into place, and the directory is fsynced so that the rename survives a crash too.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// Whether [`write_atomic`] may replace a file already at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Replace it (the old content stays whole until the rename).
    Yes,
    /// Fail with `AlreadyExists` if something is there.
    No,
}

/// Who may read a file written by [`write_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only its owner (0600): private keys.
    Private,
    /// As for any new file (0666 less the umask).
    Normal,
}

/// Writes `contents` to `path` whole or not at all: a temp file beside it (hidden, named after
/// `tag`), fsynced, renamed into place, then the directory fsynced.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    replace: Replace,
    mode: Mode,
    tag: &str,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let prefix = format!(".{tag}-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // tempfile creates its files 0600 on Unix: right for keys, too private for anything else.
    if mode == Mode::Normal {
        builder.permissions(new_file_permissions(path));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    match replace {
        Replace::Yes => tmp.persist(path).map_err(|e| e.error)?,
        Replace::No => tmp.persist_noclobber(path).map_err(|e| e.error)?,
    };
    sync_dir(dir)
}

/// The directory a path's entry lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory so that a rename or unlink in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The mode for a file about to replace `target`: the old file's, so that a replace does not
/// change who may read it; for a new file, 0666 less the umask, as for any program creating a
/// file. (tempfile's default, 0600, would make every transferred file private.)
pub fn new_file_permissions(target: &Path) -> std::fs::Permissions {
    match std::fs::metadata(target) {
        Ok(meta) if meta.is_file() => meta.permissions(),
        #[cfg(unix)]
        _ => std::os::unix::fs::PermissionsExt::from_mode(0o666),
        #[cfg(not(unix))]
        _ => tempfile::tempfile()
            .and_then(|f| f.metadata())
            .map(|m| m.permissions())
            .expect("a temp file to copy default permissions from"),
    }
}

/// Opens `path` with `options` and takes an exclusive lock on it, waiting up to `wait` for
/// another holder; `Ok(None)` if it stays busy. The lock is on the file, the name is what
/// others open: while we waited, the holder may have renamed the file into place or removed
/// it, so the locked file must still be the one at `path` (same device and inode), or we
/// start again with what is there now. Without this, a retry could write into a file already
/// published under its final name.
pub fn open_locked(
    path: &Path,
    options: &std::fs::OpenOptions,
    wait: Duration,
) -> io::Result<Option<std::fs::File>> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let file = options.open(path)?;
        #[cfg(unix)]
        {
            use rustix::fs::{flock, FlockOperation};
            use std::os::unix::fs::MetadataExt;
            while flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                if std::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let locked = file.metadata()?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                    return Ok(Some(file))
                }
                // Renamed or removed while we waited: what we hold is not the partial any more.
                _ => continue,
            }
        }
        #[cfg(not(unix))]
        return Ok(Some(file));
    }
}

/// Renames `from` to `to` unless `to` exists: renameat2(RENAME_NOREPLACE) where the kernel and
/// filesystem have it; else a link (which fails if `to` exists) and an unlink of `from`.
pub fn rename_noclobber(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST => {
                return Err(io::ErrorKind::AlreadyExists.into())
            }
            // Not supported here (FAT, some network filesystems, old kernels): fall back.
            Err(_) => {}
        }
    }
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

/// A directory entry in the shape of a listing: what the server lists and `lls` shows alike.
/// `meta` is the entry's own (a link's, unless the caller followed it).
pub fn entry(name: String, meta: &std::fs::Metadata) -> crate::protocol::Entry {
    use crate::protocol::{Entry, EntryKind};
    let kind = if meta.is_file() {
        EntryKind::File
    } else if meta.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        modified: mtime(meta),
    }
}

/// Modification time in whole seconds since the Unix epoch, where the system knows it.
pub fn mtime(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// An io error as a person reads it: the system's sentence without its "(os error N)" tail,
/// which says nothing more to a person and doubles up when errors are chained.
pub fn describe_io(e: &io::Error) -> String {
    strip_os_error(&e.to_string())
}

/// Removes every " (os error N)" from a message that quotes io errors.
pub fn strip_os_error(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        match rest[at..].find(')') {
            Some(end) => rest = &rest[at + end + 1..],
            None => {
                rest = &rest[at..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether an io error means the disk (or the user's quota) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_or_refuses_and_keeps_the_mode_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", Replace::No, Mode::Private, "t").unwrap();
        let err = write_atomic(&path, b"two", Replace::No, Mode::Private, "t").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"three", Replace::Yes, Mode::Private, "t").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private stays private: {mode:o}");
        }
        // Nothing but the file itself is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn noclobber_rename_refuses_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let err = rename_noclobber(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        std::fs::remove_file(&b).unwrap();
        rename_noclobber(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"a");
    }
}
