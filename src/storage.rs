//! The served directory: the only server code that touches the filesystem, so that another
//! backend could replace it.
//!
//! Every operation takes a [`SafeName`] and resolves it under the root without letting a symlink
//! lead outside: the parent directory is canonicalized and must lie under the canonical root
//! (compared by components, not as strings). Uploads are written to a temp file in the private
//! area [`PRIVATE_DIR`] (never listed, never addressable by name), fsynced, and renamed over the
//! target only after the caller verified them, then the directory is fsynced: a reader sees the
//! old file or the new one, never a part.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tokio::io::AsyncWriteExt;

use crate::paths::SafeName;
use crate::protocol::{Entry, EntryKind, ErrorCode};

/// The private area at the root of the served directory.
pub const PRIVATE_DIR: &str = ".qft";

/// Why a storage operation failed. Messages name only the client's relative name, never a path
/// on the server.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such file or directory.
    #[error("'{0}' does not exist")]
    NotFound(String),
    /// A directory where a file was expected.
    #[error("'{0}' is a directory")]
    IsADirectory(String),
    /// Not a directory where one was expected.
    #[error("'{0}' is not a directory")]
    NotADirectory(String),
    /// Not a regular file (a device, a socket...).
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
    /// The name is the private area.
    #[error("'{0}' is reserved by the server")]
    Reserved(String),
    /// A symlink leads outside the served directory.
    #[error("'{0}' leads outside the served directory")]
    Escapes(String),
    /// The filesystem refused.
    #[error("the server is not allowed to access '{0}'")]
    PermissionDenied(String),
    /// The disk is full.
    #[error("no space left on the server")]
    NoSpace,
    /// Anything else; logged in full, shown briefly.
    #[error("the server could not access '{name}'")]
    Io {
        /// The client's name for the file.
        name: String,
        /// The underlying error, for the server's log only.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// Classifies an io error on `name` (the client's name for it).
    pub fn from_io(name: &str, e: io::Error) -> Self {
        let name = name.to_owned();
        match e.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound(name),
            io::ErrorKind::IsADirectory => StorageError::IsADirectory(name),
            io::ErrorKind::NotADirectory => StorageError::NotADirectory(name),
            io::ErrorKind::PermissionDenied => StorageError::PermissionDenied(name),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageError::NoSpace,
            _ => StorageError::Io { name, source: e },
        }
    }

    /// The wire code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::IsADirectory(_) => ErrorCode::IsADirectory,
            StorageError::NotADirectory(_) | StorageError::NotAFile(_) => ErrorCode::NotADirectory,
            StorageError::Reserved(_) | StorageError::Escapes(_) => ErrorCode::InvalidName,
            StorageError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            StorageError::NoSpace => ErrorCode::NoSpace,
            StorageError::Io { .. } => ErrorCode::Internal,
        }
    }
}

/// A served directory.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Canonical root: every resolved path must start with it.
    root: PathBuf,
    /// Where uploads are staged; inside the root so the final rename stays on one filesystem.
    staging: PathBuf,
}

/// A file opened for download.
#[derive(Debug)]
pub struct ReadFile {
    /// The open file.
    pub file: tokio::fs::File,
    /// Its size when opened: exactly this many bytes are sent.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: Option<u64>,
}

/// An upload being received: a private temp file that becomes `target` on [`Upload::commit`],
/// and disappears if dropped.
#[derive(Debug)]
pub struct Upload {
    temp: tempfile::NamedTempFile,
    /// Writes go through this handle (a clone of the temp file's).
    pub file: tokio::fs::File,
    target: PathBuf,
    name: String,
}

impl Storage {
    /// Serves `root`, creating the private staging area (mode 0700) inside it.
    pub fn open(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        let staging = root.join(PRIVATE_DIR).join("tmp");
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&staging)?;
        Ok(Storage {
            inner: Arc::new(Inner { root, staging }),
        })
    }

    /// The canonical root (for the operator's eyes only, never sent to clients).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Lists `dir` (`None`: the root), sorted by name, without the private area.
    pub async fn list(&self, dir: Option<SafeName>) -> Result<Vec<Entry>, StorageError> {
        let inner = self.inner.clone();
        blocking(move || inner.list(dir.as_ref())).await
    }

    /// Opens a regular file for download.
    pub async fn open_read(&self, name: SafeName) -> Result<ReadFile, StorageError> {
        let inner = self.inner.clone();
        let (file, size, modified) = blocking(move || {
            let path = inner.resolve(&name)?;
            let file =
                std::fs::File::open(&path).map_err(|e| StorageError::from_io(name.as_str(), e))?;
            let meta = file
                .metadata()
                .map_err(|e| StorageError::from_io(name.as_str(), e))?;
            if meta.is_dir() {
                return Err(StorageError::IsADirectory(name.to_string()));
            }
            if !meta.is_file() {
                return Err(StorageError::NotAFile(name.to_string()));
            }
            Ok((file, meta.len(), mtime(&meta)))
        })
        .await?;
        Ok(ReadFile {
            file: tokio::fs::File::from_std(file),
            size,
            modified,
        })
    }

    /// Starts an upload to `name`: refuses a directory target up front, creates missing parent
    /// directories, and opens a private temp file.
    pub async fn begin_upload(&self, name: SafeName) -> Result<Upload, StorageError> {
        let inner = self.inner.clone();
        blocking(move || inner.begin_upload(&name)).await
    }

    /// Deletes the file `name` (not directories).
    pub async fn delete(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(move || {
            let path = inner.resolve(&name)?;
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| StorageError::from_io(name.as_str(), e))?;
            if meta.is_dir() {
                return Err(StorageError::IsADirectory(name.to_string()));
            }
            std::fs::remove_file(&path).map_err(|e| StorageError::from_io(name.as_str(), e))?;
            if let Some(parent) = path.parent() {
                sync_dir(parent).map_err(|e| StorageError::from_io(name.as_str(), e))?;
            }
            Ok(())
        })
        .await
    }
}

impl Inner {
    /// The real path of `name`: its parent canonicalized and checked to lie under the root, and a
    /// final symlink followed only if it stays under the root.
    fn resolve(&self, name: &SafeName) -> Result<PathBuf, StorageError> {
        let text = name.as_str();
        if name.components().next() == Some(PRIVATE_DIR) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        let lexical = name.under(&self.root);
        let parent = lexical.parent().unwrap_or(&self.root);
        let real_parent = parent
            .canonicalize()
            .map_err(|e| StorageError::from_io(text, e))?;
        if !real_parent.starts_with(&self.root) {
            return Err(StorageError::Escapes(text.to_owned()));
        }
        let path = real_parent.join(name.file_name());
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = path
                    .canonicalize()
                    .map_err(|e| StorageError::from_io(text, e))?;
                if !target.starts_with(&self.root)
                    || target.starts_with(self.root.join(PRIVATE_DIR))
                {
                    return Err(StorageError::Escapes(text.to_owned()));
                }
                Ok(target)
            }
            _ => Ok(path),
        }
    }

    fn list(&self, dir: Option<&SafeName>) -> Result<Vec<Entry>, StorageError> {
        let (path, shown) = match dir {
            None => (self.root.clone(), ""),
            Some(name) => (self.resolve(name)?, name.as_str()),
        };
        let read = std::fs::read_dir(&path).map_err(|e| StorageError::from_io(shown, e))?;
        let mut entries = Vec::new();
        for item in read {
            let item = item.map_err(|e| StorageError::from_io(shown, e))?;
            let Ok(name) = item.file_name().into_string() else {
                tracing::debug!("skipping a name that is not UTF-8");
                continue;
            };
            if dir.is_none() && name == PRIVATE_DIR {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(item.path()) else {
                continue; // Removed while listing.
            };
            let meta = if meta.file_type().is_symlink() {
                // A link is described by its target only if it stays inside; otherwise as "other".
                match item.path().canonicalize() {
                    Ok(t) if t.starts_with(&self.root) => std::fs::metadata(&t).unwrap_or(meta),
                    _ => meta,
                }
            } else {
                meta
            };
            let kind = if meta.is_file() {
                EntryKind::File
            } else if meta.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::Other
            };
            entries.push(Entry {
                name,
                kind,
                size: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
                modified: mtime(&meta),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn begin_upload(&self, name: &SafeName) -> Result<Upload, StorageError> {
        let text = name.as_str();
        if name.components().next() == Some(PRIVATE_DIR) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        self.create_parents(name)?;
        let target = self.resolve(name)?;
        if target.is_dir() {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        let temp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.staging)
            .map_err(|e| StorageError::from_io(text, e))?;
        let file = temp
            .as_file()
            .try_clone()
            .map_err(|e| StorageError::from_io(text, e))?;
        Ok(Upload {
            temp,
            file: tokio::fs::File::from_std(file),
            target,
            name: text.to_owned(),
        })
    }

    /// Creates the missing directories of `name`'s parent, one plain component at a time, each
    /// checked to stay under the root.
    fn create_parents(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let parts: Vec<&str> = name.components().collect();
        let mut path = self.root.clone();
        for part in &parts[..parts.len() - 1] {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(_) => {
                    let real = path
                        .canonicalize()
                        .map_err(|e| StorageError::from_io(text, e))?;
                    if !real.starts_with(&self.root) {
                        return Err(StorageError::Escapes(text.to_owned()));
                    }
                    if !real.is_dir() {
                        return Err(StorageError::NotADirectory(text.to_owned()));
                    }
                    path = real;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&path).map_err(|e| StorageError::from_io(text, e))?;
                }
                Err(e) => return Err(StorageError::from_io(text, e)),
            }
        }
        Ok(())
    }
}

impl Upload {
    /// Makes the verified upload durable under its name: flush, fsync, rename over the target,
    /// fsync the directory. A failure leaves the old content in place.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        let name = self.name.clone();
        let io_err = |e| StorageError::from_io(&name, e);
        self.file.flush().await.map_err(io_err)?;
        self.file.sync_all().await.map_err(io_err)?;
        blocking(move || {
            let Upload {
                temp, target, name, ..
            } = self;
            temp.persist(&target)
                .map_err(|e| StorageError::from_io(&name, e.error))?;
            if let Some(parent) = target.parent() {
                sync_dir(parent).map_err(|e| StorageError::from_io(&name, e))?;
            }
            Ok(())
        })
        .await
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

fn mtime(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StorageError::Io {
            name: String::new(),
            source: io::Error::other(e),
        })
    })
}
