//! Digest records: the SHA-256 of a file whose object could not carry it in its metadata (a
//! completed multipart upload: the digest is known only after the last byte, the metadata is
//! fixed when the upload is created), kept in the private area beside it:
//!
//! ```text
//!  P/.qft/digests/<SHA-256 of the name, hex>   {"name": …, "etag": …, "sha256": …}
//! ```
//! A record is trusted only while the object under the name has the ETag it names: an object
//! replaced by anyone (another tool, a later upload, a rename onto it) has another, and is hashed
//! as an object from another tool is, while it is sent; that download writes a new record for
//! the version it read ([`remember`], from `ReadFile::hashed`). So a record never has to be kept
//! right by the writers of the object, only never trusted when stale; delete and rename remove
//! the name's record all the same, not to leave them behind.

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Inner;
use crate::transfer::hex;

/// Where the records are, under the private area.
const DIGESTS: &str = "digests";

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The name, for people looking at the bucket.
    name: String,
    /// The object's ETag the digest is of.
    etag: String,
    /// Its SHA-256, hex.
    sha256: String,
}

fn record_key(inner: &Inner, name: &str) -> object_store::path::Path {
    let id: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    inner.private_key(&format!("{DIGESTS}/{}", hex(&id)))
}

/// Records that the object under `name` with ETag `etag` has the SHA-256 `sha256`. A failure
/// only costs a later reader the hashing: it is logged, not returned.
pub(super) async fn remember(inner: &Inner, name: &str, etag: &str, sha256: [u8; 32]) {
    let record = Record {
        name: name.to_owned(),
        etag: etag.to_owned(),
        sha256: hex(&sha256),
    };
    let Ok(body) = serde_json::to_vec(&record) else {
        return;
    };
    let key = record_key(inner, name);
    if let Err(e) = inner.store.objects.put(&key, body.into()).await {
        tracing::warn!("cannot keep the digest of an upload: {e}");
    }
}

/// The SHA-256 recorded for the object under `name`, if the record is of the version with
/// ETag `etag`.
pub(super) async fn recall(inner: &Inner, name: &str, etag: Option<&str>) -> Option<[u8; 32]> {
    let etag = etag?;
    let got = inner
        .store
        .objects
        .get(&record_key(inner, name))
        .await
        .ok()?;
    let body = got.bytes().await.ok()?;
    let record: Record = serde_json::from_slice(&body).ok()?;
    if record.etag != etag || record.name != name {
        return None;
    }
    super::meta::parse_hex(&record.sha256)
}

/// Removes the record of `name`, if any.
pub(super) async fn forget(inner: &Inner, name: &str) {
    match inner.store.objects.delete(&record_key(inner, name)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::debug!("cannot remove a digest record: {e}"),
    }
}
