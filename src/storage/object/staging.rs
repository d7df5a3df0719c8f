//! Staged uploads: the body goes as ONE multipart upload created at the file's own key (with the
//! metadata known up front: time, mode), a *manifest* in the private area says how far its parts
//! are stored ([`super::manifest`]), and the *publish* completes it once the SHA-256 matched
//! ([`super::publish`]): until then nothing is visible under the name (parts of an open upload
//! are not an object), and completing it is atomic.
//!
//! ```text
//!  P/.qft/partials/<id>.json   a resumable upload's manifest: upload id, parts with their hashes
//!  P/.qft/uploads/<id>.json    a plain upload's: only its upload id, for a crashed server's sweep
//!  P/a/b.txt                   the open multipart upload itself, invisible until completed
//! ```
//! - For a resumable upload the manifest is rewritten as parts are stored (each part's ETag,
//!   SHA-256 and the whole file's hash state after it, every few parts: [`SAVE_PARTS`],
//!   [`SAVE_EVERY`]), so that if this server dies, the next attempt, on any server, continues
//!   the same multipart upload after the part the client and the manifest agree on. Every
//!   manifest write is conditional on the ETag this attempt last saw: one that fails means a
//!   newer attempt took over, and this one stops.
//! - An attempt that breaks waits for the parts it sent and records them, and leaves the upload
//!   open for the next; it never completes it. Bytes short of a whole part are lost then (a
//!   part that is not the file's last must be whole), unless they end the file. One that broke
//!   before its first part keeps what arrived as a *tail* object (`partials/<id>/tail`), which
//!   the next attempt reads back, hashes and puts at the start of its first part.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::ObjectStoreExt;
use sha2::Sha256;

use super::manifest::{Manifest, Open, Part, Tail};
use super::meta::meta_attributes;
use super::writer::{part_size, PartWriter};
use super::Inner;
use crate::protocol::FileMeta;
use crate::storage::StorageError;
use crate::transfer::{Block, Sink};

/// Where resumable uploads are staged, under the private area.
pub(super) const PARTIALS: &str = "partials";
/// Where plain uploads are staged.
pub(super) const UPLOADS: &str = "uploads";
/// A resumable upload's manifest is rewritten once [`SAVE_PARTS`] parts were stored since the
/// last write, or [`SAVE_EVERY`] after it, whichever comes first: each write is a request in the
/// upload's path (one per part was 128 per GiB), and what it does not name yet is what a killed
/// server loses.
const SAVE_EVERY: Duration = Duration::from_millis(250);
const SAVE_PARTS: usize = 4;

/// A staged upload: its manifest and the multipart upload being written.
#[derive(Debug)]
pub(super) struct Staging {
    pub inner: Arc<Inner>,
    /// The client's name, for errors.
    pub name: Arc<str>,
    /// The file's key, where the multipart upload is.
    pub target: Path,
    /// The manifest's key.
    pub manifest_key: Path,
    /// Rewrite the manifest as parts are stored (resumable uploads), not only when a multipart
    /// upload begins (plain uploads, which only need their leftovers found).
    pub record_parts: bool,
    pub manifest: Manifest,
    /// The manifest's ETag as this attempt last wrote or read it.
    pub etag: Option<String>,
    /// When this attempt last wrote the manifest, and how many parts it named.
    pub saved: (Instant, usize),
    pub writer: Option<PartWriter>,
    /// Set once a write of the manifest found a newer owner.
    pub superseded: bool,
    /// What the published file keeps besides its bytes (see `meta`): the upload is created
    /// with it.
    pub meta: FileMeta,
    /// The whole file's hash state where this attempt's bytes begin, once the caller handed the
    /// hashing over ([`Staging::take_hashing`]): the writer hashes the parts then.
    pub hash_from: Option<Sha256>,
    /// An upload an earlier attempt began with other metadata, to abort ([`Staging::set_meta`]).
    pub stale: Option<Open>,
    /// The writer was given a kept tail first: its parts begin at byte 0.
    pub prefilled: bool,
}

impl Staging {
    /// A new staging `<kind>/<id>` of the upload to `target`, empty, owned by `owner`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inner: Arc<Inner>,
        kind: &str,
        id: &str,
        name: &str,
        target: Path,
        size: u64,
        owner: String,
        record_parts: bool,
    ) -> Self {
        let manifest_key = inner.private_key(&format!("{kind}/{id}.json"));
        Staging {
            inner,
            name: name.into(),
            target,
            manifest_key,
            record_parts,
            manifest: Manifest {
                name: name.to_owned(),
                size,
                owner,
                ..Manifest::default()
            },
            etag: None,
            saved: (Instant::now(), 0),
            writer: None,
            superseded: false,
            meta: FileMeta::default(),
            hash_from: None,
            stale: None,
            prefilled: false,
        }
    }

    pub fn io(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StorageError {
        StorageError::Io {
            name: self.name.to_string(),
            source: io::Error::other(e),
        }
    }

    pub fn store_error(&self, e: object_store::Error) -> StorageError {
        super::from_store(&self.name, e)
    }

    /// Sets what the file keeps. An upload an earlier attempt began with other metadata cannot
    /// take it (S3 fixes it when the upload is created): that one is dropped and this attempt
    /// starts over. Returns whether what was held is kept.
    pub fn set_meta(&mut self, meta: FileMeta) -> bool {
        self.meta = meta;
        if self.manifest.open.as_ref().is_none_or(|o| o.meta == meta) {
            return true;
        }
        // Aborted by the next write of the manifest's owner (`keep`).
        if self.stale.is_none() {
            self.stale = self.manifest.open.take();
        }
        self.manifest.open = None;
        false
    }

    /// Hands the whole file's hashing over, from `state` (the state over what is kept): the
    /// writer hashes each part, once, for the manifest and for the digest. Only worth it when
    /// there will be parts (a body of a part or more).
    pub fn take_hashing(&mut self, state: Sha256) -> Option<Sha256> {
        let size = self.manifest.size;
        let part = self
            .manifest
            .open
            .as_ref()
            .map_or(part_size(size), |o| o.part_size);
        if !self.record_parts || size < part {
            return Some(state);
        }
        // The writer hashes from where its next part begins: byte 0 if it was given the tail.
        let start = match self.prefilled {
            true => Sha256::default(),
            false => state,
        };
        match self.writer.take() {
            Some(writer) => self.writer = Some(writer.hashing(start)),
            None => self.hash_from = Some(start),
        }
        None
    }

    /// The key of the tail ([`super::manifest::Tail`]).
    fn tail_key(&self) -> Path {
        let key = self
            .manifest_key
            .as_ref()
            .trim_end_matches(".json")
            .to_owned()
            + "/tail";
        Path::from(key)
    }

    /// Keeps the first `from` bytes: the parts that end at or before it (`from` is where one
    /// ends); later ones are left out of the upload (a part sent again replaces its number's).
    pub async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        if let Some(stale) = self.stale.take() {
            self.abort_open(&stale).await;
        }
        if let Some(tail) = self.manifest.tail.take() {
            // Its first `from` bytes begin the first part (less than one part, in memory).
            if from > tail.len {
                return Err(self.io(format!("cannot continue at byte {from}")));
            }
            let key = Path::from(tail.key.as_str());
            if from > 0 {
                let store = &self.inner.store.objects;
                let kept = store.get_range(&key, 0..from).await;
                let kept = kept.map_err(|e| self.store_error(e))?;
                if kept.len() as u64 != from {
                    return Err(self.io("the kept bytes ended early"));
                }
                self.begin_writer().write(&[kept]).await?;
                self.prefilled = true;
            }
            self.save().await?;
            let _ = self.inner.store.objects.delete(&key).await;
            return Ok(());
        }
        if let Some(open) = &mut self.manifest.open {
            let mut end = 0;
            let kept = open
                .parts
                .iter()
                .take_while(|p| {
                    let fits = end + p.len <= from;
                    end += p.len * u64::from(fits);
                    fits
                })
                .count();
            if end != from {
                return Err(self.io(format!("cannot continue at byte {from}")));
            }
            open.parts.truncate(kept);
            open.len = from;
        } else if from != 0 {
            return Err(self.io(format!("cannot continue at byte {from}")));
        }
        self.save().await
    }

    /// The writer for this attempt: it continues the recorded upload, or begins one (with
    /// its first whole part).
    pub fn begin_writer(&mut self) -> &mut PartWriter {
        let store = self.inner.store.clone();
        let writer = self.writer.get_or_insert_with(|| {
            let writer = match &self.manifest.open {
                Some(open) => PartWriter::resume(
                    store,
                    self.name.clone(),
                    self.target.clone(),
                    open.part_size,
                    open.upload_id.clone(),
                    open.parts.iter().map(Part::to_stored).collect(),
                ),
                None => PartWriter::new(
                    store,
                    self.name.clone(),
                    self.target.clone(),
                    self.manifest.size,
                    meta_attributes(&self.meta),
                ),
            };
            let writer = writer.numbered(self.manifest.slot);
            match self.hash_from.take() {
                Some(state) => writer.hashing(state),
                None => writer,
            }
        });
        writer
    }

    /// Appends `block` to the upload.
    pub async fn write(&mut self, block: Block) -> Result<(), StorageError> {
        if self.superseded {
            return Err(StorageError::Superseded(self.name.to_string()));
        }
        let writer = self.begin_writer();
        let wrote = async {
            writer.write(&block).await?;
            writer.collect_finished().await
        }
        .await;
        if let Err(e) = wrote {
            return Err(self.gone_upload(e).await);
        }
        let writer = self.writer.as_ref().expect("begun above");
        let began = writer.upload_id().is_some() && self.manifest.open.is_none();
        let stored = writer.parts().len();
        if began {
            // Named in the manifest as soon as it exists: a crashed server's leftovers are found.
            self.record_open();
            self.save().await?;
        } else if self.record_parts
            && stored > self.saved.1
            && (stored - self.saved.1 >= SAVE_PARTS || self.saved.0.elapsed() >= SAVE_EVERY)
        {
            // What the manifest names is what survives this server.
            self.record_open();
            self.save().await?;
        }
        Ok(())
    }

    /// A part refused as "not found": the multipart upload is gone (aborted by a sweep, or by
    /// another tool). The manifest forgets it, so the next attempt starts over instead of
    /// failing the same way.
    async fn gone_upload(&mut self, e: StorageError) -> StorageError {
        if let StorageError::NotFound(_) = e {
            self.writer = None;
            self.manifest.open = None;
            let _ = self.save().await;
            return self
                .io("the staged upload vanished from the store; the next attempt starts over");
        }
        e
    }

    /// Names the upload being written, as far as its parts are stored, in the manifest.
    pub fn record_open(&mut self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let Some(id) = writer.upload_id() else {
            return;
        };
        let meta = self.manifest.open.as_ref().map_or(self.meta, |o| o.meta);
        self.manifest.open = Some(Open {
            key: writer.key().to_string(),
            upload_id: id.clone(),
            part_size: writer.part_size(),
            parts: writer.parts().iter().map(Part::from_stored).collect(),
            len: writer.stored(),
            meta,
        });
    }

    /// The SHA-256 of the whole file, for a staging that took the hashing over: the bytes left
    /// are stored as the last part first.
    pub async fn digest(&mut self) -> Result<[u8; 32], StorageError> {
        let size = self.manifest.size;
        let writer = self.begin_writer();
        if writer.written() != size {
            let written = writer.written();
            return Err(self.io(format!("staged {written} bytes of {size}")));
        }
        let digest = writer.digest().await;
        self.record_open();
        digest
    }

    /// What a broken attempt does with what arrived: waits for the parts it sent, adds the
    /// bytes left as the last part if they end the file, and records them in the manifest for
    /// the next attempt wherever it runs. The upload stays open for that attempt.
    pub async fn store_held(&mut self) -> Result<(), StorageError> {
        let size = self.manifest.size;
        if let Some(writer) = self.writer.as_mut() {
            if writer.upload_id().is_some() {
                match writer.written() == size {
                    true => writer.store_parts().await?,
                    false => writer.flush().await?,
                }
                self.record_open();
            } else if writer.written() > 0 {
                // Less than one part arrived: kept as the tail, an object of its own.
                let body = writer.take_filling();
                let len = body.len() as u64;
                let key = self.tail_key();
                let store = &self.inner.store.objects;
                store
                    .put(&key, body.into())
                    .await
                    .map_err(|e| self.store_error(e))?;
                self.manifest.tail = Some(Tail {
                    key: key.to_string(),
                    len,
                });
            }
            self.writer = None;
        }
        self.save().await
    }

    /// Aborts a multipart upload the manifest no longer names.
    async fn abort_open(&self, open: &Open) {
        if let Ok(key) = Path::parse(&open.key) {
            let multipart = &self.inner.store.multipart;
            if let Err(e) = multipart.abort_multipart(&key, &open.upload_id).await {
                tracing::debug!("aborting a staged upload: {e}");
            }
        }
    }

    /// Removes everything staged: the multipart upload (never completed now) and the manifest.
    pub async fn remove(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        } else if let Some(open) = self.manifest.open.clone() {
            self.abort_open(&open).await;
        }
        if let Some(stale) = self.stale.take() {
            self.abort_open(&stale).await;
        }
        if let Some(tail) = self.manifest.tail.take() {
            let _ = self.inner.store.objects.delete(&Path::from(tail.key)).await;
        }
        self.manifest.open = None;
        let _ = self.inner.store.objects.delete(&self.manifest_key).await;
    }
}

/// Bytes written to a staged upload, for the transfer layer.
#[derive(Debug, Clone)]
pub struct ObjectSink {
    pub(super) staging: Arc<tokio::sync::Mutex<Staging>>,
}

impl Sink for ObjectSink {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let mut staging = self.staging.lock().await;
        staging.write(block).await.map_err(|e| match e {
            StorageError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })
    }
}
