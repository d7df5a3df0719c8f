//! Moving a file body: exactly `size` bytes from a [`Source`] to a [`Sink`], hashed with SHA-256
//! on the way, with a progress hook. Both sides of every transfer use this one copy loop; the
//! storage backends and the client's local files provide its ends ([`adapters`]).
//!
//! # Where a copy runs
//! The QUIC endpoint and its tasks share one thread (the runtime is current-thread: see
//! [`crate::cli`]); a copy adds at most two threads of its own, each for the whole copy: the
//! hasher, and a file's reader or writer ([`FileSource`], [`FileSink`]). Blocks of one or more
//! [`BLOCK`]s (see [`Source::hand_off`]) are handed between them through queues bounded in
//! bytes, so a copy's memory is bounded and a thread wakes once per block, not once per packet
//! or per system call.

pub mod adapters;
mod direct;
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

/// Bytes moved per read and write; each must move within the stall timeout.
pub const BLOCK: usize = 256 << 10;

/// Bytes handed on at once where memory allows: see [`Source::hand_off`]. Four [`BLOCK`]s: with
/// 256 KiB a transfer's hasher and writer each woke 4,096 times per GiB, and a direct write of
/// 256 KiB waited on the disk twice as long per byte as one of 1 MiB (BENCHMARKS.md).
pub const LARGE_BLOCK: usize = 4 * BLOCK;

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

    /// The most bytes a copy hands to its hasher and writer at once: a [`BLOCK`] waited for,
    /// then more whole [`BLOCK`]s while [`Source::read_ready`] has them. Larger for a QUIC
    /// stream, a client's file being sent, and a server's download while few run
    /// ([`LARGE_BLOCK`]): their threads wake once per MiB while data keeps coming, and a
    /// received file takes direct writes of a MiB (see `direct`). On a slow link blocks stay a
    /// [`BLOCK`] and reach the disk and the progress bar as they did. A server sending to many
    /// clients keeps [`BLOCK`]: it holds a few of them per download.
    fn hand_off(&self) -> usize {
        BLOCK
    }

    /// Up to `max` bytes in order, as one or more pieces: fewer only at the end of the data.
    fn read_block(&mut self, max: usize) -> impl Future<Output = io::Result<Vec<Bytes>>> + Send;

    /// Up to `max` bytes that are here already or arrive within a moment: fewer when no more
    /// do (none at the end). A source that cannot tell reads as [`Source::read_block`] does.
    fn read_ready(&mut self, max: usize) -> impl Future<Output = io::Result<Vec<Bytes>>> + Send {
        self.read_block(max)
    }
}

/// Where a copy writes to: a QUIC stream, a file, or any [`AsyncWrite`] through [`Writer`].
///
/// [`AsyncWrite`]: tokio::io::AsyncWrite
pub trait Sink {
    /// The most bytes one write may take within the stall timeout: a copy writes a larger block
    /// in parts of this size. A peer must take each [`BLOCK`] in time, whatever the size of the
    /// blocks handed on; a file takes a block whole (a direct write of a MiB is one write).
    fn stall_unit(&self) -> usize {
        BLOCK
    }

    /// Writes all of `block`, in order.
    fn write_block(&mut self, block: Block) -> impl Future<Output = io::Result<()>> + Send;
}

/// A block of a body: pieces in order, shared by the writer and the hasher.
pub type Block = Arc<[Bytes]>;

/// Copies exactly `size` bytes from `src` to `dst`, returning their SHA-256. With `stall`, each
/// [`BLOCK`] must be read, and written to a peer, within that time (a file takes a block whole).
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
/// hashed and written is at most the source's [`Source::READ_AHEAD`] or two of its blocks,
/// whichever is more, so memory stays bounded.
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
    // Two blocks at least, so that reading one overlaps hashing and writing the one before.
    let budget = Arc::new(Semaphore::new(R::READ_AHEAD.max(2 * src.hand_off())));
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
        let unit = dst.stall_unit();
        while let Some(queued) = write_queue.recv().await {
            for part in split_block(&queued.block, unit) {
                let len: usize = part.iter().map(Bytes::len).sum();
                within(stall, dst.write_block(part))
                    .await?
                    .map_err(CopyError::Write)?;
                progress.inc(len as u64);
            }
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
    // The start of the next block, read while taking what was ready (see [`read_full`]).
    let mut carry = Vec::new();
    while done < size {
        let block = src.hand_off();
        let want = usize::try_from(size - done).map_or(block, |left| left.min(block));
        // Waiting here is waiting for our own stages, not for the peer: no stall timeout.
        let Ok(mut share) = budget.clone().acquire_many_owned(want as u32).await else {
            return Ok(());
        };
        // Large blocks: the per-block costs (a hand-off to a thread, a system call) are paid once
        // per block, not once per network packet.
        let (pieces, ended, read) = read_full(src, want, stall, &mut carry).await;
        let got: usize = pieces.iter().map(Bytes::len).sum();
        // A short block gives back the budget it did not use.
        drop(share.split(want - got));
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
        read?;
        if ended {
            return Err(CopyError::Short {
                got: done,
                expected: size,
            });
        }
    }
    Ok(())
}

/// Reads a block of up to `want` bytes: a [`BLOCK`] (or less, if `want` is) waited for within
/// the stall timeout, starting with `carry`; then more whole [`BLOCK`]s while they are ready
/// ([`Source::read_ready`]). A part of a [`BLOCK`] that is here goes back into `carry`, to
/// start the next block: blocks stay whole [`BLOCK`]s, so on a slow link each reaches the disk
/// as soon as it is whole. Says whether the data ended (the first [`BLOCK`] came up short);
/// the blocks read before an error come back beside it, to be kept.
async fn read_full<R: Source>(
    src: &mut R,
    want: usize,
    stall: Option<Duration>,
    carry: &mut Vec<Bytes>,
) -> (Vec<Bytes>, bool, Result<(), CopyError>) {
    let first = want.min(BLOCK);
    // What was carried is less than a BLOCK and part of the data, so no more than `first`.
    let mut pieces = std::mem::take(carry);
    let mut got: usize = pieces.iter().map(Bytes::len).sum();
    if got < first {
        match within(stall, src.read_block(first - got)).await {
            Ok(Ok(more)) => {
                got += more.iter().map(Bytes::len).sum::<usize>();
                pieces.extend(more);
            }
            Ok(Err(e)) => return (pieces, false, Err(CopyError::Read(e))),
            Err(stalled) => return (pieces, false, Err(stalled)),
        }
        if got < first {
            return (pieces, true, Ok(()));
        }
    }
    while got < want {
        let ask = (want - got).min(BLOCK);
        let more = match within(stall, src.read_ready(ask)).await {
            Ok(Ok(more)) => more,
            Ok(Err(e)) => return (pieces, false, Err(CopyError::Read(e))),
            Err(stalled) => return (pieces, false, Err(stalled)),
        };
        let n: usize = more.iter().map(Bytes::len).sum();
        if n < ask {
            // Not a whole BLOCK here yet (or the end, which the next block's first read finds).
            *carry = more;
            break;
        }
        got += n;
        pieces.extend(more);
    }
    (pieces, false, Ok(()))
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

/// `block` as blocks of at most `max` bytes each, in order, sharing its memory.
pub fn split_block(block: &Block, max: usize) -> Vec<Block> {
    let len: usize = block.iter().map(Bytes::len).sum();
    if len <= max {
        return vec![block.clone()];
    }
    let mut blocks = Vec::with_capacity(len.div_ceil(max));
    let mut current = Vec::new();
    let mut room = max;
    for piece in block.iter() {
        let mut piece = piece.clone();
        while !piece.is_empty() {
            let part = piece.split_to(piece.len().min(room));
            room -= part.len();
            current.push(part);
            if room == 0 {
                blocks.push(Block::from(std::mem::take(&mut current)));
                room = max;
            }
        }
    }
    if !current.is_empty() {
        blocks.push(Block::from(current));
    }
    blocks
}

/// Lower-case hex of a digest, for logs and JSON.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
