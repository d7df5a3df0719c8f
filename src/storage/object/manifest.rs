//! A staged upload's manifest: the multipart upload at the file's own key, as far as its parts
//! are stored, and which attempt owns it, as one small JSON object in the private area. It is
//! only ever written conditionally (`If-Match` on the ETag the writer last saw, or
//! `If-None-Match` for a new one), so ownership passes from one attempt to the next on any
//! server without a lock: the older attempt's next write fails, and it stops.
//!
//! For a resumable upload each part is recorded with the SHA-256 of its bytes (a resume piece:
//! `Held` offers them, the part size as the piece size) and the whole file's hash state after
//! it (`sha2`'s serialized state): the next attempt answers `Held`, restores the state where
//! the client continues, and goes on with the same multipart upload, reading nothing back.

use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::Sha256;

use super::staging::Staging;
use super::writer::{Hashed, Stored};
use crate::pieces::Pieces;
use crate::protocol::{chunk_for, FileMeta};
use crate::storage::StorageError;
use crate::transfer::hex;

/// What a staged upload holds, as stored in its manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The client's name for the file (for the log of a sweep).
    pub name: String,
    /// The size announced.
    pub size: u64,
    /// The attempt that owns it now.
    pub owner: String,
    /// That attempt's slot in the numbering of parts (`writer::SLOTS`).
    #[serde(default)]
    pub slot: usize,
    /// The multipart upload at the file's key, once begun.
    pub open: Option<Open>,
    /// What a broken attempt held before it began an upload (less than one part).
    #[serde(default)]
    pub tail: Option<Tail>,
}

/// The first bytes of a file, less than one part, stored as an object of the private area by
/// an attempt that broke before its first part: readable, so they are hashed and kept as the
/// local backend's partial is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Tail {
    pub key: String,
    pub len: u64,
}

/// The multipart upload at the file's key, as far as its parts are stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Open {
    /// The file's key: completing the upload publishes it.
    pub key: String,
    pub upload_id: String,
    /// Bytes per part but the last.
    pub part_size: u64,
    /// The parts stored, in order from the first.
    pub parts: Vec<Part>,
    /// Bytes in those parts.
    pub len: u64,
    /// The metadata the upload was created with (what the file will have).
    #[serde(default)]
    pub meta: FileMeta,
}

/// A stored part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    /// Its index in object_store's numbering (the S3 part number less one).
    pub number: usize,
    pub etag: String,
    pub len: u64,
    /// SHA-256 of its bytes, hex (resumable uploads).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The whole file's SHA-256 state after it, hex of `sha2`'s serialized state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}

impl Part {
    pub fn from_stored(stored: &Stored) -> Self {
        let (sha256, state) = match &stored.hashed {
            Some(hashed) => (hex(&hashed.sha256), hex_bytes(&hashed.state.serialize())),
            None => (String::new(), String::new()),
        };
        Part {
            number: stored.number,
            etag: stored.id.content_id.clone(),
            len: stored.len,
            sha256,
            state,
        }
    }

    /// The part as a writer holds it.
    pub fn to_stored(&self) -> Stored {
        Stored {
            id: PartId {
                content_id: self.etag.clone(),
            },
            number: self.number,
            len: self.len,
            hashed: self.hashed(),
        }
    }

    /// Its hashes, if it was hashed and they read back.
    pub fn hashed(&self) -> Option<Hashed> {
        let sha256: [u8; 32] = unhex(&self.sha256)?.try_into().ok()?;
        let state = unhex(&self.state)?;
        let state = SerializedState::<Sha256>::try_from(&state[..]).ok()?;
        let state = Sha256::deserialize(&state).ok()?;
        Some(Hashed { sha256, state })
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Manifest {
    /// Bytes held: those of the stored parts, or the tail.
    pub fn held(&self) -> u64 {
        match (&self.open, &self.tail) {
            (Some(open), _) => open.len,
            (None, Some(tail)) => tail.len,
            (None, None) => 0,
        }
    }

    /// The resume pieces held: the whole parts (the part size is the piece size).
    pub fn pieces(&self) -> Pieces {
        let Some(open) = &self.open else {
            return Pieces {
                chunk: chunk_for(0),
                hashes: Vec::new(),
            };
        };
        let hashes = open
            .parts
            .iter()
            .take_while(|p| p.len == open.part_size)
            .map_while(|p| Some(p.hashed()?.sha256))
            .collect();
        Pieces {
            chunk: open.part_size,
            hashes,
        }
    }

    /// The whole file's hash state over its first `from` bytes, if a stored part ends there
    /// (or `from` is 0).
    pub fn state_at(&self, from: u64) -> Option<Sha256> {
        if from == 0 {
            return Some(Sha256::default());
        }
        let open = self.open.as_ref()?;
        let mut end = 0;
        for part in &open.parts {
            end += part.len;
            if end == from {
                return Some(part.hashed()?.state);
            }
        }
        None
    }

    /// Keeps what an attempt may continue: parts that follow each other whole from byte 0
    /// (only the file's very last part may be short). (Only those with hashes are offered to
    /// a client: [`Manifest::pieces`].)
    pub fn check(&mut self) {
        let size = self.size;
        if self.open.is_some() || self.tail.as_ref().is_some_and(|t| t.len > size) {
            self.tail = None;
        }
        let Some(open) = &mut self.open else {
            return;
        };
        let mut end = 0;
        let mut keep = 0;
        let mut last = None;
        for part in &open.parts {
            let whole = part.len == open.part_size || (part.len > 0 && end + part.len == size);
            // Numbers ascend (S3 completes with them in order).
            if !whole || end + part.len > size || last.is_some_and(|n| part.number <= n) {
                break;
            }
            last = Some(part.number);
            end += part.len;
            keep += 1;
        }
        open.parts.truncate(keep);
        open.len = end;
    }
}

/// A key of the manifest (`key` as text), for errors of reading it.
fn parse_key(key: &str) -> Option<Path> {
    Path::parse(key).ok()
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
            // Parts numbered apart from those of every earlier attempt still on their way.
            self.manifest.slot = (self.manifest.slot + 1) % super::writer::SLOTS;
            self.manifest.check();
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
                    Ok(manifest)
                        if manifest.size == self.manifest.size
                            && manifest.open.as_ref().is_none_or(|o| {
                                parse_key(&o.key).as_ref() == Some(&self.target)
                            }) =>
                    {
                        self.manifest = manifest;
                    }
                    // Unreadable or not ours (an older layout): started over; an upload it
                    // names goes with the sweep's abort, or stays unnamed until S3's own rules.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn a_part_keeps_its_hash_and_the_state_after_it_through_the_manifest() {
        let mut whole = Sha256::new();
        whole.update(b"the first part");
        let stored = Stored {
            id: PartId {
                content_id: "\"etag\"".into(),
            },
            number: 5,
            len: 14,
            hashed: Some(Hashed {
                sha256: Sha256::digest(b"the first part").into(),
                state: whole.clone(),
            }),
        };
        let json = serde_json::to_string(&Part::from_stored(&stored)).unwrap();
        let back = serde_json::from_str::<Part>(&json).unwrap().to_stored();
        assert_eq!(back.id.content_id, stored.id.content_id);
        let hashed = back.hashed.unwrap();
        assert_eq!(hashed.sha256, stored.hashed.unwrap().sha256);
        // The restored state continues as the original would.
        let (mut restored, mut original) = (hashed.state, whole);
        restored.update(b" and more");
        original.update(b" and more");
        assert_eq!(restored.finalize(), original.finalize());
        // A damaged state is not taken.
        let mut bad = serde_json::from_str::<Part>(&json).unwrap();
        bad.state.truncate(10);
        assert!(bad.hashed().is_none());
    }

    #[test]
    fn held_parts_are_offered_whole_and_checked_from_byte_zero() {
        let part = |number: usize, len: u64| {
            let mut state = Sha256::new();
            state.update(vec![0u8; len as usize]);
            Part::from_stored(&Stored {
                id: PartId {
                    content_id: format!("e{number}"),
                },
                number,
                len,
                hashed: Some(Hashed {
                    sha256: [len as u8; 32],
                    state,
                }),
            })
        };
        let mut manifest = Manifest {
            size: 20,
            open: Some(Open {
                key: "k".into(),
                upload_id: "u".into(),
                part_size: 8,
                parts: vec![part(1, 8), part(5, 8), part(9, 4)],
                len: 20,
                meta: FileMeta::default(),
            }),
            ..Manifest::default()
        };
        manifest.check();
        assert_eq!(manifest.held(), 20, "the short part ends the file: kept");
        let pieces = manifest.pieces();
        assert_eq!(
            (pieces.chunk, pieces.hashes.len()),
            (8, 2),
            "whole parts only"
        );
        assert!(manifest.state_at(16).is_some() && manifest.state_at(12).is_none());
        // A short part in the middle (a broken attempt's, from an older version): cut there.
        if let Some(open) = &mut manifest.open {
            open.parts = vec![part(0, 8), part(4, 4), part(8, 8)];
        }
        manifest.check();
        assert_eq!(manifest.held(), 8);
        // Numbers that do not ascend (a manifest from elsewhere): cut there too.
        if let Some(open) = &mut manifest.open {
            open.parts = vec![part(4, 8), part(1, 8)];
        }
        manifest.check();
        assert_eq!(manifest.held(), 8);
    }
}
