//! Staged uploads in the private area: the body as *segments* (objects, each written by a
//! [`PartWriter`]), a *manifest* saying what is where ([`super::manifest`]), and the *publish*
//! that makes it appear under its name ([`super::publish`]).
//!
//! ```text
//!  P/.qft/partials/<id>.json          the manifest: segments stored, the multipart upload open
//!  P/.qft/partials/<id>/<start>-<n>   a segment: bytes [start, start+len) of the file
//! ```
//! - For a resumable upload the manifest is rewritten as parts are stored (upload id and part
//!   ETags, every few parts: [`SAVE_PARTS`], [`SAVE_EVERY`]), so that if this server dies, the next attempt, on any
//!   server, completes that multipart upload itself and continues after its last recorded part
//!   ([`Staging::recover`]). Every manifest write is conditional on the ETag this attempt last
//!   saw: one that fails means a newer attempt took over, and this one stops.
//! - An attempt that breaks stores what it held ([`Staging::store_held`]) but never completes
//!   an open multipart upload: only the attempt that owns the manifest does, so two servers never
//!   complete one upload at once (the race that once made a resumed upload start over from 0).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::manifest::{Manifest, Open, Segment};
use super::meta::meta_attributes;
use super::read::{ObjectContent, Span};
use super::writer::{pour, PartWriter};
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

/// A staged upload: its manifest and the segment being written.
#[derive(Debug)]
pub(super) struct Staging {
    pub inner: Arc<Inner>,
    /// The client's name, for errors.
    pub name: Arc<str>,
    /// The manifest's key.
    pub manifest_key: Path,
    /// Segments' keys start with this.
    pub data_prefix: String,
    /// Rewrite the manifest as parts are stored (resumable uploads), not only when a multipart
    /// upload begins (plain uploads, which only need their leftovers found).
    pub record_parts: bool,
    pub manifest: Manifest,
    /// The manifest's ETag as this attempt last wrote or read it.
    pub etag: Option<String>,
    /// When this attempt last wrote the manifest, and how many parts of the open segment it named.
    pub saved: (Instant, usize),
    pub writer: Option<SegmentWriter>,
    /// Set once a write of the manifest found a newer owner.
    pub superseded: bool,
    /// What the published file keeps besides its bytes (see `meta`): new segments are written
    /// with it, so that a publish by copy keeps it too.
    pub meta: FileMeta,
}

/// The segment being written: bytes from `start` on.
#[derive(Debug)]
pub(super) struct SegmentWriter {
    pub parts: PartWriter,
    pub start: u64,
    /// The metadata it is written with.
    pub meta: FileMeta,
}

impl Staging {
    /// A new staging area `<kind>/<id>`, empty, owned by `owner`.
    pub fn new(
        inner: Arc<Inner>,
        kind: &str,
        id: &str,
        name: &str,
        size: u64,
        owner: String,
        record_parts: bool,
    ) -> Self {
        let manifest_key = inner.private_key(&format!("{kind}/{id}.json"));
        let data_prefix = inner.private_key(&format!("{kind}/{id}")).to_string() + "/";
        Staging {
            inner,
            name: name.into(),
            manifest_key,
            data_prefix,
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

    pub async fn delete_segments(&self, segments: &[Segment]) {
        for segment in segments {
            if let Ok(key) = Path::parse(&segment.key) {
                if let Err(e) = self.inner.store.objects.delete(&key).await {
                    tracing::warn!("cannot remove a staged segment: {e}");
                }
            }
        }
    }

    /// The stored segments as one content from byte 0.
    pub fn content(&self) -> ObjectContent {
        let spans = self
            .manifest
            .segments
            .iter()
            .filter_map(|s| {
                Some(Span {
                    key: Path::parse(&s.key).ok()?,
                    etag: None,
                    len: s.len,
                })
            })
            .collect();
        ObjectContent::spans(&self.inner.store, spans, &self.name)
    }

    /// Keeps the first `from` bytes: later segments go, and the one `from` falls in is written
    /// again up to `from` (streamed, as any segment).
    pub async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        self.finish_writer().await?;
        let mut dropped = Vec::new();
        let mut cut = None;
        self.manifest.segments.retain(|s| {
            if s.start >= from {
                dropped.push(s.clone());
                false
            } else if s.start + s.len > from {
                cut = Some(s.clone());
                false
            } else {
                true
            }
        });
        if let Some(segment) = cut {
            let key = Path::parse(&segment.key).map_err(|e| self.io(e))?;
            let span = Span {
                key,
                etag: None,
                len: from - segment.start,
            };
            let content = ObjectContent::spans(&self.inner.store, vec![span], &self.name);
            let mut source = content.source_at(0);
            self.begin_writer(segment.start);
            let writer = &mut self.writer.as_mut().expect("begun above").parts;
            pour(&mut source, from - segment.start, writer).await?;
            self.finish_writer().await?;
            dropped.push(segment);
        }
        self.save().await?;
        self.delete_segments(&dropped).await;
        Ok(())
    }

    /// Starts a new segment at `start` (the multipart upload itself begins with its first part).
    fn begin_writer(&mut self, start: u64) {
        let key = format!(
            "{}{start:016x}-{}",
            self.data_prefix,
            super::upload::unique()
        );
        let key = Path::parse(key).expect("staging keys are plain");
        let expected = self.manifest.size.saturating_sub(start);
        let parts = PartWriter::new(
            self.inner.store.clone(),
            self.name.clone(),
            key,
            expected,
            meta_attributes(&self.meta),
        );
        self.writer = Some(SegmentWriter {
            parts,
            start,
            meta: self.meta,
        });
    }

    /// Appends `block` to the segment being written (begun at the end of what is held).
    pub async fn write(&mut self, block: Block) -> Result<(), StorageError> {
        if self.superseded {
            return Err(StorageError::Superseded(self.name.to_string()));
        }
        if self.writer.is_none() {
            self.begin_writer(self.manifest.held());
        }
        let writer = self.writer.as_mut().expect("begun above");
        writer.parts.write(&block).await?;
        writer.parts.collect_finished().await?;
        let began = writer.parts.upload_id().is_some() && self.manifest.open.is_none();
        let stored = writer.parts.parts().len();
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

    /// Names the segment being written, as far as its parts are stored, in the manifest.
    pub fn record_open(&mut self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let Some(id) = writer.parts.upload_id() else {
            return;
        };
        self.manifest.open = Some(Open {
            key: writer.parts.key().to_string(),
            start: writer.start,
            upload_id: id.clone(),
            parts: writer
                .parts
                .parts()
                .iter()
                .map(|p| p.content_id.clone())
                .collect(),
            len: writer.parts.stored(),
            meta: writer.meta,
        });
    }

    /// Stores what the segment being written holds and completes it: it joins the segments.
    /// Only the attempt that owns the staging does this (see the module doc).
    pub async fn finish_writer(&mut self) -> Result<(), StorageError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if writer.parts.written() > 0 {
            // On failure the writer stays, for `abort_writer`.
            let len = writer.parts.complete().await?;
            self.manifest.segments.push(Segment {
                key: writer.parts.key().to_string(),
                start: writer.start,
                len,
                meta: writer.meta,
            });
        }
        self.writer = None;
        self.manifest.open = None;
        Ok(())
    }

    /// What a broken attempt does with what arrived: stores it and says so in the manifest, for
    /// the next attempt wherever it runs. Less than a part is put as a segment of its own; an
    /// open multipart upload gets its last part and stays open, its parts recorded, for the
    /// next owner to complete ([`Staging::recover`]).
    pub async fn store_held(&mut self) -> Result<(), StorageError> {
        match self.writer.as_mut() {
            Some(writer) if writer.parts.upload_id().is_some() => {
                writer.parts.store_parts().await?;
                self.record_open();
                self.writer = None;
            }
            _ => self.finish_writer().await?,
        }
        self.save().await
    }

    /// Stops the segment being written, throwing away what it holds.
    pub async fn abort_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.parts.abort().await;
            self.manifest.open = None;
        }
    }

    /// Removes everything staged: the segment being written, the segments, the manifest.
    pub async fn remove(&mut self) {
        self.abort_writer().await;
        let segments = std::mem::take(&mut self.manifest.segments);
        self.delete_segments(&segments).await;
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
