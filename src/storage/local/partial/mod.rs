//! Resumable uploads to the local directory. A partial is a file in the private area, named by
//! its client and a key derived from the client's key, the name and the size (so no other
//! client, and no other version of the file, can continue it), flocked while in use, kept when
//! the transfer breaks, renamed over the target when verified, and removed once untouched for
//! the partial lifetime.
//!
//! Partials are counted in an in-memory [`Index`] (read from the directory once, at start), so
//! a new one is admitted or refused against the limits per client and in all without reading
//! the staging area; only the periodic expiry reads it. A refused client falls back to a plain
//! upload, which leaves nothing behind.
//!
//! Claims: only this client's key can name its partial, so a new claim is this client's new
//! attempt; the old one (perhaps a connection that died without a word, still waiting out its
//! timeouts) is told to let go, and the newest attempt wins.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, Dir, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::manage::{apply_mode, apply_time};
use super::resolve::io_error;
use super::{blocking, Inner, Local};
use crate::paths::SafeName;
use crate::protocol::FileMeta;
use crate::storage::{Partial, PartialInner, PartialLimits, ReadStream, StorageError, WriteStream};
use crate::transfer::{hex, FileSink, FileSource};

/// How long a resumable upload waits for its partial to be released by an earlier attempt.
const PARTIAL_LOCK_WAIT: Duration = Duration::from_secs(5);

/// A partial file in use by one upload attempt.
#[derive(Debug)]
pub struct LocalPartial {
    /// The locked partial; the lock lasts as long as this handle and its sinks and sources.
    file: Arc<std::fs::File>,
    /// Its name in the staging area.
    file_name: OsString,
    name: SafeName,
    /// Notified when a newer attempt of the same client claims this partial.
    claim: Arc<Notify>,
    inner: Arc<Inner>,
    /// What the file gets as it is committed.
    meta: FileMeta,
}

/// The partials in the staging area: file name → the client's key in hex ("" for a partial
/// whose client is not known, left by an older version).
#[derive(Debug, Default)]
pub(super) struct Index {
    files: HashMap<OsString, String>,
    per_client: HashMap<String, usize>,
}

impl Index {
    /// Reads the staging area once.
    pub(super) fn read(staging: BorrowedFd<'_>) -> Self {
        let mut index = Index::default();
        for name in names(staging, "partial-") {
            index.add(name);
        }
        index
    }

    fn add(&mut self, file: OsString) {
        let client = client_of(&file).to_owned();
        if self.files.insert(file, client.clone()).is_none() {
            *self.per_client.entry(client).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, file: &OsStr) {
        if let Some(client) = self.files.remove(file) {
            if let Some(n) = self.per_client.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&client);
                }
            }
        }
    }

    /// Counts the partial `file` in, if the limits allow a new one; `Ok(true)` if it is new.
    fn admit(&mut self, file: &OsStr, limits: PartialLimits) -> Result<bool, &'static str> {
        if self.files.contains_key(file) {
            return Ok(false);
        }
        let client = client_of(file);
        if self.per_client.get(client).copied().unwrap_or(0) >= limits.per_client {
            return Err("for this client");
        }
        if self.files.len() >= limits.total {
            return Err("for any client");
        }
        self.add(file.to_owned());
        Ok(true)
    }
}

/// The client part of a partial's file name, `partial-CLIENT-KEY`.
fn client_of(file: &OsStr) -> &str {
    let name = std::str::from_utf8(file.as_bytes()).unwrap_or("");
    match name
        .strip_prefix("partial-")
        .and_then(|rest| rest.split_once('-'))
    {
        Some((client, _)) => client,
        None => "",
    }
}

impl Local {
    /// Opens (or creates) the partial; a new one only within `limits`. A partial already in
    /// use is taken over from the older attempt, never shared.
    pub(in crate::storage) async fn begin_partial(
        &self,
        name: SafeName,
        client: [u8; 32],
        size: u64,
        limits: PartialLimits,
    ) -> Result<Partial, StorageError> {
        let inner = self.inner.clone();
        let shown = name.to_string();
        let file_name = partial_name(&name, client, size);
        let new = inner
            .index()
            .admit(&file_name, limits)
            .map_err(|whose| StorageError::TooManyPartials(whose, shown.clone()))?;
        let claim = Arc::new(Notify::new());
        if let Some(previous) = inner.claims().insert(file_name.clone(), claim.clone()) {
            previous.notify_one();
        }
        let opened = {
            let (inner, file_name) = (inner.clone(), file_name.clone());
            blocking(shown.clone(), move || {
                inner.open_partial(&name, &file_name, size)
            })
            .await
        };
        let (file, held, name) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                inner.release(&file_name, &claim);
                if new {
                    inner.index().remove(&file_name);
                }
                return Err(e);
            }
        };
        // Superseded while waiting for the lock (the newer attempt may even have finished):
        // give up, and take back the empty partial this attempt may have just created.
        let current = inner
            .claims()
            .get(&file_name)
            .is_some_and(|c| Arc::ptr_eq(c, &claim));
        if !current {
            if held == 0 {
                inner.remove_partial(&file_name);
            }
            return Err(StorageError::Superseded(shown));
        }
        Ok(Partial {
            held,
            inner: PartialInner::Local(LocalPartial {
                file: Arc::new(file),
                file_name,
                name,
                claim,
                inner,
                meta: FileMeta::default(),
            }),
        })
    }
}

/// The file name of the partial of `client` uploading `size` bytes as `name`.
fn partial_name(name: &SafeName, client: [u8; 32], size: u64) -> OsString {
    let text = name.as_str();
    // Length-prefixed fields, so no two (client, name, size) share a key.
    let mut key = Sha256::new();
    key.update(client);
    key.update((text.len() as u64).to_be_bytes());
    key.update(text.as_bytes());
    key.update(size.to_be_bytes());
    OsString::from(format!(
        "partial-{}-{}",
        hex(&client),
        hex(&key.finalize().into())
    ))
}

impl Inner {
    fn claims(&self) -> std::sync::MutexGuard<'_, HashMap<OsString, Arc<Notify>>> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.partials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets `claim` on `file` if it is still the current one.
    fn release(&self, file: &OsStr, claim: &Arc<Notify>) {
        let mut claims = self.claims();
        if claims.get(file).is_some_and(|c| Arc::ptr_eq(c, claim)) {
            claims.remove(file);
        }
    }

    /// Removes the partial `file` from the disk and the index.
    fn remove_partial(&self, file: &OsStr) {
        let _ = rustix::fs::unlinkat(&self.staging, file, AtFlags::empty());
        self.index().remove(file);
    }

    fn open_partial(
        &self,
        name: &SafeName,
        file: &OsStr,
        size: u64,
    ) -> Result<(std::fs::File, u64, SafeName), StorageError> {
        let text = name.as_str();
        let err = |e: std::io::Error| io_error(text, e);
        let mode = self.target_mode(name)?;
        // One writer per partial, across streams, connections and server processes alike. A
        // client that reconnects right after a drop may find its old stream still holding the
        // lock until the server notices the break: wait a little before calling it busy.
        let file = open_locked(self.staging.as_fd(), file, mode, PARTIAL_LOCK_WAIT)
            .map_err(err)?
            .ok_or_else(|| StorageError::Busy(text.to_owned()))?;
        let mut held = file.metadata().map_err(err)?.len();
        if held > size {
            // Cannot be ours (the size is in the key); start over rather than trust it.
            file.set_len(0).map_err(err)?;
            held = 0;
        }
        Ok((file, held, name.clone()))
    }

    /// Removes partials untouched for `ttl` (but not those in use), and forgets what is gone.
    pub(super) fn expire_partials(&self, ttl: Duration) {
        let in_use: HashSet<OsString> = self.claims().keys().cloned().collect();
        let kept = remove_stale(self.staging.as_fd(), "partial-", ttl, |name| {
            !in_use.contains(name)
        });
        let kept: HashSet<OsString> = kept.into_iter().collect();
        let mut index = self.index();
        let gone: Vec<OsString> = index
            .files
            .keys()
            .filter(|f| !kept.contains(*f) && !in_use.contains(*f))
            .cloned()
            .collect();
        for file in gone {
            index.remove(&file);
        }
    }
}

/// Opens (creating it with `mode`) the file `name` in `dir` and takes an exclusive lock on it,
/// waiting up to `wait` for another holder; `Ok(None)` if it stays busy. The lock is on the
/// file, the name is what others open: while we waited, the holder may have renamed the file
/// into place or removed it, so the locked file must still be the one at `name` (same device
/// and inode), or we start again with what is there now. Without this, a retry could write
/// into a file already published under its final name.
fn open_locked(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mode: u32,
    wait: Duration,
) -> std::io::Result<Option<std::fs::File>> {
    let deadline = Instant::now() + wait;
    let flags = OFlags::CREATE | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode))?;
        while rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let locked = rustix::fs::fstat(&fd)?;
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) if now.st_dev == locked.st_dev && now.st_ino == locked.st_ino => {
                return Ok(Some(std::fs::File::from(fd)))
            }
            // Renamed or removed while we waited: what we hold is not the partial any more.
            _ => continue,
        }
    }
}

impl LocalPartial {
    pub(in crate::storage) fn source(&self) -> ReadStream {
        ReadStream::File(FileSource::new(self.file.clone(), 0))
    }

    pub(in crate::storage) async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        let (file, name) = (self.file.clone(), self.name.to_string());
        blocking(name.clone(), move || {
            file.set_len(from).map_err(|e| io_error(&name, e))
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

    /// Makes the partial durable under its name. A failure for space frees what it holds: a
    /// full disk must not stay full of an upload that cannot finish.
    pub(in crate::storage) async fn commit(self, sha256: [u8; 32]) -> Result<(), StorageError> {
        blocking(self.name.to_string(), move || {
            let text = self.name.as_str();
            let done = apply_mode(&self.file, &self.meta)
                .and_then(|()| self.file.sync_all())
                .map_err(|e| io_error(text, e))
                .and_then(|()| self.inner.publish(&self.file_name, &self.name))
                .and_then(|()| {
                    // The time only once renamed: partials are expired by their time, and one
                    // given an old time could be swept away before the rename. The file is
                    // still ours (the same open file); its new time is made durable with it.
                    if self.meta.modified.is_none() {
                        return Ok(());
                    }
                    apply_time(&self.file, &self.meta)
                        .and_then(|()| self.file.sync_all())
                        .map_err(|e| io_error(text, e))
                });
            match &done {
                Ok(()) => {
                    self.inner.index().remove(&self.file_name);
                    self.inner.digests.committed(&self.file, sha256);
                }
                Err(StorageError::NoSpace) => self.inner.remove_partial(&self.file_name),
                Err(_) => {}
            }
            done
        })
        .await
    }

    pub(in crate::storage) async fn discard(self) {
        let inner = self.inner.clone();
        let file_name = self.file_name.clone();
        let _ = tokio::task::spawn_blocking(move || inner.remove_partial(&file_name)).await;
    }
}

impl Drop for LocalPartial {
    fn drop(&mut self) {
        self.inner.release(&self.file_name, &self.claim);
    }
}

/// The names in the directory `dir` that start with `prefix`.
fn names(dir: BorrowedFd<'_>, prefix: &str) -> Vec<OsString> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(dir, ".", flags, Mode::empty()) else {
        return Vec::new();
    };
    let Ok(read) = Dir::new(fd) else {
        return Vec::new();
    };
    read.flatten()
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
        .filter(|n| n.as_bytes().starts_with(prefix.as_bytes()))
        .collect()
}

/// Removes the files named `prefix*` in the directory `dir` untouched for longer than
/// `older_than` and that `may_remove` allows; returns the names of those left.
pub(super) fn remove_stale(
    dir: BorrowedFd<'_>,
    prefix: &str,
    older_than: Duration,
    may_remove: impl Fn(&OsStr) -> bool,
) -> Vec<OsString> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut kept = Vec::new();
    for name in names(dir, prefix) {
        let Ok(st) = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let age = now.saturating_sub(st.st_mtime);
        if age > older_than.as_secs() as i64 && may_remove(&name) {
            match rustix::fs::unlinkat(dir, &name, AtFlags::empty()) {
                Ok(()) => tracing::info!("removed an expired partial upload"),
                Err(Errno::NOENT) => {}
                Err(e) => {
                    tracing::warn!("cannot remove an expired partial upload: {e}");
                    kept.push(name);
                }
            }
        } else {
            kept.push(name);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
