//! Publishing a staged upload under its name, after the caller verified its SHA-256: the one
//! step that makes it visible, atomic in S3 (whole or not at all; of concurrent publishes of one
//! name, one stays, whole).
//!
//! The body is already at the name's key, as the parts of an open multipart upload created with
//! the file's metadata: publishing is *completing* it, one request, no copy. A body below one
//! part was never sent: it goes as one put, with its SHA-256 as metadata (`qft-sha256`).
//!
//! A completed upload's SHA-256 was verified only after its last byte, too late for its
//! metadata, so it is kept beside it in a digest record ([`super::digests`]) keyed by the name
//! and naming the object's ETag: downloads, STAT and `sum` trust it while the object there is
//! that one. Objects published by earlier versions carry `qft-sha256` itself; both are read.

use object_store::{Attribute, Attributes};

use super::staging::Staging;
use crate::storage::StorageError;

/// The metadata key holding the SHA-256 qft verified of an object it wrote.
pub(super) const SHA256_META: &str = "qft-sha256";

/// Metadata holding a SHA-256, hex.
pub(super) fn sha256_attributes(sha256: [u8; 32]) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::Metadata(SHA256_META.into()),
        crate::transfer::hex(&sha256).into(),
    );
    attributes
}

impl Staging {
    /// Publishes the whole staged body (SHA-256 `sha256`) under its name, then removes the
    /// manifest. An upload that cannot be completed is aborted: the next attempt starts over
    /// rather than failing the same way.
    pub async fn publish(&mut self, sha256: [u8; 32]) -> Result<(), StorageError> {
        // Still the owner: an attempt another one took over must not complete the upload under
        // it (that one may be sending parts again).
        if self.record_parts {
            self.save().await?;
        } else if self.superseded {
            return Err(StorageError::Superseded(self.name.to_string()));
        }
        let size = self.manifest.size;
        let started = std::time::Instant::now();
        let writer = self.begin_writer();
        let written = writer.written();
        if written != size {
            return Err(self.io(format!("staged {written} bytes of {size}")));
        }
        let multipart = writer.upload_id().is_some();
        let completed = writer.complete(sha256_attributes(sha256)).await;
        let published = started.elapsed();
        let put = match completed {
            Ok(put) => put,
            Err(e) => {
                self.remove().await;
                return Err(e);
            }
        };
        self.writer = None;
        self.manifest.open = None;
        self.remove().await;
        // (A single put carries the digest itself; without an ETag nothing could be pinned.)
        if let (true, Some(etag)) = (multipart, put.e_tag) {
            super::digests::remember(&self.inner, &self.name, &etag, sha256).await;
        }
        tracing::debug!(
            multipart,
            publish_ms = published.as_millis() as u64,
            clean_up_ms = (started.elapsed() - published).as_millis() as u64,
            "published"
        );
        Ok(())
    }
}
