//! Many small uploads on one stream ([`super::Request::UploadBundle`]): the limits both sides
//! keep, and the frame that announces each file of a bundle.
//!
//! Why a bundle: a small file's upload is mostly per-file cost, on both ends: a stream, a task,
//! a request, hand-offs to blocking threads to create, write and commit its temp file, and an
//! answer. A bundle pays the stream, the request and the hand-offs once for many files, and its
//! files reach the storage together, where they share one commit (BENCHMARKS.md, issue #12).

use serde::{Deserialize, Serialize};

use super::{FileMeta, Message, MAX_NAME_LEN, SMALL_FILE};

/// Most files in one bundle: bounds the answers a bundle owes, and how long one stream holds
/// a transfer slot.
pub const MAX_BUNDLE_FILES: u32 = 256;

/// Most body bytes in one bundle, all files together: under [`SMALL_FILE`], since the server
/// holds a bundle's bodies in memory until they are written, as it holds one small file's, and
/// a bundle takes a small file's transfer slot (the memory bound in `server::limits`).
pub const MAX_BUNDLE_BYTES: u64 = SMALL_FILE - 1;

/// The largest file a client puts in a bundle: larger ones go alone, where their bytes, not
/// their count, are what costs.
pub const BUNDLE_FILE: u64 = 256 << 10;

/// Announces one file of a bundle; exactly `size` body bytes and a [`super::Trailer`] with
/// their SHA-256 follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleItem {
    /// A relative name as accepted by [`crate::paths::SafeName::new`].
    pub name: String,
    /// Exact body length.
    pub size: u64,
    /// What the stored file gets, if anything (as [`super::Request::UploadMeta`]).
    pub meta: Option<FileMeta>,
}

impl Message for BundleItem {
    const MAX_LEN: usize = MAX_NAME_LEN + 64;
}
