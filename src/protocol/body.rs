//! What travels around a file body: the [`Trailer`] with the sender's SHA-256, the [`Resume`]
//! point of a resumable transfer, and the sizes both sides must agree on (resume pieces, and
//! what a [`SMALL_FILE`] is).

use serde::{Deserialize, Serialize};

use super::{Message, Response};

/// The client's choice, in a resumable transfer, of where the body starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// First byte to send: a multiple of the chunk, at most what the other side holds.
    pub from: u64,
}

impl Message for Resume {
    const MAX_LEN: usize = 16;
}

/// Most piece hashes in one [`Response::Held`] or [`Response::Prefix`]: bounds those frames.
pub const MAX_CHUNKS: u64 = 16 * 1024;

/// The smallest resume piece: a partial holds nothing reusable until it has this much.
pub const MIN_CHUNK: u64 = 1 << 20;

/// What a small file is, on both sides: its upload body may follow the request at once (no
/// waiting for `Ready`), and the server receives it whole and commits it in one go. Smaller than
/// one resume piece, so a broken small upload has nothing a retry could keep anyway.
pub const SMALL_FILE: u64 = MIN_CHUNK;

/// The piece size for hashing `len` bytes: 1 MiB, or the power of two that keeps the hash list
/// within [`MAX_CHUNKS`].
pub fn chunk_for(len: u64) -> u64 {
    let mut chunk = MIN_CHUNK;
    while len / chunk > MAX_CHUNKS {
        chunk *= 2;
    }
    chunk
}

const _: () = assert!(MAX_CHUNKS as usize * 33 + 64 < Response::MAX_LEN);

/// Sent after a file body: the sender's hash of exactly the body bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// SHA-256 of the body.
    pub sha256: [u8; 32],
}

impl Message for Trailer {
    const MAX_LEN: usize = 64;
}
