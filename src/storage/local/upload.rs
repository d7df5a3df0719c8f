//! Plain uploads to the local directory: a private temp file, committed by fsync, `renameat`
//! over the target relative to its directory's handle, fsync of that directory. Small files
//! received whole are committed in groups that share those flushes (`commit`).

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tokio::sync::oneshot;

use super::commit::Member;
use super::manage::{apply_mode, apply_time};
use super::resolve::{io_error, sync_dir, Found, Last, Parents};
use super::{blocking, Inner, Local};
use crate::paths::SafeName;
use crate::protocol::FileMeta;
use crate::storage::{StorageError, Upload, UploadInner, Whole, WriteStream};
use crate::transfer::{write_all_at, FileSink};

/// An upload being received into a private temp file, which disappears if dropped.
#[derive(Debug)]
pub struct LocalUpload {
    staged: Staged,
    /// The temp file, shared with the sinks writing it.
    file: Arc<std::fs::File>,
    name: SafeName,
    /// What the file gets as it is committed.
    meta: FileMeta,
}

/// A file in the staging area that is removed when dropped, unless it was published.
#[derive(Debug)]
pub(super) struct Staged {
    inner: Arc<Inner>,
    /// Its name in the staging area.
    pub(super) file_name: OsString,
    published: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = rustix::fs::unlinkat(&self.inner.staging, &self.file_name, AtFlags::empty());
        }
    }
}

impl Local {
    pub(in crate::storage) async fn begin_upload(
        &self,
        name: SafeName,
        _size: u64,
    ) -> Result<Upload, StorageError> {
        let inner = self.inner.clone();
        let upload = blocking(name.to_string(), move || {
            let mode = inner.target_mode(&name)?;
            let (file, staged) = inner.stage(mode, name.as_str())?;
            Ok(LocalUpload {
                staged,
                file: Arc::new(file),
                name,
                meta: FileMeta::default(),
            })
        })
        .await?;
        Ok(Upload {
            inner: UploadInner::Local(upload),
        })
    }
}

impl Local {
    /// Stages and writes every file on one blocking thread, then commits them all as one
    /// group; each answer comes as its commit ends.
    pub(in crate::storage) async fn store_whole(
        &self,
        files: Vec<Whole>,
    ) -> Vec<Result<(), StorageError>> {
        let inner = self.inner.clone();
        let mut results = Vec::with_capacity(files.len());
        let mut staged = Vec::with_capacity(files.len());
        for file in files {
            let (answer, result) = oneshot::channel();
            results.push((file.name.to_string(), result));
            staged.push((file, answer));
        }
        // Not awaited, as in `commit_whole`: the thread may lead others' rounds after these.
        drop(tokio::task::spawn_blocking(move || {
            let mut members = Vec::with_capacity(staged.len());
            for (file, answer) in staged {
                match inner.stage_whole(&file) {
                    Ok(upload) => members.push(Member::new(upload, file.sha256, answer)),
                    Err(e) => {
                        let _ = answer.send(Err(e));
                    }
                }
            }
            inner.join_commits(members);
        }));
        let mut out = Vec::with_capacity(results.len());
        for (name, result) in results {
            out.push(result.await.unwrap_or_else(|_| Err(lost(name))));
        }
        out
    }
}

/// What a commit whose thread stopped before answering is told.
fn lost(name: String) -> StorageError {
    StorageError::Io {
        name,
        source: std::io::Error::other("the commit was lost (its thread stopped)"),
    }
}

impl Inner {
    /// A small file staged, written whole and given its meta, ready to join a commit.
    fn stage_whole(self: &Arc<Self>, file: &Whole) -> Result<LocalUpload, StorageError> {
        let text = file.name.as_str();
        let mode = self.target_mode(&file.name)?;
        let (handle, staged) = self.stage(mode, text)?;
        let upload = LocalUpload {
            staged,
            file: Arc::new(handle),
            name: file.name.clone(),
            meta: file.meta.unwrap_or_default(),
        };
        upload
            .write_whole(&file.body)
            .map_err(|e| io_error(text, e))?;
        Ok(upload)
    }

    /// The mode for a file about to become `name`: the old file's, so that a replace does not
    /// change who may read it; for a new one (or one replacing a symlink), 0666 less the
    /// umask, as for any program creating a file. Refuses a directory there, and checks the name
    /// as far as it exists (no directory is made yet).
    pub(super) fn target_mode(&self, name: &SafeName) -> Result<u32, StorageError> {
        let text = name.as_str();
        let Some(found) = self.locate(name, Last::Entry, Parents::MayBeMissing)? else {
            return Ok(0o666);
        };
        let Found::Entry { dir, leaf, .. } = found else {
            return Err(StorageError::IsADirectory(text.to_owned()));
        };
        match rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Err(StorageError::IsADirectory(text.to_owned())),
                FileType::RegularFile => Ok(st.st_mode & 0o777),
                _ => Ok(0o666),
            },
            Err(Errno::NOENT) => Ok(0o666),
            Err(e) => Err(io_error(text, e.into())),
        }
    }

    /// Creates a new empty file in the staging area with `mode` (less the umask).
    fn stage(
        self: &Arc<Self>,
        mode: u32,
        text: &str,
    ) -> Result<(std::fs::File, Staged), StorageError> {
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        loop {
            let file_name = OsString::from(format!("upload-{:016x}", unique()));
            match rustix::fs::openat(&self.staging, &file_name, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => {
                    let staged = Staged {
                        inner: self.clone(),
                        file_name,
                        published: false,
                    };
                    return Ok((std::fs::File::from(fd), staged));
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_error(text, e.into())),
            }
        }
    }

    /// Renames the staged file `from` over `name`, making its missing parent directories
    /// first, and makes the rename durable. Everything is relative to directory handles: the
    /// file lands beneath the root whatever is swapped meanwhile.
    pub(super) fn publish(&self, from: &OsStr, name: &SafeName) -> Result<(), StorageError> {
        let dir = self.rename_staged(from, name)?;
        sync_dir(dir.as_fd()).map_err(|e| io_error(name.as_str(), e.into()))
    }

    /// [`Inner::publish`] short of making the rename durable: returns the directory that holds
    /// the file now, whose fsync (or a `syncfs`) does that.
    pub(super) fn rename_staged(
        &self,
        from: &OsStr,
        name: &SafeName,
    ) -> Result<OwnedFd, StorageError> {
        let text = name.as_str();
        let Some(Found::Entry { dir, leaf, .. }) =
            self.locate(name, Last::Entry, Parents::Create)?
        else {
            return Err(StorageError::IsADirectory(text.to_owned()));
        };
        match rustix::fs::renameat(&self.staging, from, &dir, &leaf) {
            Ok(()) => {}
            Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => {
                return Err(StorageError::IsADirectory(text.to_owned()))
            }
            Err(e) => return Err(io_error(text, e.into())),
        }
        Ok(dir)
    }
}

/// A name no other temp file is likely to have (`O_EXCL` decides).
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl LocalUpload {
    pub(in crate::storage) fn sink(&self) -> WriteStream {
        WriteStream::File(FileSink::new(self.file.clone(), 0))
    }

    pub(in crate::storage) fn set_meta(&mut self, meta: FileMeta) {
        self.meta = meta;
    }

    pub(in crate::storage) async fn commit(self, sha256: [u8; 32]) -> Result<(), StorageError> {
        blocking(self.name.to_string(), move || {
            let text = self.name.as_str();
            self.apply_meta().map_err(|e| io_error(text, e))?;
            self.file.sync_all().map_err(|e| io_error(text, e))?;
            self.publish(sha256)
        })
        .await
    }

    /// Writes a small file received whole and commits it with the others being committed at
    /// the same time (`commit`): they share the flushes to disk.
    pub(in crate::storage) async fn commit_whole(
        self,
        body: Vec<Bytes>,
        sha256: [u8; 32],
    ) -> Result<(), StorageError> {
        let name = self.name.to_string();
        let (answer, result) = oneshot::channel();
        // Not awaited: the thread that writes the file may go on to lead rounds of others'
        // commits long after this one's answer came through `answer`; an answer it held until
        // then would hold a transfer slot of its client (a sixteenth of `-j 16`) as long.
        drop(tokio::task::spawn_blocking(move || {
            let text = self.name.as_str();
            let written = self.write_whole(&body).map_err(|e| io_error(text, e));
            if let Err(e) = written {
                let _ = answer.send(Err(e));
                return;
            }
            let inner = self.staged.inner.clone();
            inner.join_commits(vec![Member::new(self, sha256, answer)]);
        }));
        result.await.unwrap_or_else(|_| Err(lost(name)))
    }

    pub(super) fn name(&self) -> &SafeName {
        &self.name
    }

    /// Makes the temp file's data and meta durable.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }

    /// Renames the temp file (made durable first) into place; returns the directory that holds
    /// it now. On failure the temp file goes when this is dropped.
    pub(super) fn rename(&mut self) -> Result<OwnedFd, StorageError> {
        let dir = self
            .staged
            .inner
            .rename_staged(&self.staged.file_name, &self.name)?;
        self.staged.published = true;
        Ok(dir)
    }

    /// Records the digest of a file committed (renamed, and the rename durable).
    pub(super) fn committed(&self, sha256: [u8; 32]) {
        self.staged.inner.digests.committed(&self.file, sha256);
    }

    /// Writes a small file's whole body and gives it its meta, ready to join a commit.
    fn write_whole(&self, body: &[Bytes]) -> std::io::Result<()> {
        write_all_at(&self.file, 0, body)?;
        self.apply_meta()
    }

    /// Gives the temp file, all written, its meta: in place with it when it is renamed.
    fn apply_meta(&self) -> std::io::Result<()> {
        apply_mode(&self.file, &self.meta)?;
        apply_time(&self.file, &self.meta)
    }

    /// Renames the fsynced temp file over the target (on failure the temp file goes), and
    /// records its digest.
    fn publish(mut self, sha256: [u8; 32]) -> Result<(), StorageError> {
        self.staged
            .inner
            .publish(&self.staged.file_name, &self.name)?;
        self.staged.published = true;
        self.staged.inner.digests.committed(&self.file, sha256);
        Ok(())
    }
}
