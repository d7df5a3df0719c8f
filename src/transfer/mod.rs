//! Moving a file body: exactly `size` bytes from a [`Source`] to a [`Sink`], hashed with SHA-256
//! on the way, with a progress hook. Both sides of every transfer use this one copy loop; the
//! storage backends and the client's local files provide its ends ([`adapters`]).
//!
//! # Where a copy runs
//! The QUIC endpoint and its tasks share one thread (the runtime is current-thread: see
//! [`crate::cli`]); a copy adds at most two threads of its own, each for the whole copy: the
//! hasher, and a file's reader or writer ([`FileSource`], [`FileSink`]). Blocks of up to
//! [`BLOCK`] bytes are handed between them through queues bounded in bytes, so a copy's memory
//! is bounded and a thread wakes once per block, not once per packet or per system call.

pub mod adapters;
mod writeback;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

pub(crate) use adapters::write_all_at;
pub use adapters::{FileSink, FileSource, Reader, Writer};

/// Bytes moved per read and write.
pub const BLOCK: usize = 256 << 10;

/// How far a copy reads a QUIC stream ahead of its hasher and writer: qft's own receive queue.
///
/// Reading the stream promptly keeps quinn's reassembly buffer short: past 2,048 waiting
/// packets quinn copies them all into one new buffer (`Assembler::defragment`), which took 5-10%
/// of a receiver's CPU when the copy read only as fast as its slowest stage (BENCHMARKS.md).
/// Here the packets wait as the `Bytes` they arrived in, uncopied. [`crate::tuning::Tuning`]
/// gives quinn's stream window this much less, so a transfer's memory stays what it was.
pub const RECEIVE_QUEUE: usize = 4 << 20;

/// Why a body copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source ended before `size` bytes.
    #[error("the data ended after {got} of {expected} bytes")]
    Short {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// Reading the source failed.
    #[error("{0}")]
    Read(#[source] io::Error),
    /// Writing the destination failed.
    #[error("{0}")]
    Write(#[source] io::Error),
    /// A block did not move within the stall timeout (a peer trickling or not reading).
    #[error("the transfer stalled: no block moved within {} s", .0.as_secs())]
    Stalled(Duration),
}

/// Where a copy reads from: a QUIC stream, a file, or any [`AsyncRead`] through [`Reader`].
///
/// Blocks are handed on as the [`Bytes`] they arrived in, so a byte is copied by the kernel and
/// by QUIC but not again here: copies were an eighth of a transfer's CPU time (BENCHMARKS.md).
///
/// [`AsyncRead`]: tokio::io::AsyncRead
pub trait Source {
    /// Bytes a copy may read from this source ahead of its hasher and writer. Small for a file
    /// (it waits in the file anyway); [`RECEIVE_QUEUE`] for a QUIC stream.
    const READ_AHEAD: usize = 2 * BLOCK;

    /// Up to `max` bytes in order, as one or more pieces: fewer only at the end of the data.
    fn read_block(&mut self, max: usize) -> impl Future<Output = io::Result<Vec<Bytes>>> + Send;
}

/// Where a copy writes to: a QUIC stream, a file, or any [`AsyncWrite`] through [`Writer`].
///
/// [`AsyncWrite`]: tokio::io::AsyncWrite
pub trait Sink {
    /// Writes all of `block`, in order.
    fn write_block(&mut self, block: Block) -> impl Future<Output = io::Result<()>> + Send;
}

/// A block of a body: pieces in order, shared by the writer and the hasher.
pub type Block = Arc<[Bytes]>;

/// Copies exactly `size` bytes from `src` to `dst`, returning their SHA-256. With `stall`, each
/// block must be read, and written, within that time.
pub async fn copy_hashed<R: Source, W: Sink>(
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError> {
    copy_continuing(Sha256::new(), src, dst, size, stall, progress).await
}

/// [`copy_hashed`] for the rest of a resumed file: `hasher` already holds the part before, so
/// the result is the SHA-256 of the whole file.
///
/// Three stages overlap, so that one transfer uses more than one core: reading (on the
/// runtime's thread for a QUIC stream, on the file's own thread for a file), writing, and
/// hashing on a thread of its own (SHA-256 is a quarter of a transfer's CPU time, and inline it
/// held up the QUIC work on the same thread; see BENCHMARKS.md). What is read and not yet both
/// hashed and written is at most the source's [`Source::READ_AHEAD`], so memory stays bounded.
///
/// When this returns, every block read has been written, also when reading failed: what did
/// arrive is kept (a resumed transfer continues after it).
pub async fn copy_continuing<R: Source, W: Sink>(
    hasher: Sha256,
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError> {
    let digest = copy(Some(hasher), src, dst, size, stall, progress).await?;
    Ok(digest.expect("a hasher was given"))
}

/// Copies exactly `size` bytes from `src` to `dst` without hashing them: for a body whose
/// SHA-256 is already known (the storage's digest cache), which the receiver verifies.
pub async fn copy_unhashed<R: Source, W: Sink>(
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<(), CopyError> {
    copy(None, src, dst, size, stall, progress).await?;
    Ok(())
}

/// The copy behind [`copy_continuing`] and [`copy_unhashed`]: the hash, if there is a hasher.
async fn copy<R: Source, W: Sink>(
    hasher: Option<Sha256>,
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<Option<[u8; 32]>, CopyError> {
    // Unbounded channels, bounded in bytes by the budget every queued block holds a share of.
    let budget = Arc::new(Semaphore::new(R::READ_AHEAD.max(BLOCK)));
    let (to_hash, hashing) = match hasher {
        Some(hasher) => {
            let (to_hash, mut hash_queue) = mpsc::unbounded_channel::<Arc<Queued>>();
            let hashing = tokio::task::spawn_blocking(move || {
                let mut hasher = hasher;
                while let Some(queued) = hash_queue.blocking_recv() {
                    for piece in queued.block.iter() {
                        hasher.update(piece);
                    }
                }
                hasher
            });
            (Some(to_hash), Some(hashing))
        }
        None => (None, None),
    };
    let (to_write, mut write_queue) = mpsc::unbounded_channel::<Arc<Queued>>();
    // The reader's own error waits until the blocks read before it are written: what did
    // arrive is kept (a resumed transfer continues after it). A write error ends both at once.
    let reading = async move {
        let read = read_blocks(src, size, stall, &budget, to_hash.as_ref(), &to_write).await;
        drop((to_hash, to_write));
        Ok::<_, CopyError>(read)
    };
    let writing = async {
        while let Some(queued) = write_queue.recv().await {
            let len: usize = queued.block.iter().map(Bytes::len).sum();
            within(stall, dst.write_block(queued.block.clone()))
                .await?
                .map_err(CopyError::Write)?;
            progress.inc(len as u64);
        }
        Ok(())
    };
    let (read, ()) = tokio::try_join!(reading, writing)?;
    read?;
    let Some(hashing) = hashing else {
        return Ok(None);
    };
    let hasher = hashing
        .await
        .map_err(|e| CopyError::Read(io::Error::other(e)))?;
    Ok(Some(hasher.finalize().into()))
}

/// A block read and not yet both hashed and written: its bytes' share of the budget returns
/// when the hasher and the writer have both dropped it.
struct Queued {
    block: Block,
    _share: OwnedSemaphorePermit,
}

/// Reads a body of `size` bytes, a small file's ([`crate::protocol::SMALL_FILE`]), whole into memory and returns it with
/// its SHA-256, hashed inline: for a small file the pipeline of [`copy_continuing`] has nothing
/// to overlap, and its hand-offs between threads cost more than the copy.
pub async fn read_whole<R: Source>(
    src: &mut R,
    size: usize,
    stall: Option<Duration>,
) -> Result<(Vec<Bytes>, [u8; 32]), CopyError> {
    debug_assert!(size as u64 <= crate::protocol::SMALL_FILE);
    let pieces = within(stall, src.read_block(size))
        .await?
        .map_err(CopyError::Read)?;
    let got: usize = pieces.iter().map(Bytes::len).sum();
    if got < size {
        return Err(CopyError::Short {
            got: got as u64,
            expected: size as u64,
        });
    }
    let mut hasher = Sha256::new();
    for piece in &pieces {
        hasher.update(piece);
    }
    Ok((pieces, hasher.finalize().into()))
}

/// Reads `size` bytes from `src` in blocks, handing each to the hasher (if any) and the writer
/// once the budget has room for it. A source that ends early still hands over what it gave,
/// then reports [`CopyError::Short`].
async fn read_blocks<R: Source>(
    src: &mut R,
    size: u64,
    stall: Option<Duration>,
    budget: &Arc<Semaphore>,
    to_hash: Option<&mpsc::UnboundedSender<Arc<Queued>>>,
    to_write: &mpsc::UnboundedSender<Arc<Queued>>,
) -> Result<(), CopyError> {
    let mut done = 0u64;
    while done < size {
        let want = usize::try_from(size - done).map_or(BLOCK, |left| left.min(BLOCK));
        // Waiting here is waiting for our own stages, not for the peer: no stall timeout.
        let Ok(share) = budget.clone().acquire_many_owned(want as u32).await else {
            return Ok(());
        };
        // Large blocks: the per-block costs (a hand-off to a thread, a system call) are paid once
        // per 256 KiB, not once per network packet.
        let pieces = within(stall, src.read_block(want))
            .await?
            .map_err(CopyError::Read)?;
        let got: usize = pieces.iter().map(Bytes::len).sum();
        done += got as u64;
        if got > 0 {
            let block: Block = pieces.into();
            let queued = Arc::new(Queued {
                block,
                _share: share,
            });
            // A closed queue means the writer failed; its error is the one reported.
            let hashed = to_hash.is_none_or(|h| h.send(queued.clone()).is_ok());
            if !hashed || to_write.send(queued).is_err() {
                return Ok(());
            }
        }
        if got < want {
            return Err(CopyError::Short {
                got: done,
                expected: size,
            });
        }
    }
    Ok(())
}

/// Runs `step`, bounded by the stall timeout if there is one.
async fn within<T>(stall: Option<Duration>, step: impl Future<Output = T>) -> Result<T, CopyError> {
    match stall {
        Some(limit) => tokio::time::timeout(limit, step)
            .await
            .map_err(|_| CopyError::Stalled(limit)),
        None => Ok(step.await),
    }
}

/// Lower-case hex of a digest, for logs and JSON.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn copies_exactly_size_and_hashes_it() {
        let data: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let digest = copy_hashed(
            &mut Reader(&data[..]),
            &mut Writer(&mut out),
            data.len() as u64,
            None,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(out, data);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
    }

    #[tokio::test]
    async fn stops_at_size_and_reports_a_short_source() {
        let data = [1u8; 100];
        let mut out = Vec::new();
        copy_hashed(
            &mut Reader(&data[..]),
            &mut Writer(&mut out),
            40,
            None,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(out.len(), 40);
        let err = copy_hashed(
            &mut Reader(&data[..]),
            &mut Writer(Vec::new()),
            101,
            None,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                CopyError::Short {
                    got: 100,
                    expected: 101
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn hex_is_lowercase_and_64_chars() {
        let h = hex(&[0xab; 32]);
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("abab"));
    }

    #[tokio::test]
    async fn a_block_that_does_not_move_in_time_stalls() {
        // A reader that delivers one byte and then nothing, like a trickling or vanished peer.
        let (mut tx, mut rx) = tokio::io::duplex(64);
        tx.write_all(b"x").await.unwrap();
        let limit = Duration::from_millis(50);
        let err = copy_hashed(
            &mut Reader(&mut rx),
            &mut Writer(Vec::new()),
            10,
            Some(limit),
            &ProgressBar::hidden(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, CopyError::Stalled(l) if l == limit),
            "{err:?}"
        );
        drop(tx);
    }
}
