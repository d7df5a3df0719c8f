//! A staged upload's manifest: what it holds (segments, and the multipart upload being written,
//! as far as its parts are stored) and which attempt owns it, as one small JSON object in the
//! private area. It is only ever written conditionally (`If-Match` on the ETag the writer last
//! saw, or `If-None-Match` for a new one), so ownership passes from one attempt to the next on
//! any server without a lock: the older attempt's next write fails, and it stops.

use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{MultipartId, ObjectStoreExt, PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::staging::Staging;
use crate::protocol::FileMeta;
use crate::storage::StorageError;

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
    /// The metadata the segment was written with, which a publish by copy keeps.
    #[serde(default)]
    pub meta: FileMeta,
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
    /// The metadata the segment is written with.
    #[serde(default)]
    pub meta: FileMeta,
}

impl Manifest {
    /// Where the stored segments end (they are contiguous from 0).
    pub fn held(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.start + s.len)
    }
}

impl Staging {
    /// Writes the manifest, conditionally on this attempt still owning it.
    pub async fn save(&mut self) -> Result<(), StorageError> {
        if self.superseded {
            return Err(StorageError::Superseded(self.name.to_string()));
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
                let named = self.manifest.open.as_ref().map_or(0, |o| o.parts.len());
                self.saved = (std::time::Instant::now(), named);
                Ok(())
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                self.superseded = true;
                Err(StorageError::Superseded(self.name.to_string()))
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Reads the manifest, if there is one, and takes it over as `owner`: a write conditional on
    /// the version read. If that version changed meanwhile (an older attempt storing its last
    /// part as it let go), read again: the newest attempt is the one that wins. Returns whether
    /// there was one.
    pub async fn take_over(&mut self, owner: String) -> Result<bool, StorageError> {
        let mut tries = 0;
        loop {
            let existed = self.read_manifest().await?;
            self.manifest.owner = owner.clone();
            self.superseded = false;
            match self.save().await {
                Err(StorageError::Superseded(_)) if tries < 10 => tries += 1,
                other => return other.map(|()| existed),
            }
        }
    }

    async fn read_manifest(&mut self) -> Result<bool, StorageError> {
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
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.etag = None;
                Ok(false)
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Makes what an earlier attempt left readable: its open multipart upload is completed with
    /// the parts the manifest records (the attempt may have died with it half-written; one that
    /// broke cleanly recorded all it stored and left it open for this), and the segments are
    /// checked to follow each other from byte 0. Called by the owner only, after
    /// [`Staging::take_over`]: no other attempt completes that upload.
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
                    // Completed already (by an older version of qft as it let go) or aborted:
                    // what is stored, if anything, is what counts.
                    Err(e) => {
                        tracing::debug!("completing a partial's open upload: {e}");
                        self.inner
                            .store
                            .objects
                            .head(&key)
                            .await
                            .ok()
                            .map(|m| m.size)
                    }
                }
            };
            if let Some(len) = done.filter(|len| *len > 0) {
                self.manifest.segments.push(Segment {
                    key: open.key,
                    start: open.start,
                    len,
                    meta: open.meta,
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
}
