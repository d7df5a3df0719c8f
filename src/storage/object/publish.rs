//! Publishing a staged upload under its name, after the caller verified its SHA-256: the one
//! step that makes it visible, atomic in S3 (whole or not at all; of concurrent publishes of one
//! name, one stays, whole).
//!
//! - One segment (an upload that never broke), up to S3's 5 GiB copy limit: one server-side
//!   copy that *replaces* the metadata ([`super::raw`]), so the file carries its SHA-256, its
//!   time and its mode. The bytes stay in the store (SeaweedFS replicates the chunks in
//!   parallel: about 1.2 s per GiB on this machine); object_store 0.14 has neither a ranged part
//!   copy nor a conditional multipart upload, which a copy-free publish would need.
//! - Several segments (a resumed upload), or one too large to copy at once: streamed into a
//!   multipart upload to the name itself, created with that metadata and completed last: the
//!   same atomicity, at the price of reading the segments once more.
//! - Nothing (an empty file): one put.

use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStoreExt, PutOptions, PutPayload};

use super::manifest::Segment;
use super::meta::add_meta;
use super::staging::Staging;
use super::writer::{pour, PartWriter, MAX_PART};
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
    /// What the published file keeps: its SHA-256 and what the client sent.
    fn published_attributes(&self, sha256: [u8; 32]) -> Attributes {
        let mut attributes = sha256_attributes(sha256);
        add_meta(&mut attributes, &self.meta);
        attributes
    }

    /// Publishes the whole staged body (SHA-256 `sha256`) under `target`, then removes the
    /// staging.
    pub async fn publish(&mut self, target: &Path, sha256: [u8; 32]) -> Result<(), StorageError> {
        self.finish_writer().await?;
        if self.superseded {
            return Err(StorageError::Superseded(self.name.to_string()));
        }
        let held = self.manifest.held();
        if held != self.manifest.size {
            return Err(self.io(format!("staged {held} bytes of {}", self.manifest.size)));
        }
        let segments = self.manifest.segments.clone();
        let started = std::time::Instant::now();
        match segments.as_slice() {
            [] => {
                let options = PutOptions {
                    attributes: self.published_attributes(sha256),
                    ..Default::default()
                };
                self.inner
                    .store
                    .objects
                    .put_opts(target, PutPayload::default(), options)
                    .await
                    .map_err(|e| self.store_error(e))?;
            }
            [one] if one.len <= MAX_PART => self.copy(one, target, sha256).await?,
            _ => self.assemble(target, sha256).await?,
        }
        let published = started.elapsed();
        self.remove().await;
        tracing::debug!(
            segments = segments.len(),
            publish_ms = published.as_millis() as u64,
            clean_up_ms = (started.elapsed() - published).as_millis() as u64,
            "published"
        );
        Ok(())
    }

    /// Copies the one segment to `target` in the store.
    async fn copy(
        &mut self,
        one: &Segment,
        target: &Path,
        sha256: [u8; 32],
    ) -> Result<(), StorageError> {
        let key = Path::parse(&one.key).map_err(|e| self.io(e))?;
        let store = &self.inner.store;
        match &store.raw {
            Some(raw) => raw
                .copy_with_metadata(&key, target, &self.published_attributes(sha256))
                .await
                .map_err(|e| self.store_error(e)),
            // A store without it (in memory, for tests): a copy keeps the segment's metadata,
            // which will do if it is what the file is to keep.
            None if one.meta == self.meta => store
                .objects
                .copy(&key, target)
                .await
                .map_err(|e| self.store_error(e)),
            None => self.assemble(target, sha256).await,
        }
    }

    /// Streams the segments, in order, into a multipart upload to `target` completed last.
    async fn assemble(&mut self, target: &Path, sha256: [u8; 32]) -> Result<(), StorageError> {
        let mut source = self.content().source_at(0);
        let size = self.manifest.size;
        let mut out = PartWriter::new(
            self.inner.store.clone(),
            self.name.clone(),
            target.clone(),
            size,
            self.published_attributes(sha256),
        );
        let result = async {
            pour(&mut source, size, &mut out).await?;
            out.complete().await
        }
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                out.abort().await;
                Err(e)
            }
        }
    }
}
