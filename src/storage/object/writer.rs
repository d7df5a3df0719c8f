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

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{Attributes, MultipartId, PutMultipartOptions, PutOptions, PutPayload};
use tokio::task::JoinHandle;

use super::read::ObjectSource;
use super::Store;
use crate::storage::StorageError;
use crate::transfer::{Source, BLOCK};

/// The smallest part: 8 MiB, as the AWS CLI uses (S3's minimum is 5 MiB).
const MIN_PART: u64 = 8 << 20;
/// S3's part-count limit, less a margin for a segment rewritten on resume.
const MAX_PARTS: u64 = 9_000;
/// S3's largest part, and largest single copy.
pub(super) const MAX_PART: u64 = 5 << 30;
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
    len: u64,
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
    parts: Vec<PartId>,
    /// Bytes in the stored parts.
    stored: u64,
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
        }
    }

    pub fn key(&self) -> &Path {
        &self.key
    }

    /// The multipart upload, once begun (with the first whole part).
    pub fn upload_id(&self) -> Option<&MultipartId> {
        self.upload.as_ref()
    }

    /// The parts stored, in order.
    pub fn parts(&self) -> &[PartId] {
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
        let max_in_flight = (IN_FLIGHT / self.part_size as u64).max(1) as usize;
        while self.in_flight.len() >= max_in_flight {
            self.store_oldest().await?;
        }
        // The part's share of the server's budget, before it leaves the buffer (a wait
        // cancelled here changes nothing).
        let held = self.store.buffers.reserve(self.filling.len() as u64).await;
        // Nothing awaits from here on: the part leaves the buffer and starts in one step.
        let part = std::mem::take(&mut self.filling).freeze();
        let len = part.len() as u64;
        let idx = self.parts.len() + self.in_flight.len();
        let (multipart, key) = (self.store.multipart.clone(), self.key.clone());
        let id = self.upload.clone().expect("begun above");
        let task = tokio::spawn(async move {
            let stored = multipart
                .put_part(&key, &id, idx, PutPayload::from(part))
                .await;
            drop(held);
            stored
        });
        self.in_flight.push_back(InFlight { task, len });
        Ok(())
    }

    /// Waits for the oldest part uploading and records it; `false` if none was.
    async fn store_oldest(&mut self) -> Result<bool, StorageError> {
        let Some(oldest) = self.in_flight.front_mut() else {
            return Ok(false);
        };
        // Awaited in place: a cancelled wait leaves the part where it was.
        let result = (&mut oldest.task).await;
        let oldest = self.in_flight.pop_front().expect("awaited above");
        let part = result
            .map_err(|e| StorageError::from_io(&self.name, std::io::Error::other(e)))?
            .map_err(|e| self.error(e))?;
        self.parts.push(part);
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
        while self.store_oldest().await? {}
        Ok(())
    }

    /// Stores everything and completes the object; returns its length. On failure the writer
    /// is left as it was, for [`PartWriter::abort`].
    pub async fn complete(&mut self) -> Result<u64, StorageError> {
        if self.upload.is_none() {
            let body = std::mem::take(&mut self.filling).freeze();
            let len = body.len() as u64;
            let options = PutOptions {
                attributes: self.attributes.clone(),
                ..Default::default()
            };
            self.store
                .objects
                .put_opts(&self.key, PutPayload::from(body), options)
                .await
                .map_err(|e| self.error(e))?;
            return Ok(len);
        }
        self.store_parts().await?;
        let id = self.upload.clone().expect("checked above");
        self.store
            .multipart
            .complete_multipart(&self.key, &id, self.parts.clone())
            .await
            .map_err(|e| self.error(e))?;
        Ok(self.stored)
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

/// Streams the next `len` bytes of `source` (staged segments) into `out`.
pub(super) async fn pour(
    source: &mut ObjectSource,
    len: u64,
    out: &mut PartWriter,
) -> Result<(), StorageError> {
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
        let block = source
            .read_block(want)
            .await
            .map_err(|e| StorageError::from_io(&out.name, e))?;
        let got: u64 = block.iter().map(|b| b.len() as u64).sum();
        if got == 0 {
            let e = std::io::Error::other("a staged segment ended early");
            return Err(StorageError::from_io(&out.name, e));
        }
        left -= got;
        out.write(&block).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

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

    #[tokio::test]
    async fn parts_are_stored_in_order_and_an_object_below_one_part_is_one_put() {
        let store = Store::in_memory();
        let key = Path::from("obj");
        let mut writer = PartWriter::new(
            store.clone(),
            "obj".into(),
            key.clone(),
            1,
            Default::default(),
        );
        let data: Vec<u8> = (0..(MIN_PART as usize * 2 + 100))
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in data.chunks(1 << 16) {
            writer
                .write(&[Bytes::copy_from_slice(piece)])
                .await
                .unwrap();
        }
        assert!(writer.upload_id().is_some());
        assert_eq!(writer.written(), data.len() as u64);
        assert_eq!(writer.complete().await.unwrap(), data.len() as u64);
        let got = store
            .objects
            .get(&key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got, data);

        let small = Path::from("small");
        let mut writer = PartWriter::new(
            store.clone(),
            "small".into(),
            small.clone(),
            3,
            Default::default(),
        );
        writer.write(&[Bytes::from_static(b"abc")]).await.unwrap();
        assert!(writer.upload_id().is_none());
        assert_eq!(writer.complete().await.unwrap(), 3);
        let got = store
            .objects
            .get(&small)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"abc");
    }
}
