//! Plain uploads to the local directory: a private temp file, committed by fsync, rename over
//! the target, fsync of the directory.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::manage::{apply_mode, apply_time};
use super::{blocking, Local};
use crate::fsutil::{new_file_permissions, sync_dir};
use crate::paths::SafeName;
use crate::protocol::FileMeta;
use crate::storage::{StorageError, Upload, UploadInner, WriteStream};
use crate::transfer::{write_all_at, FileSink};

/// An upload being received into a private temp file, which disappears if dropped.
#[derive(Debug)]
pub struct LocalUpload {
    temp: tempfile::NamedTempFile,
    /// The temp file, shared with the sinks writing it.
    file: Arc<std::fs::File>,
    target: PathBuf,
    name: String,
    /// What the file gets as it is committed.
    meta: FileMeta,
}

impl Local {
    pub(in crate::storage) async fn begin_upload(
        &self,
        name: SafeName,
        _size: u64,
    ) -> Result<Upload, StorageError> {
        let inner = self.inner.clone();
        let upload = blocking(name.to_string(), move || {
            let text = name.as_str();
            inner.create_parents(&name)?;
            // The entry itself: an upload over an in-root link replaces the link, not its target.
            let target = inner.resolve_entry(&name)?;
            if target.is_dir() {
                return Err(StorageError::IsADirectory(text.to_owned()));
            }
            let temp = tempfile::Builder::new()
                .prefix("upload-")
                .permissions(new_file_permissions(&target))
                .tempfile_in(&inner.staging)
                .map_err(|e| StorageError::from_io(text, e))?;
            let file = temp
                .as_file()
                .try_clone()
                .map_err(|e| StorageError::from_io(text, e))?;
            Ok(LocalUpload {
                temp,
                file: Arc::new(file),
                target,
                name: text.to_owned(),
                meta: FileMeta::default(),
            })
        })
        .await?;
        Ok(Upload {
            inner: UploadInner::Local(upload),
        })
    }
}

impl LocalUpload {
    pub(in crate::storage) fn sink(&self) -> WriteStream {
        WriteStream::File(FileSink::new(self.file.clone(), 0))
    }

    pub(in crate::storage) fn set_meta(&mut self, meta: FileMeta) {
        self.meta = meta;
    }

    pub(in crate::storage) async fn commit(self, _sha256: [u8; 32]) -> Result<(), StorageError> {
        blocking(self.name.clone(), move || {
            let io_err = |e| StorageError::from_io(&self.name, e);
            self.apply_meta().map_err(io_err)?;
            self.file.sync_all().map_err(io_err)?;
            self.publish()
        })
        .await
    }

    pub(in crate::storage) async fn commit_whole(
        self,
        body: Vec<Bytes>,
        _sha256: [u8; 32],
    ) -> Result<(), StorageError> {
        blocking(self.name.clone(), move || {
            let io_err = |e| StorageError::from_io(&self.name, e);
            write_all_at(&self.file, 0, &body).map_err(io_err)?;
            self.apply_meta().map_err(io_err)?;
            self.file.sync_all().map_err(io_err)?;
            self.publish()
        })
        .await
    }

    /// Gives the temp file, all written, its meta: in place with it when it is renamed.
    fn apply_meta(&self) -> std::io::Result<()> {
        apply_mode(&self.file, &self.meta)?;
        apply_time(&self.file, &self.meta)
    }

    /// Renames the fsynced temp file over the target and fsyncs the directory.
    fn publish(self) -> Result<(), StorageError> {
        let LocalUpload {
            temp, target, name, ..
        } = self;
        temp.persist(&target)
            .map_err(|e| StorageError::from_io(&name, e.error))?;
        publish_done(&target, &name)
    }
}

/// After a rename onto `target`: makes it durable by fsyncing the directory.
pub(super) fn publish_done(target: &std::path::Path, name: &str) -> Result<(), StorageError> {
    if let Some(parent) = target.parent() {
        sync_dir(parent).map_err(|e| StorageError::from_io(name, e))?;
    }
    Ok(())
}
