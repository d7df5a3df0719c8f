//! The served directory: the only server code that touches the filesystem, so that another
//! backend could replace it.
//!
//! Every operation takes a [`SafeName`] and resolves it under the root without letting a symlink
//! lead outside: the parent directory is canonicalized and must lie under the canonical root
//! (compared by components, not as strings) and outside the private area. Reads follow a final
//! symlink only if it stays inside; deletes and uploads act on the entry itself, so deleting a
//! link never deletes what it names. Uploads are written to a temp file in the private area
//! [`PRIVATE_DIR`] (never listed, never addressable), fsynced, and renamed over the target only
//! after the caller verified them, then the directory is fsynced: a reader sees the old file or
//! the new one, never a part.
//!
//! Left for later: resolution is check-then-open by path, so a local user who can swap a
//! directory for a symlink at the right moment could race it; openat2(RESOLVE_BENEATH) closes that.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::fsutil::{new_file_permissions, open_locked, sync_dir};
use crate::paths::SafeName;
use crate::protocol::{Entry, EntryKind, ErrorCode};

/// The private area at the root of the served directory.
pub const PRIVATE_DIR: &str = ".qft";

/// How long a resumable upload waits for its partial to be released by an earlier attempt.
const PARTIAL_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Staged uploads untouched this long are leftovers of a crash (a live upload writes
/// constantly); they are removed at start. Not all of them: another server may share the directory.
const STALE_UPLOAD: Duration = Duration::from_secs(3600);

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
    /// Not a regular file (a device, a FIFO...).
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
    /// The name is the private area.
    #[error("'{0}' is reserved by the server")]
    Reserved(String),
    /// The same client is already uploading this file on another stream.
    #[error("an upload of '{0}' from this client is already running")]
    Busy(String),
    /// A newer attempt of the same client took this upload over while this one waited.
    #[error("a newer upload of '{0}' from this client took over")]
    Superseded(String),
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
            StorageError::NotADirectory(_) => ErrorCode::NotADirectory,
            StorageError::NotAFile(_) => ErrorCode::NotAFile,
            StorageError::Reserved(_) | StorageError::Escapes(_) => ErrorCode::InvalidName,
            StorageError::Busy(_) | StorageError::Superseded(_) => ErrorCode::BadRequest,
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
    /// `root/.qft`: no client path may resolve into it, however it is spelled.
    private: PathBuf,
    /// Where uploads are staged; inside the root so the final rename stays on one filesystem.
    staging: PathBuf,
    /// Partials in use in this process, each with the signal that tells its user to let go.
    claims: std::sync::Mutex<HashMap<PathBuf, Arc<Notify>>>,
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

/// A resumable upload: a partial file in the private area, named by a key derived from the
/// client's key, the name and the size (so no other client, and no other version of the file,
/// can continue it), locked while in use, kept when the transfer breaks, renamed over the target
/// when verified.
#[derive(Debug)]
pub struct Partial {
    /// Reads and writes go through this handle; it also holds the lock.
    pub file: tokio::fs::File,
    /// Bytes held from earlier attempts (after [`Partial::start_at`]: from where this one starts).
    pub held: u64,
    path: PathBuf,
    target: PathBuf,
    name: String,
    /// Notified when a newer attempt of the same client claims this partial.
    claim: Arc<Notify>,
    inner: Arc<Inner>,
    /// From [`Partial::held_hashes`]: the SHA-256 state of the pieces it hashed, and where they
    /// end, so [`Partial::start_at`] need not read them again when resuming right there.
    covered: Option<(u64, Sha256)>,
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
        remove_stale(&staging, "upload-", STALE_UPLOAD);
        Ok(Storage {
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

    /// Lists `dir` (`None`: the root), sorted by name, without the private area.
    pub async fn list(&self, dir: Option<SafeName>) -> Result<Vec<Entry>, StorageError> {
        let inner = self.inner.clone();
        let name = dir.as_ref().map(|d| d.to_string()).unwrap_or_default();
        blocking(name, move || inner.list(dir.as_ref())).await
    }

    /// Opens a regular file for download.
    pub async fn open_read(&self, name: SafeName) -> Result<ReadFile, StorageError> {
        let inner = self.inner.clone();
        let (file, size, modified) =
            blocking(name.to_string(), move || inner.open_read(&name)).await?;
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
        blocking(name.to_string(), move || inner.begin_upload(&name)).await
    }

    /// Bytes available to the server on the served filesystem; `None` where it cannot be known.
    pub async fn available_space(&self) -> io::Result<Option<u64>> {
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

    /// Opens (or creates) the partial for `client` uploading `size` bytes as `name`, removing
    /// other partials older than `ttl` first. A partial already in use is refused, not shared.
    pub async fn begin_partial(
        &self,
        name: SafeName,
        client: [u8; 32],
        size: u64,
        ttl: Duration,
    ) -> Result<Partial, StorageError> {
        let inner = self.inner.clone();
        let shown = name.to_string();
        let name_text = shown.clone();
        // Only this client's key can name this partial, so a new claim is this client's new
        // attempt: the old one (perhaps a connection that died without a word, still waiting
        // out its timeouts) is told to let go, and the newest attempt wins.
        let path = inner.partial_path(&name, client, size);
        let claim = Arc::new(Notify::new());
        let previous = inner
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.clone(), claim.clone());
        if let Some(previous) = previous {
            previous.notify_one();
        }
        let opened = {
            let (inner, path) = (inner.clone(), path.clone());
            blocking(shown.clone(), move || {
                remove_stale(&inner.staging, "partial-", ttl);
                inner.open_partial(&name, &path, size)
            })
            .await
        };
        let (file, held, target) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let mut claims = inner.claims.lock().unwrap_or_else(|p| p.into_inner());
                if claims.get(&path).is_some_and(|c| Arc::ptr_eq(c, &claim)) {
                    claims.remove(&path);
                }
                return Err(e);
            }
        };
        // Superseded while waiting for the lock (the newer attempt may even have finished):
        // give up, and take back the empty partial this attempt may have just created.
        let current = inner
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&path)
            .is_some_and(|c| Arc::ptr_eq(c, &claim));
        if !current {
            if held == 0 {
                let _ = std::fs::remove_file(&path);
            }
            return Err(StorageError::Superseded(name_text));
        }
        Ok(Partial {
            file: tokio::fs::File::from_std(file),
            held,
            path,
            target,
            name: shown,
            claim,
            inner,
            covered: None,
        })
    }

    /// Removes partial uploads untouched for `ttl`.
    pub fn expire_partials(&self, ttl: Duration) {
        remove_stale(&self.inner.staging, "partial-", ttl);
    }

    /// Deletes the file `name` (not directories). A symlink is removed itself.
    pub async fn delete(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.delete(&name)).await
    }
}

impl Inner {
    /// The real path of the entry `name`: its parent canonicalized and checked to lie under the
    /// root, outside the private area, joined with the last component (not followed).
    fn resolve_entry(&self, name: &SafeName) -> Result<PathBuf, StorageError> {
        let text = name.as_str();
        let lexical = name.under(&self.root);
        let parent = lexical.parent().unwrap_or(&self.root);
        let real_parent = parent
            .canonicalize()
            .map_err(|e| StorageError::from_io(text, e))?;
        if !real_parent.starts_with(&self.root) {
            return Err(StorageError::Escapes(text.to_owned()));
        }
        let path = real_parent.join(name.file_name());
        if self.is_private(&real_parent, name.file_name()) || path.starts_with(&self.private) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        Ok(path)
    }

    /// Like [`Self::resolve_entry`], but a final symlink is followed if it stays under the root
    /// and out of the private area: what reading and listing act on.
    fn resolve(&self, name: &SafeName) -> Result<PathBuf, StorageError> {
        let text = name.as_str();
        let path = self.resolve_entry(name)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = path
                    .canonicalize()
                    .map_err(|e| StorageError::from_io(text, e))?;
                if !target.starts_with(&self.root) || target.starts_with(&self.private) {
                    return Err(StorageError::Escapes(text.to_owned()));
                }
                Ok(target)
            }
            _ => Ok(path),
        }
    }

    /// Whether `part` inside the real directory `dir` names the private area; case-insensitively,
    /// because on such filesystems ".QFT" is the same directory.
    fn is_private(&self, dir: &Path, part: &str) -> bool {
        dir == self.root && part.eq_ignore_ascii_case(PRIVATE_DIR)
    }

    fn open_read(
        &self,
        name: &SafeName,
    ) -> Result<(std::fs::File, u64, Option<u64>), StorageError> {
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
        Ok((file, meta.len(), mtime(&meta)))
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
                tracing::debug!("not listing a name that is not UTF-8");
                continue;
            };
            if self.is_private(&path, &name) {
                continue;
            }
            if SafeName::new(&name).is_err() {
                // A name no client could ask for (a newline, a backslash) is not offered either.
                tracing::debug!("not listing {:?}", crate::paths::sanitize(&name));
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(item.path()) else {
                continue; // Removed while listing.
            };
            let meta = if meta.file_type().is_symlink() {
                // A link is described by its target only if it stays inside; otherwise as "other".
                match item.path().canonicalize() {
                    Ok(t) if t.starts_with(&self.root) && !t.starts_with(&self.private) => {
                        std::fs::metadata(&t).unwrap_or(meta)
                    }
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
        self.create_parents(name)?;
        // The entry itself: an upload over an in-root link replaces the link, not its target.
        let target = self.resolve_entry(name)?;
        if target.is_dir() {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        let temp = tempfile::Builder::new()
            .prefix("upload-")
            .permissions(new_file_permissions(&target))
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

    /// Where the partial of `client` uploading `size` bytes as `name` lives.
    fn partial_path(&self, name: &SafeName, client: [u8; 32], size: u64) -> PathBuf {
        let text = name.as_str();
        // Length-prefixed fields, so no two (client, name, size) share a key.
        let mut key = Sha256::new();
        key.update(client);
        key.update((text.len() as u64).to_be_bytes());
        key.update(text.as_bytes());
        key.update(size.to_be_bytes());
        let hex = crate::transfer::hex(&key.finalize().into());
        self.staging.join(format!("partial-{hex}"))
    }

    fn open_partial(
        &self,
        name: &SafeName,
        path: &Path,
        size: u64,
    ) -> Result<(std::fs::File, u64, PathBuf), StorageError> {
        let text = name.as_str();
        self.create_parents(name)?;
        let target = self.resolve_entry(name)?;
        if target.is_dir() {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(
            &mut options,
            std::os::unix::fs::PermissionsExt::mode(&new_file_permissions(&target)),
        );
        // One writer per partial, across streams, connections and server processes alike. A
        // client that reconnects right after a drop may find its old stream still holding the
        // lock until the server notices the break: wait a little before calling it busy.
        let file = open_locked(path, &options, PARTIAL_LOCK_WAIT)
            .map_err(|e| StorageError::from_io(text, e))?
            .ok_or_else(|| StorageError::Busy(text.to_owned()))?;
        let mut held = file
            .metadata()
            .map_err(|e| StorageError::from_io(text, e))?
            .len();
        if held > size {
            // Cannot be ours (the size is in the key); start over rather than trust it.
            file.set_len(0)
                .map_err(|e| StorageError::from_io(text, e))?;
            held = 0;
        }
        Ok((file, held, target))
    }

    /// Creates the missing directories of `name`'s parent, one plain component at a time, each
    /// checked to stay under the root and out of the private area, each made durable.
    fn create_parents(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let parts: Vec<&str> = name.components().collect();
        let mut dir = self.root.clone();
        for part in &parts[..parts.len() - 1] {
            if self.is_private(&dir, part) {
                return Err(StorageError::Reserved(text.to_owned()));
            }
            let path = dir.join(part);
            match std::fs::create_dir(&path) {
                // The new entry must reach the disk too, or a committed file could vanish with it.
                Ok(()) => sync_dir(&dir).map_err(|e| StorageError::from_io(text, e))?,
                // Already there (perhaps made a moment ago by a concurrent upload): checked below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::from_io(text, e)),
            }
            let real = path
                .canonicalize()
                .map_err(|e| StorageError::from_io(text, e))?;
            if !real.starts_with(&self.root) {
                return Err(StorageError::Escapes(text.to_owned()));
            }
            if real.starts_with(&self.private) {
                return Err(StorageError::Reserved(text.to_owned()));
            }
            if !real.is_dir() {
                return Err(StorageError::NotADirectory(text.to_owned()));
            }
            dir = real;
        }
        Ok(())
    }
}

impl Partial {
    /// Continues from `from` (at most [`Partial::held`]): drops what follows it and returns the
    /// SHA-256 state of what precedes it (read back from disk unless [`Partial::held_hashes`]
    /// already covered exactly that).
    pub async fn start_at(&mut self, from: u64) -> Result<Sha256, StorageError> {
        use tokio::io::AsyncSeekExt;
        let name = self.name.clone();
        let err = |e| StorageError::from_io(&name, e);
        let hasher = match self.covered.take() {
            Some((end, covered)) if end == from => covered,
            _ => {
                self.file
                    .seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(err)?;
                crate::transfer::hash_prefix(&mut self.file, from)
                    .await
                    .map_err(err)?
            }
        };
        self.file.set_len(from).await.map_err(err)?;
        self.file
            .seek(std::io::SeekFrom::Start(from))
            .await
            .map_err(err)?;
        self.held = from;
        Ok(hasher)
    }

    /// The piece hashes of what is held, for [`crate::protocol::Response::Held`].
    pub async fn held_hashes(&mut self, chunk: u64) -> Result<Vec<[u8; 32]>, StorageError> {
        use tokio::io::AsyncSeekExt;
        let name = self.name.clone();
        let err = |e| StorageError::from_io(&name, e);
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(err)?;
        let (hashes, covered) = crate::transfer::piece_hashes(&mut self.file, self.held, chunk)
            .await
            .map_err(err)?;
        self.covered = Some((hashes.len() as u64 * chunk, covered));
        Ok(hashes)
    }

    /// Makes the verified upload durable under its name, as [`Upload::commit`] does.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        let name = self.name.clone();
        let io_err = |e| StorageError::from_io(&name, e);
        self.file.flush().await.map_err(io_err)?;
        self.file.sync_all().await.map_err(io_err)?;
        let (path, target) = (self.path.clone(), self.target.clone());
        blocking(name.clone(), move || {
            std::fs::rename(&path, &target).map_err(|e| StorageError::from_io(&name, e))?;
            if let Some(parent) = target.parent() {
                sync_dir(parent).map_err(|e| StorageError::from_io(&name, e))?;
            }
            Ok(())
        })
        .await
    }

    /// Throws the partial away (its data proved wrong).
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }

    /// Notified when a newer attempt of the same client claims this partial: let go then.
    pub fn claim_handle(&self) -> Arc<Notify> {
        self.claim.clone()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let mut claims = self.inner.claims.lock().unwrap_or_else(|p| p.into_inner());
        if claims
            .get(&self.path)
            .is_some_and(|c| Arc::ptr_eq(c, &self.claim))
        {
            claims.remove(&self.path);
        }
    }
}

impl Upload {
    /// Makes the verified upload durable under its name: flush, fsync, rename over the target,
    /// fsync the directory. A failure before the rename leaves the old content in place.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        let name = self.name.clone();
        let io_err = |e| StorageError::from_io(&name, e);
        self.file.flush().await.map_err(io_err)?;
        self.file.sync_all().await.map_err(io_err)?;
        blocking(name, move || self.publish()).await
    }

    /// [`Upload::commit`] for a body received whole into memory and verified: writes it, then
    /// commits, all in one call on one blocking thread, because for a small file the hand-offs
    /// between threads cost more than the work.
    pub async fn commit_whole(self, body: Vec<bytes::Bytes>) -> Result<(), StorageError> {
        blocking(self.name.clone(), move || {
            let io_err = |e| StorageError::from_io(&self.name, e);
            let file = self.temp.as_file();
            crate::transfer::write_all_vectored(file, &body).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            self.publish()
        })
        .await
    }

    /// Renames the fsynced temp file over the target and fsyncs the directory.
    fn publish(self) -> Result<(), StorageError> {
        let Upload {
            temp, target, name, ..
        } = self;
        temp.persist(&target)
            .map_err(|e| StorageError::from_io(&name, e.error))?;
        if let Some(parent) = target.parent() {
            sync_dir(parent).map_err(|e| StorageError::from_io(&name, e))?;
        }
        Ok(())
    }
}

/// Removes files named `prefix*` in `staging` untouched for longer than `older_than`.
fn remove_stale(staging: &Path, prefix: &str, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if stale && entry.file_name().to_string_lossy().starts_with(prefix) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!("removed an expired partial upload"),
                Err(e) => tracing::warn!("cannot remove an expired partial upload: {e}"),
            }
        }
    }
}

fn mtime(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_partial_uploads_are_removed_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("upload-old");
        let fresh = dir.path().join("upload-fresh");
        let other = dir.path().join("keep-me");
        for p in [&old, &fresh, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        for p in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        remove_stale(dir.path(), "upload-", STALE_UPLOAD);
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }
}
