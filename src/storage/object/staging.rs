//! Staged uploads in the private area: the body as *segments* (objects, each written as one
//! multipart upload), a *manifest* saying what is where, and the *publish* that makes it appear
//! under its name.
//!
//! ```text
//!  P/.qft/partials/<id>.json          the manifest: segments stored, the multipart upload open
//!  P/.qft/partials/<id>/<start>-<n>   a segment: bytes [start, start+len) of the file
//! ```
//! - A segment is written as a multipart upload with the part size picked from the length still
//!   to come ([`part_size`]), at most [`IN_FLIGHT`] bytes of parts uploading at once: memory is
//!   a part being filled plus those, whatever the file's size. A segment shorter than one part
//!   is one plain put.
//! - For a resumable upload the manifest is rewritten after each stored part (upload id and part
//!   ETags), so that if this server dies, the next attempt, on any server, completes that
//!   multipart upload itself and continues after its last part ([`Staging::recover`]). Every
//!   manifest write is conditional on the ETag this attempt last saw: one that fails means a
//!   newer attempt took over, and this one stops.
//! - Publishing: object_store has no conditional or copy-assembled multipart upload, so a
//!   single segment (the usual case: an upload that never broke) is published with one
//!   server-side copy, atomic in S3 (whole or not at all; concurrent commits of one name leave
//!   one of them). Several segments (a resumed upload), or one too large for a copy (S3 copies
//!   at most 5 GiB at once), are streamed into a multipart upload to the name itself, completed
//!   last: the same atomicity, at the price of reading the segments once more.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::MultipartId;
use object_store::{
    Attribute, Attributes, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::read::{ObjectContent, Span};
use super::Inner;
use crate::storage::StorageError;
use crate::transfer::{Block, Sink, Source, BLOCK};

/// Where resumable uploads are staged, under the private area.
pub(super) const PARTIALS: &str = "partials";
/// Where plain uploads are staged.
pub(super) const UPLOADS: &str = "uploads";

/// The smallest part: 8 MiB, as the AWS CLI uses (S3's minimum is 5 MiB).
const MIN_PART: u64 = 8 << 20;
/// S3's part-count limit, less a margin for a segment rewritten on resume.
const MAX_PARTS: u64 = 9_000;
/// S3's largest part, and largest single copy.
const MAX_PART: u64 = 5 << 30;
/// Bytes of parts uploading at once, per upload: enough to keep a store busy, little enough
/// that many uploads at once stay within memory.
const IN_FLIGHT: u64 = 32 << 20;
/// The metadata key holding the SHA-256 of an object qft wrote in one request.
pub(super) const SHA256_META: &str = "qft-sha256";

/// The part size for a segment of `len` bytes: [`MIN_PART`], or larger so that it takes at
/// most [`MAX_PARTS`] parts (a 48 GiB object at 5 MiB parts would need more than S3 allows).
pub(super) fn part_size(len: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.clamp(MIN_PART, MAX_PART)
}

/// What a staged upload holds, as stored in its manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The client's name for the file (for the log of a sweep).
    pub name: String,
    /// The size announced.
    pub size: u64,
    /// The attempt that owns it now.
    pub owner: String,
    /// Stored segments, in order from byte 0.
    pub segments: Vec<Segment>,
    /// The segment being written, if its multipart upload has begun.
    pub open: Option<Open>,
}

/// A stored segment: the object `key` holds bytes `[start, start + len)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Segment {
    pub key: String,
    pub start: u64,
    pub len: u64,
}

/// A segment's multipart upload in progress, as far as its parts are stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Open {
    pub key: String,
    pub start: u64,
    pub upload_id: String,
    /// ETags of the parts stored, in order from the first.
    pub parts: Vec<String>,
    /// Bytes in those parts.
    pub len: u64,
}

impl Manifest {
    /// Where the stored segments end (they are contiguous from 0).
    pub fn held(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.start + s.len)
    }
}

/// A staged upload: its manifest and the segment being written.
#[derive(Debug)]
pub(super) struct Staging {
    pub inner: Arc<Inner>,
    /// The client's name, for errors.
    pub name: String,
    /// The manifest's key.
    pub manifest_key: Path,
    /// Segments' keys start with this.
    pub data_prefix: String,
    /// Rewrite the manifest after every part (resumable uploads), not only when a multipart
    /// upload begins (plain uploads, which only need their leftovers found).
    pub record_parts: bool,
    pub manifest: Manifest,
    /// The manifest's ETag as this attempt last wrote or read it.
    pub etag: Option<String>,
    pub writer: Option<Writer>,
    /// Set once a write of the manifest found a newer owner.
    pub superseded: bool,
}

/// The segment being written.
#[derive(Debug)]
pub(super) struct Writer {
    key: Path,
    start: u64,
    part_size: usize,
    upload: Option<MultipartId>,
    /// Bytes received and not yet sent as a part.
    buffer: VecDeque<Bytes>,
    buffered: usize,
    /// Parts uploading, in order, with their lengths.
    in_flight: VecDeque<(JoinHandle<object_store::Result<PartId>>, u64)>,
    /// Parts stored, in order.
    parts: Vec<PartId>,
    /// Bytes in the stored parts.
    stored: u64,
    /// Metadata for the object (set on a publish that writes the file itself).
    attributes: Attributes,
}

impl Writer {
    fn new(key: Path, start: u64, expected: u64, attributes: Attributes) -> Self {
        Writer {
            key,
            start,
            part_size: part_size(expected) as usize,
            upload: None,
            buffer: VecDeque::new(),
            buffered: 0,
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            stored: 0,
            attributes,
        }
    }

    fn written(&self) -> u64 {
        self.stored + self.in_flight.iter().map(|(_, len)| len).sum::<u64>() + self.buffered as u64
    }

    /// Takes exactly `len` buffered bytes (or all, if fewer) as one payload, without copying.
    fn take(&mut self, len: usize) -> PutPayload {
        let mut pieces = Vec::new();
        let mut left = len;
        while left > 0 {
            let Some(mut piece) = self.buffer.pop_front() else {
                break;
            };
            if piece.len() > left {
                self.buffer.push_front(piece.split_off(left));
            }
            left -= piece.len();
            self.buffered -= piece.len();
            pieces.push(piece);
        }
        pieces.into_iter().collect()
    }
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
            name: name.to_owned(),
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
            writer: None,
            superseded: false,
        }
    }

    fn io(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StorageError {
        StorageError::Io {
            name: self.name.clone(),
            source: io::Error::other(e),
        }
    }

    fn store_error(&self, e: object_store::Error) -> StorageError {
        super::from_store(&self.name, e)
    }

    /// Writes the manifest, conditionally on this attempt still owning it.
    pub async fn save(&mut self) -> Result<(), StorageError> {
        if self.superseded {
            return Err(StorageError::Superseded(self.name.clone()));
        }
        let body = serde_json::to_vec(&self.manifest).map_err(|e| self.io(e))?;
        let mode = match &self.etag {
            Some(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.clone()),
                version: None,
            }),
            None => PutMode::Create,
        };
        let store = &self.inner.store.objects;
        match store
            .put_opts(&self.manifest_key, body.into(), mode.into())
            .await
        {
            Ok(put) => {
                self.etag = put.e_tag;
                Ok(())
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                self.superseded = true;
                Err(StorageError::Superseded(self.name.clone()))
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Reads the manifest, if there is one, and takes it over as `owner`: a write conditional on
    /// the version read. If that version changed meanwhile (an older attempt storing its last
    /// part as it let go), read again: the newest attempt is the one that wins.
    pub async fn take_over(&mut self, owner: String) -> Result<(), StorageError> {
        let mut tries = 0;
        loop {
            self.read_manifest().await?;
            self.manifest.owner = owner.clone();
            self.superseded = false;
            match self.save().await {
                Err(StorageError::Superseded(_)) if tries < 10 => tries += 1,
                other => return other,
            }
        }
    }

    async fn read_manifest(&mut self) -> Result<(), StorageError> {
        let store = &self.inner.store.objects;
        match store.get(&self.manifest_key).await {
            Ok(got) => {
                let etag = got.meta.e_tag.clone();
                let body = got.bytes().await.map_err(|e| self.store_error(e))?;
                match serde_json::from_slice::<Manifest>(&body) {
                    Ok(manifest) if manifest.size == self.manifest.size => {
                        self.manifest = manifest;
                    }
                    // Unreadable or not ours: started over (what it names is swept with it).
                    _ => tracing::warn!("starting over a partial with an unreadable manifest"),
                }
                self.etag = etag;
            }
            Err(object_store::Error::NotFound { .. }) => self.etag = None,
            Err(e) => return Err(self.store_error(e)),
        }
        Ok(())
    }

    /// Makes what an earlier attempt left readable: its open multipart upload is completed with
    /// the parts the manifest records (the attempt may have died with it half-written), and the
    /// segments are checked to follow each other from byte 0.
    pub async fn recover(&mut self) -> Result<(), StorageError> {
        if let Some(open) = self.manifest.open.take() {
            let multipart = &self.inner.store.multipart;
            let key = Path::parse(&open.key).map_err(|e| self.io(e))?;
            let id: MultipartId = open.upload_id.clone();
            let parts = open
                .parts
                .iter()
                .map(|etag| PartId {
                    content_id: etag.clone(),
                })
                .collect();
            let done = if open.parts.is_empty() {
                let _ = multipart.abort_multipart(&key, &id).await;
                None
            } else {
                match multipart.complete_multipart(&key, &id, parts).await {
                    Ok(_) => Some(open.len),
                    // Completed already (by the attempt itself as it let go) or aborted: what
                    // is stored, if anything, is what counts.
                    Err(_) => self
                        .inner
                        .store
                        .objects
                        .head(&key)
                        .await
                        .ok()
                        .map(|m| m.size),
                }
            };
            if let Some(len) = done.filter(|len| *len > 0) {
                self.manifest.segments.push(Segment {
                    key: open.key,
                    start: open.start,
                    len,
                });
            }
        }
        self.manifest.segments.sort_by_key(|s| s.start);
        let mut end = 0;
        let mut keep = 0;
        for segment in &self.manifest.segments {
            if segment.start != end || end + segment.len > self.manifest.size {
                break;
            }
            end += segment.len;
            keep += 1;
        }
        let dropped: Vec<Segment> = self.manifest.segments.drain(keep..).collect();
        self.delete_segments(&dropped).await;
        self.save().await
    }

    async fn delete_segments(&self, segments: &[Segment]) {
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
        ObjectContent::spans(self.inner.store.objects.clone(), spans, &self.name)
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
            let content =
                ObjectContent::spans(self.inner.store.objects.clone(), vec![span], &self.name);
            let mut source = content.source_at(0);
            self.begin_writer(segment.start);
            let mut left = from - segment.start;
            while left > 0 {
                let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
                let block = source
                    .read_block(want)
                    .await
                    .map_err(|e| StorageError::from_io(&self.name, e))?;
                let got: u64 = block.iter().map(|b| b.len() as u64).sum();
                if got == 0 {
                    return Err(self.io("a staged segment ended early"));
                }
                left -= got;
                self.write(block.into()).await?;
            }
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
        self.writer = Some(Writer::new(key, start, expected, Attributes::new()));
    }

    /// Appends `block` to the segment being written (begun at the end of what is held).
    pub async fn write(&mut self, block: Block) -> Result<(), StorageError> {
        if self.superseded {
            return Err(StorageError::Superseded(self.name.clone()));
        }
        if self.writer.is_none() {
            self.begin_writer(self.manifest.held());
        }
        let writer = self.writer.as_mut().expect("begun above");
        for piece in block.iter().filter(|p| !p.is_empty()) {
            writer.buffer.push_back(piece.clone());
            writer.buffered += piece.len();
        }
        while self
            .writer
            .as_ref()
            .is_some_and(|w| w.buffered >= w.part_size)
        {
            self.send_part(false).await?;
        }
        // Parts stored meanwhile are recorded now, not only when the window is full: what the
        // manifest names is what survives this server.
        while self.writer.as_ref().is_some_and(|w| {
            w.in_flight
                .front()
                .is_some_and(|(task, _)| task.is_finished())
        }) {
            self.store_oldest_part().await?;
        }
        Ok(())
    }

    /// Sends the buffered bytes (a whole part, or with `last` whatever is left) as the next part.
    async fn send_part(&mut self, last: bool) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().expect("a segment is being written");
        if writer.upload.is_none() {
            let options = PutMultipartOptions {
                attributes: writer.attributes.clone(),
                ..Default::default()
            };
            let id = self
                .inner
                .store
                .multipart
                .create_multipart_opts(&writer.key, options)
                .await
                .map_err(|e| super::from_store(&self.name, e))?;
            writer.upload = Some(id.clone());
            self.manifest.open = Some(Open {
                key: writer.key.to_string(),
                start: writer.start,
                upload_id: id,
                parts: Vec::new(),
                len: 0,
            });
            self.save().await?;
        }
        let max_in_flight = (IN_FLIGHT / self.writer.as_ref().unwrap().part_size as u64).max(1);
        while self.writer.as_ref().unwrap().in_flight.len() as u64 >= max_in_flight {
            self.store_oldest_part().await?;
        }
        let writer = self.writer.as_mut().unwrap();
        let len = if last {
            writer.buffered
        } else {
            writer.part_size
        };
        let payload = writer.take(len);
        let idx = writer.parts.len() + writer.in_flight.len();
        let (multipart, key, id) = (
            self.inner.store.multipart.clone(),
            writer.key.clone(),
            writer.upload.clone().expect("begun above"),
        );
        let task = tokio::spawn(async move { multipart.put_part(&key, &id, idx, payload).await });
        writer.in_flight.push_back((task, len as u64));
        Ok(())
    }

    /// Waits for the oldest part uploading, and records it.
    async fn store_oldest_part(&mut self) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().expect("a segment is being written");
        let Some((task, len)) = writer.in_flight.pop_front() else {
            return Ok(());
        };
        let part = task
            .await
            .map_err(|e| self.io(e))?
            .map_err(|e| super::from_store(&self.name, e))?;
        let writer = self.writer.as_mut().unwrap();
        writer.parts.push(part.clone());
        writer.stored += len;
        if let Some(open) = &mut self.manifest.open {
            open.parts.push(part.content_id);
            open.len += len;
        }
        if self.record_parts {
            self.save().await?;
        }
        Ok(())
    }

    /// Stores what the segment being written holds, completing it: it joins the segments.
    pub async fn finish_writer(&mut self) -> Result<(), StorageError> {
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        if writer.written() == 0 {
            self.writer = None;
            return Ok(());
        }
        let segment = if writer.upload.is_none() {
            // Less than a part: one put.
            let writer = self.writer.as_mut().unwrap();
            let len = writer.buffered;
            let payload = writer.take(len);
            let options = PutOptions {
                attributes: writer.attributes.clone(),
                ..Default::default()
            };
            let key = writer.key.clone();
            self.inner
                .store
                .objects
                .put_opts(&key, payload, options)
                .await
                .map_err(|e| super::from_store(&self.name, e))?;
            Segment {
                key: key.to_string(),
                start: writer.start,
                len: len as u64,
            }
        } else {
            if self.writer.as_ref().unwrap().buffered > 0 {
                self.send_part(true).await?;
            }
            while !self.writer.as_ref().unwrap().in_flight.is_empty() {
                self.store_oldest_part().await?;
            }
            let writer = self.writer.as_mut().unwrap();
            let parts = std::mem::take(&mut writer.parts);
            let id = writer.upload.clone().unwrap();
            self.inner
                .store
                .multipart
                .complete_multipart(&writer.key, &id, parts)
                .await
                .map_err(|e| super::from_store(&self.name, e))?;
            Segment {
                key: writer.key.to_string(),
                start: writer.start,
                len: writer.stored,
            }
        };
        self.writer = None;
        self.manifest.open = None;
        self.manifest.segments.push(segment);
        Ok(())
    }

    /// Stops the segment being written, throwing away what it holds.
    pub async fn abort_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            for (task, _) in &writer.in_flight {
                task.abort();
            }
            if let Some(id) = &writer.upload {
                let _ = self
                    .inner
                    .store
                    .multipart
                    .abort_multipart(&writer.key, id)
                    .await;
            }
            self.manifest.open = None;
        }
    }

    /// Publishes the whole staged body (`size` bytes, SHA-256 `sha256`) under `target`, then
    /// removes the staging.
    pub async fn publish(&mut self, target: &Path, sha256: [u8; 32]) -> Result<(), StorageError> {
        self.finish_writer().await?;
        if self.superseded {
            return Err(StorageError::Superseded(self.name.clone()));
        }
        let held = self.manifest.held();
        if held != self.manifest.size {
            return Err(self.io(format!("staged {held} bytes of {}", self.manifest.size)));
        }
        let store = self.inner.store.objects.clone();
        let segments = self.manifest.segments.clone();
        match segments.as_slice() {
            [] => {
                let options = PutOptions {
                    attributes: sha256_attributes(sha256),
                    ..Default::default()
                };
                store
                    .put_opts(target, PutPayload::default(), options)
                    .await
                    .map_err(|e| self.store_error(e))?;
            }
            [one] if one.len <= MAX_PART => {
                let key = Path::parse(&one.key).map_err(|e| self.io(e))?;
                store
                    .copy(&key, target)
                    .await
                    .map_err(|e| self.store_error(e))?;
            }
            _ => self.assemble(target, sha256).await?,
        }
        self.remove().await;
        Ok(())
    }

    /// Streams the segments, in order, into a multipart upload to `target` completed last.
    async fn assemble(&mut self, target: &Path, sha256: [u8; 32]) -> Result<(), StorageError> {
        let mut source = self.content().source_at(0);
        let size = self.manifest.size;
        let mut out = Staging {
            inner: self.inner.clone(),
            name: self.name.clone(),
            manifest_key: self.manifest_key.clone(),
            data_prefix: self.data_prefix.clone(),
            record_parts: false,
            manifest: Manifest {
                size,
                ..Manifest::default()
            },
            etag: None,
            writer: Some(Writer::new(
                target.clone(),
                0,
                size,
                sha256_attributes(sha256),
            )),
            // Nothing of this one goes to the manifest (the multipart upload is to the name).
            superseded: false,
        };
        let mut left = size;
        let result = async {
            while left > 0 {
                let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
                let block = source
                    .read_block(want)
                    .await
                    .map_err(|e| StorageError::from_io(&self.name, e))?;
                let got: u64 = block.iter().map(|b| b.len() as u64).sum();
                if got == 0 {
                    return Err(self.io("a staged segment ended early"));
                }
                left -= got;
                out.write_unrecorded(block.into()).await?;
            }
            out.finish_unrecorded().await
        }
        .await;
        if result.is_err() {
            out.abort_writer().await;
        }
        result
    }

    /// [`Staging::write`] for a writer whose progress is not recorded in a manifest.
    async fn write_unrecorded(&mut self, block: Block) -> Result<(), StorageError> {
        self.etag = None;
        let writer = self.writer.as_mut().expect("made with a writer");
        for piece in block.iter().filter(|p| !p.is_empty()) {
            writer.buffer.push_back(piece.clone());
            writer.buffered += piece.len();
        }
        while self
            .writer
            .as_ref()
            .is_some_and(|w| w.buffered >= w.part_size)
        {
            self.send_part_unrecorded(false).await?;
        }
        Ok(())
    }

    async fn send_part_unrecorded(&mut self, last: bool) -> Result<(), StorageError> {
        // The manifest of this writer is never saved: pretend the multipart upload began.
        let writer = self.writer.as_mut().unwrap();
        if writer.upload.is_none() {
            let options = PutMultipartOptions {
                attributes: writer.attributes.clone(),
                ..Default::default()
            };
            let id = self
                .inner
                .store
                .multipart
                .create_multipart_opts(&writer.key, options)
                .await
                .map_err(|e| super::from_store(&self.name, e))?;
            writer.upload = Some(id);
        }
        self.send_part(last).await
    }

    async fn finish_unrecorded(&mut self) -> Result<(), StorageError> {
        let has_upload = self.writer.as_ref().is_some_and(|w| w.upload.is_some());
        if !has_upload {
            let writer = self.writer.as_mut().unwrap();
            let len = writer.buffered;
            let payload = writer.take(len);
            let options = PutOptions {
                attributes: writer.attributes.clone(),
                ..Default::default()
            };
            let key = writer.key.clone();
            self.writer = None;
            return self
                .inner
                .store
                .objects
                .put_opts(&key, payload, options)
                .await
                .map(|_| ())
                .map_err(|e| super::from_store(&self.name, e));
        }
        self.finish_writer().await
    }

    /// Removes everything staged: the segment being written, the segments, the manifest.
    pub async fn remove(&mut self) {
        self.abort_writer().await;
        let segments = std::mem::take(&mut self.manifest.segments);
        self.delete_segments(&segments).await;
        let _ = self.inner.store.objects.delete(&self.manifest_key).await;
    }
}

/// Metadata holding a SHA-256, hex.
pub(super) fn sha256_attributes(sha256: [u8; 32]) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::Metadata(SHA256_META.into()),
        crate::transfer::hex(&sha256).into(),
    );
    attributes
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

/// Removes what staged uploads of `kind` left untouched for `ttl`: a manifest's age is its last
/// write (every stored part rewrites it), so a live upload is never taken for a leftover.
pub(super) async fn expire(inner: &Arc<Inner>, kind: &str, ttl: Duration) {
    let prefix = inner.private_key(kind);
    let mut listing = inner.store.objects.list(Some(&prefix));
    let now = chrono_now();
    let prefix_text = format!("{prefix}/");
    // Ids of fresh manifests, and stale objects by id: one entry per staged upload, not per key.
    let mut fresh: HashMap<String, ()> = HashMap::new();
    let mut stale: HashMap<String, Vec<Path>> = HashMap::new();
    while let Some(item) = listing.next().await {
        let meta = match item {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!("cannot list expired uploads: {e}");
                return;
            }
        };
        let Some(rest) = meta.location.as_ref().strip_prefix(&prefix_text) else {
            continue;
        };
        let id = rest
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json")
            .to_owned();
        let age = now - meta.last_modified.timestamp();
        if age >= 0 && age as u64 > ttl.as_secs() {
            stale.entry(id).or_default().push(meta.location);
        } else if rest.ends_with(".json") {
            fresh.insert(id, ());
        }
    }
    for (id, keys) in stale {
        if fresh.contains_key(&id) {
            continue;
        }
        // An open multipart upload is named only in its manifest: abort it first.
        let manifest_key = inner.private_key(&format!("{kind}/{id}.json"));
        if let Ok(got) = inner.store.objects.get(&manifest_key).await {
            if let Ok(body) = got.bytes().await {
                if let Ok(Manifest {
                    open: Some(open), ..
                }) = serde_json::from_slice::<Manifest>(&body)
                {
                    if let Ok(key) = Path::parse(&open.key) {
                        let _ = inner
                            .store
                            .multipart
                            .abort_multipart(&key, &open.upload_id)
                            .await;
                    }
                }
            }
        }
        for key in keys {
            let _ = inner.store.objects.delete(&key).await;
        }
        tracing::info!("removed an expired partial upload");
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_that_any_size_fits_the_part_count() {
        assert_eq!(part_size(0), MIN_PART);
        assert_eq!(part_size(1 << 30), MIN_PART);
        // 48 GiB at 5 MiB parts would be 9,831 parts: over the limit with the margin.
        for size in [48u64 << 30, 100 << 30, 1 << 40, 5 << 40] {
            let part = part_size(size);
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}: {part}");
            assert_eq!(part % (1 << 20), 0);
        }
        assert_eq!(part_size(u64::MAX), MAX_PART);
    }
}
