//! Resume pieces: how two sides that each hold part of a file agree where to continue. The one
//! place that hashes pieces, for both directions and both sides.
//!
//! ```text
//!  holder of a partial (H)                         owner of the whole file (O)
//!  upload: the server; download: the client        upload: the client; download: the server
//!
//!  H: Pieces::hash(partial, held)  --- hashes --->  O: pieces.check(size); pieces.agree(file)
//!                                                      = the first piece that differs: `from`
//!  H: pieces.allows(from)          <--- from -----
//!  H: keeps [0, from), drops the rest               O: continues its SHA-256 from `from`
//!                                  <--- body [from, size) + trailer (SHA-256 of the WHOLE file)
//!  both: the whole file's SHA-256 (prefix state + body) must equal the trailer, or nothing is kept
//! ```
//! On the wire the holder's hashes travel in `Response::Held` (upload) or `Response::Prefix`
//! (download) and `from` in [`crate::protocol::Resume`]; see [`crate::protocol`]. Because the
//! whole file's hash decides the commit, a source that changed between attempts is never mixed
//! with an old prefix: it differs from some piece on, and is resent from there.
//!
//! Pieces are [`crate::protocol::chunk_for`] bytes (1 MiB, doubled for very large files so that
//! at most [`crate::protocol::MAX_CHUNKS`] hashes travel), or, for an upload's partial on S3,
//! the parts the server stored, whose hashes it kept as it stored them
//! ([`crate::storage::Partial::pieces`]): the owner of the file agrees with any piece size. Each side reads the prefix it holds
//! once: the SHA-256 state over all its whole pieces ([`Covered`]) is kept, so when the transfer
//! continues right after them (the usual case) the whole-file hash needs no second read.

use std::io;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::protocol::chunk_for;
use crate::transfer::{Source, BLOCK};

/// The piece size and the SHA-256 of each whole piece of a held prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    /// Bytes per piece.
    pub chunk: u64,
    /// The hash of each whole piece, in order.
    pub hashes: Vec<[u8; 32]>,
}

/// The SHA-256 state of a file's first `end` bytes.
#[derive(Debug, Clone)]
pub struct Covered {
    /// Where the hashed prefix ends.
    pub end: u64,
    /// The hash state over `[0, end)`.
    pub state: Sha256,
}

/// A piece list the other side could not have made honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an impossible list of pieces to resume from")]
pub struct ImpossiblePieces;

impl Pieces {
    /// Hashes the whole pieces of the first `held` bytes of `src`, with the piece size for that
    /// many bytes. Also returns the state over all of them.
    pub async fn hash<S: Source>(src: &mut S, held: u64) -> io::Result<(Pieces, Covered)> {
        let chunk = chunk_for(held);
        let mut hashes = Vec::new();
        let mut whole = Sha256::new();
        for _ in 0..held / chunk {
            let mut piece = Sha256::new();
            read_exact(src, chunk, |block| {
                piece.update(block);
                whole.update(block);
            })
            .await?;
            hashes.push(piece.finalize().into());
        }
        let end = hashes.len() as u64 * chunk;
        Ok((Pieces { chunk, hashes }, Covered { end, state: whole }))
    }

    /// Bytes the pieces cover.
    pub fn len(&self) -> u64 {
        self.hashes.len() as u64 * self.chunk
    }

    /// Whether there are no pieces (nothing held worth keeping).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Checks a list received from the other side: a real piece size, covering at most `limit`
    /// bytes (what that side can hold). Anything else means it is not to be trusted.
    pub fn check(&self, limit: u64) -> Result<(), ImpossiblePieces> {
        let covered = (self.hashes.len() as u64).checked_mul(self.chunk);
        if self.chunk == 0 || covered.is_none_or(|c| c > limit) {
            return Err(ImpossiblePieces);
        }
        Ok(())
    }

    /// Whether the other side may resume at `from`: a piece boundary within these pieces.
    pub fn allows(&self, from: u64) -> bool {
        from.is_multiple_of(self.chunk) && from <= self.len()
    }

    /// Reads `src` (the whole file, `available` bytes of it here) piece by piece against these
    /// hashes while both have whole pieces, and returns the state up to the first piece that
    /// differs: its `end` is where to resume.
    pub async fn agree<S: Source>(&self, src: &mut S, available: u64) -> io::Result<Covered> {
        let mut whole = Sha256::new();
        let mut from = 0u64;
        for theirs in &self.hashes {
            if from + self.chunk > available {
                break;
            }
            let before = whole.clone();
            let mut piece = Sha256::new();
            read_exact(src, self.chunk, |block| {
                piece.update(block);
                whole.update(block);
            })
            .await?;
            if <[u8; 32]>::from(piece.finalize()) != *theirs {
                return Ok(Covered {
                    end: from,
                    state: before,
                });
            }
            from += self.chunk;
        }
        Ok(Covered {
            end: from,
            state: whole,
        })
    }
}

impl Covered {
    /// The hash state of the first `from` bytes: this one if it ends right there, otherwise
    /// read again from `reopen()` (a source at the file's start).
    pub async fn at<S: Source>(self, from: u64, reopen: impl FnOnce() -> S) -> io::Result<Sha256> {
        if self.end == from {
            return Ok(self.state);
        }
        hash_prefix(&mut reopen(), from).await
    }
}

/// The SHA-256 state of the first `len` bytes of `src`.
pub async fn hash_prefix<S: Source>(src: &mut S, len: u64) -> io::Result<Sha256> {
    let mut whole = Sha256::new();
    read_exact(src, len, |block| whole.update(block)).await?;
    Ok(whole)
}

/// Reads exactly `len` bytes of `src` in blocks, handing each piece to `take`.
async fn read_exact<S: Source>(
    src: &mut S,
    len: u64,
    mut take: impl FnMut(&[u8]),
) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
        let pieces = src.read_block(want).await?;
        let got: usize = pieces.iter().map(Bytes::len).sum();
        pieces.iter().for_each(|p| take(p));
        if got < want {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= got as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::Reader;

    #[tokio::test]
    async fn agreement_finds_the_first_differing_piece_and_hashes_what_is_before() {
        let chunk = 1 << 20;
        let ours: Vec<u8> = (0..4 * chunk + 10).map(|i| (i % 253) as u8).collect();
        let mut theirs = ours.clone();
        theirs[2 * chunk + 7] ^= 1; // their third piece differs
        let (their_pieces, _) = Pieces::hash(&mut Reader(&theirs[..]), theirs.len() as u64)
            .await
            .unwrap();
        assert_eq!(their_pieces.hashes.len(), 4);
        assert_eq!(their_pieces.chunk, chunk as u64);
        let covered = their_pieces
            .agree(&mut Reader(&ours[..]), ours.len() as u64)
            .await
            .unwrap();
        assert_eq!(covered.end, 2 * chunk as u64);
        assert_eq!(covered.state.finalize(), Sha256::digest(&ours[..2 * chunk]));

        // Identical: agreement up to the last whole piece both have.
        let (same, all) = Pieces::hash(&mut Reader(&ours[..]), ours.len() as u64)
            .await
            .unwrap();
        let covered = same
            .agree(&mut Reader(&ours[..]), 3 * chunk as u64 + 5)
            .await
            .unwrap();
        assert_eq!(covered.end, 3 * chunk as u64);
        assert_eq!(all.end, 4 * chunk as u64);
        assert_eq!(
            all.state.finalize(),
            Sha256::digest(&ours[..4 * chunk]),
            "state over all pieces"
        );
        assert_eq!(
            covered.state.clone().finalize(),
            Sha256::digest(&ours[..3 * chunk])
        );

        // Resuming elsewhere reads the prefix again; right at the end it does not.
        let reread = covered.clone().at(5, || Reader(&ours[..])).await.unwrap();
        assert_eq!(reread.finalize(), Sha256::digest(&ours[..5]));
        let kept = covered
            .at(3 * chunk as u64, || Reader(&[][..]))
            .await
            .unwrap();
        assert_eq!(kept.finalize(), Sha256::digest(&ours[..3 * chunk]));
    }

    #[test]
    fn impossible_piece_lists_are_refused() {
        let p = |chunk, n| Pieces {
            chunk,
            hashes: vec![[0; 32]; n],
        };
        assert!(p(0, 0).check(10).is_err());
        assert!(p(1 << 20, 2).check(1 << 20).is_err());
        assert!(p(1 << 20, 2).check(2 << 20).is_ok());
        assert!(p(u64::MAX, 2).check(u64::MAX).is_err());
        assert!(p(1 << 20, 2).allows(1 << 20));
        assert!(!p(1 << 20, 2).allows(3 << 20));
        assert!(!p(1 << 20, 2).allows(5));
    }
}
