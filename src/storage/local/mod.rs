//! The local backend: a directory on the server's filesystem (Unix: it works through directory
//! handles, `openat` and friends).
//!
//! Every operation resolves its [`SafeName`] beneath the root relative to directory handles,
//! never following a symlink out of it (`resolve`), then acts on the entry by its directory
//! handle and name: read by `openat`, commit by `renameat`, delete by `unlinkat`, list through
//! the opened directory. Swapping a directory for a symlink at any moment cannot lead outside.
//!
//! Uploads are written to a temp file in the private area `.qft/tmp` (never listed, never
//! addressable), fsynced, and renamed over the target only after the caller verified them, then
//! the directory is fsynced: a reader sees the old file or the new one, never a part
//! (`upload`). Missing parent directories are made only then, so an upload that never
//! finishes leaves no trace. Resumable uploads keep their partials there too (`partial`),
//! indexed in memory and bounded per client and in all. The digests of files received or sent
//! whole are kept while the files stay unchanged (`digests`), so that sending one again needs
//! no hashing.

mod commit;
mod digests;
mod listing;
mod manage;
mod partial;
mod resolve;
mod upload;
mod walk;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tokio::sync::Notify;

pub(crate) use digests::Ticket;
#[cfg(test)]
pub(crate) use digests::RACY;
pub use listing::LocalListing;
pub use partial::LocalPartial;
pub use upload::LocalUpload;
pub use walk::LocalWalk;

use super::{Content, Listing, ListingInner, ReadFile, StorageError, PRIVATE_DIR};
use crate::fsutil::mtime;
use crate::paths::SafeName;
use resolve::{io_error, sync_dir, Found, Last, Parents};

/// Staged uploads untouched this long are leftovers of a crash (a live upload writes
/// constantly); they are removed at start. Not all of them: another server may share the directory.
const STALE_UPLOAD: Duration = Duration::from_secs(3600);

/// A served directory.
#[derive(Debug, Clone)]
pub struct Local {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Canonical root, for the operator's eyes and for reading absolute symlinks that point
    /// back under it.
    root: PathBuf,
    /// The root, held open: every resolution starts here, whatever is renamed meanwhile.
    root_fd: OwnedFd,
    /// `root/.qft/tmp`, held open: where uploads are staged (inside the root, so the final
    /// rename stays on one filesystem).
    staging: OwnedFd,
    /// The longest name component the filesystem takes (NAME_MAX): a longer one is refused as
    /// a bad name up front, not as a failure after the body arrived.
    name_max: usize,
    /// Whether to try `openat2` (cleared where the kernel lacks it).
    openat2: AtomicBool,
    /// Partials in use in this process, by file name, each with the signal that tells its user
    /// to let go.
    claims: std::sync::Mutex<HashMap<OsString, Arc<Notify>>>,
    /// Every partial in the staging area, by file name, with its client: counted without
    /// reading the directory.
    partials: std::sync::Mutex<partial::Index>,
    /// The SHA-256 of files received or sent whole, while they stay unchanged.
    digests: Arc<digests::Digests>,
    /// The free space last measured, and when: see [`FREE_FRESH`].
    free: std::sync::Mutex<Option<(Instant, u64)>>,
    /// Small uploads being committed together (`commit`).
    commits: commit::Group,
}

/// How long a measure of the free space is used again. Every upload asks (to reserve its size);
/// asking is a hand-off to a blocking thread and back, a third of the thread wake-ups of a
/// small file's upload (BENCHMARKS.md). Uploads running meanwhile are counted by the storage's
/// promises; what finished in the last 50 ms is not, a few MB at most beside the reserve.
const FREE_FRESH: Duration = Duration::from_millis(50);

impl Local {
    /// Serves `root`, creating the private staging area (mode 0700) inside it and clearing
    /// crash leftovers from it.
    pub fn open(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root_fd = rustix::fs::openat(rustix::fs::CWD, &root, flags, Mode::empty())?;
        let private = private_dir(root_fd.as_fd(), PRIVATE_DIR)?;
        let staging = private_dir(private.as_fd(), "tmp")?;
        let staging = rustix::fs::openat(
            &staging,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let name_max = rustix::fs::fstatvfs(&staging)
            .ok()
            .and_then(|s| usize::try_from(s.f_namemax).ok())
            .filter(|&n| n > 0)
            .unwrap_or(255);
        partial::remove_stale(staging.as_fd(), "upload-", STALE_UPLOAD, |_| true);
        let partials = partial::Index::read(staging.as_fd());
        Ok(Local {
            inner: Arc::new(Inner {
                root,
                root_fd,
                staging,
                name_max,
                openat2: AtomicBool::new(true),
                claims: Default::default(),
                partials: std::sync::Mutex::new(partials),
                digests: Default::default(),
                free: Default::default(),
                commits: Default::default(),
            }),
        })
    }

    /// The canonical root (for the operator's eyes only, never sent to clients).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(in crate::storage) async fn list(
        &self,
        dir: Option<SafeName>,
    ) -> Result<Listing, StorageError> {
        let inner = self.inner.clone();
        let name = dir.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let listing = blocking(name, move || LocalListing::open(inner, dir)).await?;
        Ok(Listing {
            inner: ListingInner::Local(listing),
        })
    }

    pub(in crate::storage) async fn open_read(
        &self,
        name: SafeName,
    ) -> Result<ReadFile, StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.open_read(&name)).await
    }

    pub(in crate::storage) async fn delete(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.delete(&name)).await
    }

    pub(in crate::storage) async fn available_space(&self) -> io::Result<Option<u64>> {
        if let Some(free) = self.inner.recent_free() {
            return Ok(Some(free));
        }
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let stat = rustix::fs::fstatvfs(&inner.staging)?;
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            inner.note_free(free);
            Ok(Some(free))
        });
        task.await.map_err(io::Error::other)?
    }

    pub(in crate::storage) async fn expire_partials(&self, ttl: Duration) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.expire_partials(ttl)).await;
    }
}

impl Inner {
    fn recent_free(&self) -> Option<u64> {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.filter(|(at, _)| at.elapsed() < FREE_FRESH)
            .map(|(_, bytes)| bytes)
    }

    fn note_free(&self, bytes: u64) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), bytes));
    }

    fn open_read(&self, name: &SafeName) -> Result<ReadFile, StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let (dir, leaf) = match self.locate(name, Last::Target, Parents::Existing)? {
            Some(Found::Entry { dir, leaf, .. }) => (dir, leaf),
            Some(Found::Root) | None => return Err(StorageError::IsADirectory(text.to_owned())),
        };
        // The type is checked before opening: opening a FIFO would block, a device could do
        // anything. O_NONBLOCK still keeps a FIFO swapped in meanwhile from blocking the open.
        let st = rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(StorageError::IsADirectory(text.to_owned())),
            _ => return Err(StorageError::NotAFile(text.to_owned())),
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&dir, &leaf, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Replaced by a symlink since the look: not what was asked for any more.
            Err(Errno::LOOP) => return Err(StorageError::NotAFile(text.to_owned())),
            Err(e) => return Err(err(e)),
        };
        let file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(|e| io_error(text, e))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile(text.to_owned()));
        }
        let file = Arc::new(file);
        Ok(ReadFile {
            size: meta.len(),
            modified: mtime(&meta),
            digest: Some(self.digests.ticket(&file)),
            content: Content::File(file),
        })
    }

    fn delete(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let Some(Found::Entry { dir, leaf, .. }) =
            self.locate(name, Last::Entry, Parents::Existing)?
        else {
            return Err(StorageError::IsADirectory(text.to_owned()));
        };
        // The entry itself: a link is removed, never what it names.
        let st = rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        match rustix::fs::unlinkat(&dir, &leaf, AtFlags::empty()) {
            Ok(()) => {}
            // Made a directory since the look.
            Err(Errno::ISDIR) => return Err(StorageError::IsADirectory(text.to_owned())),
            Err(e) => return Err(err(e)),
        }
        sync_dir(dir.as_fd()).map_err(err)
    }
}

/// Makes (mode 0700) or opens the private directory `name` in `dir`; a symlink there is refused,
/// since the private area must be ours alone.
fn private_dir(dir: std::os::fd::BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("the private area {name} is not a plain directory"),
        )
    })
}

/// Runs filesystem work on the blocking pool; `name` is for the error should the task die.
async fn blocking<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StorageError::Io {
            name,
            source: io::Error::other(e),
        })
    })
}
