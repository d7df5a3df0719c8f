//! What a transfer keeps of a file besides its bytes: its modification time (`put -p`, `get -p`,
//! and always in `sync`, as scp -p and rsync -t) and, on request, its permission bits
//! (`--perms`; only `rwxrwxrwx`, never setuid, setgid or sticky).

use std::io;
use std::time::{Duration, UNIX_EPOCH};

use crate::protocol::{FileMeta, PERMISSION_BITS};

/// What a transfer keeps besides the bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// The modification time (`-p`).
    pub time: bool,
    /// The permission bits (`--perms`).
    pub perms: bool,
}

impl Keep {
    /// Whether anything besides the bytes is kept.
    pub fn any(self) -> bool {
        self.time || self.perms
    }

    /// What of a local file's `meta` goes to the server.
    pub fn of_local(self, meta: &std::fs::Metadata) -> FileMeta {
        FileMeta {
            modified: self.time.then(|| crate::fsutil::mtime(meta)).flatten(),
            mode: self.perms.then(|| local_mode(meta)).flatten(),
        }
    }
}

/// A local file's permission bits, where the system has them.
pub fn local_mode(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    return Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & PERMISSION_BITS);
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Gives the open local file `file` what `meta` says (the time, the permission bits masked to
/// [`PERMISSION_BITS`]).
pub fn apply(file: &std::fs::File, meta: &FileMeta) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(mode) = meta.mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode & PERMISSION_BITS))?;
    }
    if let Some(when) = meta
        .modified
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
    {
        file.set_modified(when)?;
    }
    Ok(())
}

/// Gives the local directory `path` the modification time `secs` (seconds since the epoch),
/// through a handle opened without following a link: a name swapped for a link meanwhile fails
/// rather than touching what it leads to.
pub fn set_dir_time(path: &std::path::Path, secs: u64) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let when = UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rustix::fs::open(path, flags, Mode::empty())?;
    std::fs::File::from(dir).set_modified(when)
}
