//! Moving a file body: exactly `size` bytes from a reader to a writer, hashed with SHA-256 on the
//! way, with a progress hook. Both sides of every transfer use this one copy loop.

use std::io;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes moved per read and write.
pub const BLOCK: usize = 1 << 20;

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

/// Copies exactly `size` bytes from `src` to `dst`, returning their SHA-256. With `stall`, each
/// block (read and write) must complete within that time.
pub async fn copy_hashed<R, W>(
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    copy_continuing(Sha256::new(), src, dst, size, stall, progress).await
}

/// [`copy_hashed`] for the rest of a resumed file: `hasher` already holds the part before, so
/// the result is the SHA-256 of the whole file.
///
/// Three stages overlap, so that one transfer uses more than one core: reading the next block,
/// writing the previous one, and hashing on a blocking thread (SHA-256 is a third of a
/// transfer's CPU time, and inline it held up the QUIC work on the same thread; see
/// BENCHMARKS.md). At most [`PIPELINE`] blocks wait between the stages, so memory stays bounded.
pub async fn copy_continuing<R, W>(
    hasher: Sha256,
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (to_hash, mut hash_queue) = mpsc::channel::<Bytes>(PIPELINE);
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = hasher;
        while let Some(block) = hash_queue.blocking_recv() {
            hasher.update(&block);
        }
        hasher
    });
    let (to_write, mut write_queue) = mpsc::channel::<Bytes>(PIPELINE);
    // The reader's own error waits until the blocks read before it are written: what did
    // arrive is kept (a resumed transfer continues after it). A write error ends both at once.
    let reading = async move {
        let read = read_blocks(src, size, stall, &to_hash, &to_write).await;
        drop((to_hash, to_write));
        Ok::<_, CopyError>(read)
    };
    let writing = async {
        while let Some(block) = write_queue.recv().await {
            within(stall, dst.write_all(&block))
                .await?
                .map_err(CopyError::Write)?;
            progress.inc(block.len() as u64);
        }
        Ok(())
    };
    let (read, ()) = tokio::try_join!(reading, writing)?;
    read?;
    let hasher = hashing
        .await
        .map_err(|e| CopyError::Read(io::Error::other(e)))?;
    Ok(hasher.finalize().into())
}

/// Blocks queued between the stages of a copy, each way.
const PIPELINE: usize = 1;

/// Reads `size` bytes from `src` in blocks, handing each to the hasher and the writer. A
/// source that ends early still hands over what it gave, then reports [`CopyError::Short`].
async fn read_blocks<R: AsyncRead + Unpin>(
    src: &mut R,
    size: u64,
    stall: Option<Duration>,
    to_hash: &mpsc::Sender<Bytes>,
    to_write: &mpsc::Sender<Bytes>,
) -> Result<(), CopyError> {
    let mut done = 0u64;
    while done < size {
        let want = usize::try_from(size - done).map_or(BLOCK, |left| left.min(BLOCK));
        let mut block = BytesMut::with_capacity(want);
        // One large write per block, because a write per network chunk halves throughput
        // (measured; see FIELD-NOTES). `read_buf` fills unused capacity: nothing is zeroed.
        let ended = within(stall, async {
            while block.len() < want {
                let room = want - block.len();
                if src.read_buf(&mut (&mut block).limit(room)).await? == 0 {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await?
        .map_err(CopyError::Read)?;
        done += block.len() as u64;
        if !block.is_empty() {
            let block = block.freeze();
            // A closed queue means the writer failed; its error is the one reported.
            if to_hash.send(block.clone()).await.is_err() || to_write.send(block).await.is_err() {
                return Ok(());
            }
        }
        if ended {
            return Err(CopyError::Short {
                got: done,
                expected: size,
            });
        }
    }
    Ok(())
}

/// Runs `step`, bounded by the stall timeout if there is one.
async fn within<T>(
    stall: Option<Duration>,
    step: impl std::future::Future<Output = T>,
) -> Result<T, CopyError> {
    match stall {
        Some(limit) => tokio::time::timeout(limit, step)
            .await
            .map_err(|_| CopyError::Stalled(limit)),
        None => Ok(step.await),
    }
}

/// The SHA-256 of each whole `chunk`-sized piece of the first `len` bytes of `src` (read from
/// where it stands): what a side holding part of a file tells the other, to resume. Also the
/// SHA-256 state of all those pieces together, so that when the transfer resumes after the last
/// of them (the usual case) the whole-file hash needs no second read of them.
pub async fn piece_hashes<R: AsyncRead + Unpin>(
    src: &mut R,
    len: u64,
    chunk: u64,
) -> io::Result<(Vec<[u8; 32]>, Sha256)> {
    let mut hashes = Vec::new();
    let mut whole = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    for _ in 0..len / chunk {
        let mut piece = Sha256::new();
        read_into(src, chunk, &mut buf, |block| {
            piece.update(block);
            whole.update(block);
        })
        .await?;
        hashes.push(piece.finalize().into());
    }
    Ok((hashes, whole))
}

/// Reads `src` (from where it stands) piece by piece against `theirs`, the other side's piece
/// hashes, while both have whole pieces (`available` bytes here). Returns where they first
/// differ (the offset to resume from) and the SHA-256 state of everything before it, in one pass.
pub async fn agree<R: AsyncRead + Unpin>(
    src: &mut R,
    available: u64,
    chunk: u64,
    theirs: &[[u8; 32]],
) -> io::Result<(u64, Sha256)> {
    let mut whole = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    let mut from = 0u64;
    for their in theirs {
        if from + chunk > available {
            break;
        }
        let before = whole.clone();
        let mut piece = Sha256::new();
        read_into(src, chunk, &mut buf, |block| {
            piece.update(block);
            whole.update(block);
        })
        .await?;
        if <[u8; 32]>::from(piece.finalize()) != *their {
            return Ok((from, before));
        }
        from += chunk;
    }
    Ok((from, whole))
}

/// The SHA-256 state of the first `len` bytes of `src` (read from where it stands).
pub async fn hash_prefix<R: AsyncRead + Unpin>(src: &mut R, len: u64) -> io::Result<Sha256> {
    let mut whole = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    read_into(src, len, &mut buf, |block| whole.update(block)).await?;
    Ok(whole)
}

/// Reads exactly `len` bytes in blocks, handing each to `take`.
async fn read_into<R: AsyncRead + Unpin>(
    src: &mut R,
    len: u64,
    buf: &mut [u8],
    mut take: impl FnMut(&[u8]),
) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        src.read_exact(&mut buf[..want]).await?;
        take(&buf[..want]);
        left -= want as u64;
    }
    Ok(())
}

/// Lower-case hex of a digest, for logs and JSON.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_exactly_size_and_hashes_it() {
        let data: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let digest = copy_hashed(
            &mut &data[..],
            &mut out,
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
        copy_hashed(&mut &data[..], &mut out, 40, None, &ProgressBar::hidden())
            .await
            .unwrap();
        assert_eq!(out.len(), 40);
        let err = copy_hashed(
            &mut &data[..],
            &mut Vec::new(),
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
            &mut rx,
            &mut Vec::new(),
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

    #[tokio::test]
    async fn agreement_finds_the_first_differing_piece_and_hashes_what_is_before() {
        let chunk = 1 << 20;
        let ours: Vec<u8> = (0..4 * chunk + 10).map(|i| (i % 253) as u8).collect();
        let mut theirs = ours.clone();
        theirs[2 * chunk + 7] ^= 1; // their third piece differs
        let (their_hashes, _) = piece_hashes(&mut &theirs[..], theirs.len() as u64, chunk as u64)
            .await
            .unwrap();
        assert_eq!(their_hashes.len(), 4);
        let (from, before) = agree(
            &mut &ours[..],
            ours.len() as u64,
            chunk as u64,
            &their_hashes,
        )
        .await
        .unwrap();
        assert_eq!(from, 2 * chunk as u64);
        assert_eq!(before.finalize(), Sha256::digest(&ours[..2 * chunk]));

        // Identical: agreement up to the last whole piece both have.
        let (same, covered) = piece_hashes(&mut &ours[..], ours.len() as u64, chunk as u64)
            .await
            .unwrap();
        let (from, before) = agree(&mut &ours[..], 3 * chunk as u64 + 5, chunk as u64, &same)
            .await
            .unwrap();
        assert_eq!(from, 3 * chunk as u64);
        assert_eq!(
            covered.finalize(),
            Sha256::digest(&ours[..4 * chunk]),
            "state over all pieces"
        );
        let whole = before.clone().finalize();
        assert_eq!(whole, Sha256::digest(&ours[..3 * chunk]));

        // Continuing the hash over the rest gives the whole file's hash.
        let rest = &ours[3 * chunk..];
        let digest = copy_continuing(
            before,
            &mut &rest[..],
            &mut Vec::new(),
            rest.len() as u64,
            None,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&ours)));
        assert_eq!(
            hash_prefix(&mut &ours[..], 5).await.unwrap().finalize(),
            Sha256::digest(&ours[..5])
        );
    }
}
