//! What an object keeps besides its bytes, as user metadata (`x-amz-meta-*`), so that any server
//! over the bucket reads the same: the SHA-256 qft verified (`qft-sha256`, where it was known as
//! the object was written), and a client's modification time and permission bits (`qft-mtime`,
//! `qft-mode`, when it sent them). S3's own `LastModified` is the time of the upload; the kept
//! time, where there is one, is what listings show and `sync` compares.
//!
//! A listing does not carry user metadata, so reading it costs a HEAD per object ([`kept`]),
//! [`HEADS_AT_ONCE`] at a time.

use object_store::path::Path;
use object_store::{Attribute, Attributes, GetOptions, ObjectMeta, ObjectStore};

use super::publish::SHA256_META;
use crate::protocol::{FileMeta, PERMISSION_BITS};

/// The metadata key of the kept modification time (seconds since the epoch, decimal).
pub(super) const MTIME_META: &str = "qft-mtime";
/// The metadata key of the kept permission bits (octal).
pub(super) const MODE_META: &str = "qft-mode";
/// HEAD requests a listing or a walk runs at once.
pub(super) const HEADS_AT_ONCE: usize = 16;

/// What an object keeps besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Kept {
    pub modified: Option<u64>,
    pub mode: Option<u32>,
    pub sha256: Option<[u8; 32]>,
}

/// Adds `meta` to `attributes`.
pub(super) fn add_meta(attributes: &mut Attributes, meta: &FileMeta) {
    if let Some(modified) = meta.modified {
        attributes.insert(
            Attribute::Metadata(MTIME_META.into()),
            modified.to_string().into(),
        );
    }
    if let Some(mode) = meta.mode {
        attributes.insert(
            Attribute::Metadata(MODE_META.into()),
            format!("{:o}", mode & PERMISSION_BITS).into(),
        );
    }
}

/// `meta` as attributes.
pub(super) fn meta_attributes(meta: &FileMeta) -> Attributes {
    let mut attributes = Attributes::new();
    add_meta(&mut attributes, meta);
    attributes
}

/// What `attributes` say was kept; anything unreadable is taken as not kept.
pub(super) fn read_kept(attributes: &Attributes) -> Kept {
    let get = |key: &'static str| {
        attributes
            .get(&Attribute::Metadata(key.into()))
            .map(|v| v.as_ref().trim().to_owned())
    };
    Kept {
        modified: get(MTIME_META).and_then(|v| v.parse().ok()),
        mode: get(MODE_META)
            .and_then(|v| u32::from_str_radix(&v, 8).ok())
            .map(|m| m & PERMISSION_BITS),
        sha256: get(SHA256_META).and_then(|v| parse_hex(&v)),
    }
}

/// The object at `key` and what it keeps, in one HEAD.
pub(super) async fn kept(
    store: &dyn ObjectStore,
    key: &Path,
) -> object_store::Result<(ObjectMeta, Kept)> {
    let options = GetOptions {
        head: true,
        ..Default::default()
    };
    let got = store.get_opts(key, options).await?;
    Ok((got.meta, read_kept(&got.attributes)))
}

/// The time to show for an object: the kept one, else the store's.
pub(super) fn shown_time(meta: &ObjectMeta, kept: &Kept) -> Option<u64> {
    kept.modified
        .or_else(|| u64::try_from(meta.last_modified.timestamp()).ok())
}

pub(super) fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_metadata_reads_back_and_never_more_than_permission_bits() {
        let mut attributes = meta_attributes(&FileMeta {
            modified: Some(1_600_000_000),
            mode: Some(0o4755),
        });
        attributes.insert(
            Attribute::Metadata(SHA256_META.into()),
            crate::transfer::hex(&[0xab; 32]).into(),
        );
        let kept = read_kept(&attributes);
        assert_eq!(kept.modified, Some(1_600_000_000));
        assert_eq!(kept.mode, Some(0o755));
        assert_eq!(kept.sha256, Some([0xab; 32]));
        assert_eq!(read_kept(&Attributes::new()), Kept::default());
    }
}
