//! One object written as a multipart upload, part by part, as its bytes arrive: the part size
//! picked from the length to come ([`part_size`]), each part gathered into one contiguous buffer
//! and sent as one request, at most [`IN_FLIGHT`] bytes of parts uploading at once. Memory is the
//! part being filled plus those, whatever the object's size, and the parts uploading draw on the
//! server's shared [`super::buffers::Buffers`]. An object shorter than one part is one plain put.
//!
//! A [`PartWriter`] knows nothing of manifests: the staging that owns it records what it stored
//! ([`PartWriter::parts`]) where it needs to. Every `await` in it leaves it consistent, so a
//! write cancelled halfway (the connection's task dropped) loses no stored part and never sends
//! one twice: a part's task is popped only after it is awaited.
//!
//! A writer may *hash* ([`PartWriter::hashing`]): a thread of its own takes each part as it is
//! sent (the same bytes, not a copy) and gives back the SHA-256 of the part and the whole
//! object's hash state after it, which a resumable upload records with the part: what the next
//! attempt needs to say what is held and to continue the whole-file hash, without reading the
//! parts back (those of an open multipart upload cannot be). A writer may also continue an
//! upload an earlier attempt began ([`PartWriter::resume`]).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{
    Attributes, MultipartId, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

mod hashing;

pub(super) use hashing::Hashed;
use hashing::Hashing;

use super::buffers::Held;
use super::Store;
use crate::storage::StorageError;

/// The smallest part: 8 MiB, as the AWS CLI uses (S3's minimum is 5 MiB).
const MIN_PART: u64 = 8 << 20;
/// At most this many parts: each attempt at an upload numbers its parts apart from the others'
/// ([`SLOTS`] numbers per part), within S3's 10,000 part numbers.
const MAX_PARTS: u64 = 2_400;
/// Attempts whose part numbers never meet: the `n`th part of an attempt in slot `s` is number
/// `n * SLOTS + s + 1`. A newer attempt takes the next slot, so a part an older one still has on
/// its way (a server whose client went, with requests in flight) lands under a number the newer
/// one never completes with, even when the file changed meanwhile. Four attempts in a row would
/// have to overlap for two to meet.
pub(super) const SLOTS: usize = 4;
/// S3's largest part.
const MAX_PART: u64 = 5 << 30;
/// Bytes of parts uploading at once, per upload. The AWS CLI keeps ten 8 MiB parts going; six
/// were as fast here (bench/s3 on SeaweedFS) and keep a 1 GiB upload's server under 150 MiB.
const IN_FLIGHT: u64 = 48 << 20;

/// The part size for an object of `len` bytes: [`MIN_PART`], or larger so that it takes at
/// most [`MAX_PARTS`] parts (a 48 GiB object at 5 MiB parts would need more than S3 allows).
pub(super) fn part_size(len: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.clamp(MIN_PART, MAX_PART)
}

/// A part uploading.
#[derive(Debug)]
struct InFlight {
    task: JoinHandle<object_store::Result<PartId>>,
    /// Its index in object_store's numbering (the S3 part number less one).
    number: usize,
    len: u64,
    /// Its share of the server's budget: kept until the part is stored *and* hashed, since the
    /// hashing thread holds the same bytes.
    _held: Held,
    /// Its hashes, once the hashing thread gave them (kept here so that a cancelled wait for
    /// the upload loses nothing).
    hashed: Option<Hashed>,
}

/// A part stored.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub id: PartId,
    /// Its index in object_store's numbering (the S3 part number less one).
    pub number: usize,
    pub len: u64,
    /// What a hashing writer knows of it.
    pub hashed: Option<Hashed>,
}

/// An object being written.
#[derive(Debug)]
pub(super) struct PartWriter {
    store: Store,
    /// The client's name, for errors.
    name: Arc<str>,
    key: Path,
    part_size: usize,
    /// Metadata of the object (given when its multipart upload begins).
    attributes: Attributes,
    upload: Option<MultipartId>,
    /// The part being filled.
    filling: BytesMut,
    /// Parts uploading, in order.
    in_flight: VecDeque<InFlight>,
    /// Parts stored, in order.
    parts: Vec<Stored>,
    /// Bytes in the stored parts.
    stored: u64,
    /// The hashing thread, for a hashing writer.
    hashing: Option<Hashing>,
    /// This attempt's slot among [`SLOTS`], and the stride of the numbering (1 where parts
    /// must be numbered without gaps: a store without [`super::raw`]).
    slot: usize,
    stride: usize,
}

impl PartWriter {
    /// A writer of `key`, about `expected` bytes long (which picks the part size).
    pub fn new(
        store: Store,
        name: Arc<str>,
        key: Path,
        expected: u64,
        attributes: Attributes,
    ) -> Self {
        PartWriter {
            store,
            name,
            key,
            part_size: part_size(expected) as usize,
            attributes,
            upload: None,
            filling: BytesMut::new(),
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            stored: 0,
            hashing: None,
            slot: 0,
            stride: 1,
        }
        .numbered(0)
    }

    /// A writer that continues the multipart upload `upload` of `key` after `parts` (stored by
    /// an earlier attempt, `part_size` bytes each but maybe the last), its next part numbered
    /// after them.
    pub fn resume(
        store: Store,
        name: Arc<str>,
        key: Path,
        part_size: u64,
        upload: MultipartId,
        parts: Vec<Stored>,
    ) -> Self {
        let stored = parts.iter().map(|p| p.len).sum();
        PartWriter {
            store,
            name,
            key,
            part_size: part_size as usize,
            attributes: Attributes::new(),
            upload: Some(upload),
            filling: BytesMut::new(),
            in_flight: VecDeque::new(),
            parts,
            stored,
            hashing: None,
            slot: 0,
            stride: 1,
        }
        .numbered(0)
    }

    /// Numbers the parts from now on in `slot` (modulo [`SLOTS`]), where the store can complete
    /// an upload from parts numbered with gaps.
    pub fn numbered(mut self, slot: usize) -> Self {
        (self.slot, self.stride) = match self.store.raw {
            Some(_) => (slot % SLOTS, SLOTS),
            None => (0, 1),
        };
        self
    }

    /// Hashes the parts from now on ([`Stored::hashed`]), the whole object's hash continuing
    /// `state` (the state over what is stored already).
    pub fn hashing(mut self, state: Sha256) -> Self {
        self.hashing = Some(Hashing::start(state));
        self
    }

    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Bytes per part (all but the last).
    pub fn part_size(&self) -> u64 {
        self.part_size as u64
    }

    /// The multipart upload, once begun (with the first whole part).
    pub fn upload_id(&self) -> Option<&MultipartId> {
        self.upload.as_ref()
    }

    /// The parts stored, in order.
    pub fn parts(&self) -> &[Stored] {
        &self.parts
    }

    /// Bytes in the stored parts.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// Bytes given to this writer so far.
    pub fn written(&self) -> u64 {
        self.stored + self.in_flight.iter().map(|p| p.len).sum::<u64>() + self.filling.len() as u64
    }

    fn error(&self, e: object_store::Error) -> StorageError {
        super::from_store(&self.name, e)
    }

    /// Appends `pieces`, sending each part as it fills.
    pub async fn write(&mut self, pieces: &[Bytes]) -> Result<(), StorageError> {
        for piece in pieces {
            let mut piece = &piece[..];
            while !piece.is_empty() {
                if self.filling.capacity() == 0 {
                    self.filling.reserve(self.part_size);
                }
                let take = (self.part_size - self.filling.len()).min(piece.len());
                self.filling.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                if self.filling.len() == self.part_size {
                    self.send_part().await?;
                }
            }
        }
        Ok(())
    }

    /// Sends what is being filled as the next part, once there is room for it.
    async fn send_part(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            let options = PutMultipartOptions {
                attributes: self.attributes.clone(),
                ..Default::default()
            };
            let id = self
                .store
                .multipart
                .create_multipart_opts(&self.key, options)
                .await
                .map_err(|e| self.error(e))?;
            self.upload = Some(id);
        }
        // (Two at least: parts grow past 24 MiB only for files over 18 GiB.)
        let max_in_flight = (IN_FLIGHT / self.part_size as u64).max(2) as usize;
        while self.in_flight.len() >= max_in_flight {
            self.store_oldest().await?;
        }
        // The part's share of the server's budget, before it leaves the buffer (a wait
        // cancelled here changes nothing).
        let held = self.store.buffers.reserve(self.filling.len() as u64).await;
        // Nothing awaits from here on: the part leaves the buffer and starts in one step.
        let part = std::mem::take(&mut self.filling).freeze();
        let len = part.len() as u64;
        let nth = self.parts.len() + self.in_flight.len();
        let number = nth * self.stride + self.slot;
        let (multipart, key) = (self.store.multipart.clone(), self.key.clone());
        let id = self.upload.clone().expect("begun above");
        if let Some(hashing) = &self.hashing {
            // (The thread ends only with this writer.)
            let _ = hashing.parts.send(part.clone());
        }
        let task = tokio::spawn(async move {
            multipart
                .put_part(&key, &id, number, PutPayload::from(part))
                .await
        });
        self.in_flight.push_back(InFlight {
            task,
            number,
            len,
            _held: held,
            hashed: None,
        });
        Ok(())
    }

    /// Waits for the oldest part uploading and records it; `false` if none was.
    async fn store_oldest(&mut self) -> Result<bool, StorageError> {
        let Some(oldest) = self.in_flight.front_mut() else {
            return Ok(false);
        };
        if let (Some(hashing), true) = (&mut self.hashing, oldest.hashed.is_none()) {
            // (A channel's receive is cancel-safe; what it gave is kept in the part.)
            let Some(hashed) = hashing.hashed.recv().await else {
                let e = std::io::Error::other("the hashing of the parts stopped");
                return Err(StorageError::from_io(&self.name, e));
            };
            oldest.hashed = Some(hashed);
        }
        // Awaited in place: a cancelled wait leaves the part where it was.
        let result = (&mut oldest.task).await;
        let oldest = self.in_flight.pop_front().expect("awaited above");
        let id = result
            .map_err(|e| StorageError::from_io(&self.name, std::io::Error::other(e)))?
            .map_err(|e| self.error(e))?;
        self.parts.push(Stored {
            id,
            number: oldest.number,
            len: oldest.len,
            hashed: oldest.hashed,
        });
        self.stored += oldest.len;
        Ok(true)
    }

    /// Records the parts whose upload ended, without waiting; returns how many.
    pub async fn collect_finished(&mut self) -> Result<usize, StorageError> {
        let mut done = 0;
        while self.in_flight.front().is_some_and(|p| p.task.is_finished()) {
            self.store_oldest().await?;
            done += 1;
        }
        Ok(done)
    }

    /// What is being filled, taken out (for a writer that began no multipart upload: all it
    /// was given).
    pub fn take_filling(&mut self) -> Bytes {
        std::mem::take(&mut self.filling).freeze()
    }

    /// Waits for every part uploading, leaving what is being filled where it is (a part that
    /// is not the object's last must be whole).
    pub async fn flush(&mut self) -> Result<(), StorageError> {
        while self.store_oldest().await? {}
        Ok(())
    }

    /// For a multipart upload: sends the bytes left as its last part and waits for every part,
    /// leaving it open (whoever completes it lists [`PartWriter::parts`]). Without one, the
    /// bytes stay here for [`PartWriter::complete`]'s single put.
    pub async fn store_parts(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            return Ok(());
        }
        if !self.filling.is_empty() {
            self.send_part().await?;
        }
        self.flush().await
    }

    /// The SHA-256 of everything written, for a hashing writer: stores the bytes left as the
    /// last part first (a single-put object's are hashed here, and stay for its put).
    pub async fn digest(&mut self) -> Result<[u8; 32], StorageError> {
        self.store_parts().await?;
        let mut state = match self.parts.last() {
            Some(Stored {
                hashed: Some(hashed),
                ..
            }) => hashed.state.clone(),
            Some(_) => {
                let e = std::io::Error::other("a part was stored without its hash");
                return Err(StorageError::from_io(&self.name, e));
            }
            None => Sha256::new(),
        };
        if self.upload.is_none() {
            state.update(&self.filling);
        }
        Ok(state.finalize().into())
    }

    /// Stores everything and completes the object, a single put with `extra` metadata besides
    /// its own if it is below one part. On failure the writer is left as it was, for
    /// [`PartWriter::abort`].
    pub async fn complete(&mut self, extra: Attributes) -> Result<PutResult, StorageError> {
        if self.upload.is_none() {
            let body = std::mem::take(&mut self.filling).freeze();
            let mut attributes = self.attributes.clone();
            for (key, value) in &extra {
                attributes.insert(key.clone(), value.clone());
            }
            let options = PutOptions {
                attributes,
                ..Default::default()
            };
            return self
                .store
                .objects
                .put_opts(&self.key, PutPayload::from(body), options)
                .await
                .map_err(|e| self.error(e));
        }
        self.store_parts().await?;
        let id = self.upload.clone().expect("checked above");
        let Some(raw) = &self.store.raw else {
            // Numbered without gaps (see `numbered`): by position.
            let parts = self.parts.iter().map(|p| p.id.clone()).collect();
            let completed = self
                .store
                .multipart
                .complete_multipart(&self.key, &id, parts);
            return completed.await.map_err(|e| self.error(e));
        };
        let parts: Vec<(usize, String)> = self
            .parts
            .iter()
            .map(|p| (p.number + 1, p.id.content_id.clone()))
            .collect();
        let e_tag = raw
            .complete_multipart(&self.key, &id, &parts)
            .await
            .map_err(|e| self.error(e))?;
        Ok(PutResult {
            e_tag,
            version: None,
            extensions: Default::default(),
        })
    }

    /// Throws away what this writer holds and its multipart upload.
    pub async fn abort(self) {
        for part in &self.in_flight {
            part.task.abort();
        }
        if let Some(id) = &self.upload {
            let _ = self.store.multipart.abort_multipart(&self.key, id).await;
        }
    }
}

#[cfg(test)]
mod tests;
