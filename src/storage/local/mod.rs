//! The local backend: a directory on the server's filesystem.
//!
//! Every operation resolves its [`SafeName`] under the root without letting a symlink lead
//! outside (`resolve`). Uploads are written to a temp file in the private area
//! `.qft/tmp` (never listed, never addressable), fsynced, and renamed over the target only after
//! the caller verified them, then the directory is fsynced: a reader sees the old file or the new
//! one, never a part (`upload`). Resumable uploads keep their partials there too (`partial`).
//!
//! Left for later: resolution is check-then-open by path, so a local user who can swap a
//! directory for a symlink at the right moment could race it; openat2(RESOLVE_BENEATH) closes that.

mod listing;
mod manage;
mod partial;
mod resolve;
mod upload;
mod walk;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use listing::LocalListing;
pub use partial::LocalPartial;
pub use upload::LocalUpload;
pub use walk::LocalWalk;

use super::{Content, Listing, ListingInner, ReadFile, StorageError, PRIVATE_DIR};
use crate::fsutil::{mtime, sync_dir};
use crate::paths::SafeName;

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
    /// Canonical root: every resolved path must start with it.
    root: PathBuf,
    /// `root/.qft`: no client path may resolve into it, however it is spelled.
    private: PathBuf,
    /// Where uploads are staged; inside the root so the final rename stays on one filesystem.
    staging: PathBuf,
    /// Partials in use in this process, each with the signal that tells its user to let go.
    claims: std::sync::Mutex<HashMap<PathBuf, Arc<Notify>>>,
}

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
        let private = root.join(PRIVATE_DIR);
        let staging = private.join("tmp");
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&staging)?;
        partial::remove_stale(&staging, "upload-", STALE_UPLOAD);
        Ok(Local {
            inner: Arc::new(Inner {
                root,
                private,
                staging,
                claims: Default::default(),
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
        let listing = blocking(name, move || LocalListing::open(inner, dir.as_ref())).await?;
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
        let staging = self.inner.staging.clone();
        let task = tokio::task::spawn_blocking(move || {
            #[cfg(unix)]
            {
                let stat = rustix::fs::statvfs(&staging).map_err(io::Error::from)?;
                Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
            }
            #[cfg(not(unix))]
            {
                let _ = staging;
                Ok(None)
            }
        });
        task.await.map_err(io::Error::other)?
    }

    pub(in crate::storage) async fn expire_partials(&self, ttl: Duration) {
        let staging = self.inner.staging.clone();
        let _ =
            tokio::task::spawn_blocking(move || partial::remove_stale(&staging, "partial-", ttl))
                .await;
    }
}

impl Inner {
    fn open_read(&self, name: &SafeName) -> Result<ReadFile, StorageError> {
        let text = name.as_str();
        let path = self.resolve(name)?;
        // The type is checked before opening: opening a FIFO would block this thread for good.
        let meta = std::fs::metadata(&path).map_err(|e| StorageError::from_io(text, e))?;
        if meta.is_dir() {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        if !meta.is_file() {
            return Err(StorageError::NotAFile(text.to_owned()));
        }
        let file = std::fs::File::open(&path).map_err(|e| StorageError::from_io(text, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StorageError::from_io(text, e))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile(text.to_owned()));
        }
        Ok(ReadFile {
            size: meta.len(),
            modified: mtime(&meta),
            content: Content::File(Arc::new(file)),
        })
    }

    fn delete(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let path = self.resolve_entry(name)?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| StorageError::from_io(text, e))?;
        if meta.is_dir() {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        std::fs::remove_file(&path).map_err(|e| StorageError::from_io(text, e))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent).map_err(|e| StorageError::from_io(text, e))?;
        }
        Ok(())
    }
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
