//! Resumable uploads to the local directory. A partial is a file in the private area, named by a
//! key derived from the client's key, the name and the size (so no other client, and no other
//! version of the file, can continue it), flocked while in use, kept when the transfer breaks,
//! renamed over the target when verified, and removed once untouched for the partial lifetime.
//!
//! Claims: only this client's key can name its partial, so a new claim is this client's new
//! attempt; the old one (perhaps a connection that died without a word, still waiting out its
//! timeouts) is told to let go, and the newest attempt wins.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::manage::{apply_mode, apply_time};
use super::upload::publish_done;
use super::{blocking, Inner, Local};
use crate::fsutil::{new_file_permissions, open_locked};
use crate::paths::SafeName;
use crate::protocol::FileMeta;
use crate::storage::{Partial, PartialInner, ReadStream, StorageError, WriteStream};
use crate::transfer::{FileSink, FileSource};

/// How long a resumable upload waits for its partial to be released by an earlier attempt.
const PARTIAL_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A partial file in use by one upload attempt.
#[derive(Debug)]
pub struct LocalPartial {
    /// The locked partial; the lock lasts as long as this handle and its sinks and sources.
    file: Arc<std::fs::File>,
    path: PathBuf,
    target: PathBuf,
    name: String,
    /// Notified when a newer attempt of the same client claims this partial.
    claim: Arc<Notify>,
    inner: Arc<Inner>,
    /// What the file gets as it is committed.
    meta: FileMeta,
}

impl Local {
    /// Opens (or creates) the partial, removing other partials older than `ttl` first. A
    /// partial already in use is taken over from the older attempt, never shared.
    pub(in crate::storage) async fn begin_partial(
        &self,
        name: SafeName,
        client: [u8; 32],
        size: u64,
        ttl: Duration,
    ) -> Result<Partial, StorageError> {
        let inner = self.inner.clone();
        let shown = name.to_string();
        let path = inner.partial_path(&name, client, size);
        let claim = Arc::new(Notify::new());
        if let Some(previous) = inner.claims().insert(path.clone(), claim.clone()) {
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
                inner.release(&path, &claim);
                return Err(e);
            }
        };
        // Superseded while waiting for the lock (the newer attempt may even have finished):
        // give up, and take back the empty partial this attempt may have just created.
        let current = inner
            .claims()
            .get(&path)
            .is_some_and(|c| Arc::ptr_eq(c, &claim));
        if !current {
            if held == 0 {
                let _ = std::fs::remove_file(&path);
            }
            return Err(StorageError::Superseded(shown));
        }
        Ok(Partial {
            held,
            inner: PartialInner::Local(LocalPartial {
                file: Arc::new(file),
                path,
                target,
                name: shown,
                claim,
                inner,
                meta: FileMeta::default(),
            }),
        })
    }
}

impl Inner {
    fn claims(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<PathBuf, Arc<Notify>>> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets `claim` on `path` if it is still the current one.
    fn release(&self, path: &Path, claim: &Arc<Notify>) {
        let mut claims = self.claims();
        if claims.get(path).is_some_and(|c| Arc::ptr_eq(c, claim)) {
            claims.remove(path);
        }
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
}

impl LocalPartial {
    pub(in crate::storage) fn source(&self) -> ReadStream {
        ReadStream::File(FileSource::new(self.file.clone(), 0))
    }

    pub(in crate::storage) async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        let (file, name) = (self.file.clone(), self.name.clone());
        blocking(name.clone(), move || {
            file.set_len(from)
                .map_err(|e| StorageError::from_io(&name, e))
        })
        .await
    }

    pub(in crate::storage) fn sink(&self, from: u64) -> WriteStream {
        WriteStream::File(FileSink::new(self.file.clone(), from))
    }

    pub(in crate::storage) fn claim(&self) -> Arc<Notify> {
        self.claim.clone()
    }

    pub(in crate::storage) fn set_meta(&mut self, meta: FileMeta) {
        self.meta = meta;
    }

    pub(in crate::storage) async fn commit(self, _sha256: [u8; 32]) -> Result<(), StorageError> {
        let (file, path, target, name, meta) = (
            self.file.clone(),
            self.path.clone(),
            self.target.clone(),
            self.name.clone(),
            self.meta,
        );
        blocking(name.clone(), move || {
            let io_err = |e| StorageError::from_io(&name, e);
            apply_mode(&file, &meta).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            std::fs::rename(&path, &target).map_err(io_err)?;
            // The time only once renamed: partials are expired by their time, and one given an
            // old time could be swept away between here and the rename. The file is still ours
            // (the same open file), and its new time is made durable with it.
            if meta.modified.is_some() {
                apply_time(&file, &meta).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
            }
            publish_done(&target, &name)
        })
        .await
    }

    pub(in crate::storage) async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

impl Drop for LocalPartial {
    fn drop(&mut self) {
        self.inner.release(&self.path, &self.claim);
    }
}

/// Removes files named `prefix*` in `staging` untouched for longer than `older_than`.
pub(super) fn remove_stale(staging: &Path, prefix: &str, older_than: Duration) {
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
        remove_stale(dir.path(), "upload-", Duration::from_secs(3600));
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }
}
