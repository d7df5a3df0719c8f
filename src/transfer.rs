//! Moving a file body: exactly `size` bytes from a reader to a writer, hashed with SHA-256 on the
//! way, with a progress hook. Both sides of every transfer use this one copy loop.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes moved per read and write.
pub const BLOCK: usize = 256 << 10;

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
pub trait Source {
    /// Up to `max` bytes in order, as one or more pieces: fewer only at the end of the data.
    fn read_block(&mut self, max: usize) -> impl Future<Output = io::Result<Vec<Bytes>>> + Send;
}

/// Where a copy writes to: a QUIC stream, a file, or any [`AsyncWrite`] through [`Writer`].
pub trait Sink {
    /// Writes all of `block`, in order.
    fn write_block(&mut self, block: Block) -> impl Future<Output = io::Result<()>> + Send;
}

/// A block of a body: pieces in order, shared by the writer and the hasher.
pub type Block = Arc<[Bytes]>;

impl Source for quinn::RecvStream {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0;
        // Never more than `max`: what follows a body on the stream (its trailer) is not ours.
        while got < max {
            match self.read_chunk(max - got, true).await? {
                Some(chunk) => {
                    got += chunk.bytes.len();
                    pieces.push(chunk.bytes);
                }
                None => break,
            }
        }
        Ok(pieces)
    }
}

impl Sink for quinn::SendStream {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        // Handing quinn the pieces themselves saves it copying them into its send buffer.
        let mut pieces = block.to_vec();
        self.write_all_chunks(&mut pieces).await?;
        Ok(())
    }
}

/// Reads a file with blocking calls on tokio's blocking threads, straight into the buffers that
/// are then sent: tokio::fs would copy each block once more through its own buffer.
#[derive(Debug)]
pub struct FileSource(Arc<std::fs::File>);

/// Writes a file with blocking calls (a vectored write per block) on tokio's blocking threads.
#[derive(Debug)]
pub struct FileSink(Arc<std::fs::File>);

/// A second handle on `file` at the same offset (they share it), for blocking calls.
async fn blocking_handle(file: &mut tokio::fs::File) -> io::Result<Arc<std::fs::File>> {
    // Settle tokio's own state first: a write it still has in flight, or read-ahead it holds
    // (seeking to where the file stands gives that back), so the shared offset is the real one.
    file.flush().await?;
    file.seek(io::SeekFrom::Current(0)).await?;
    Ok(Arc::new(file.try_clone().await?.into_std().await))
}

impl FileSource {
    /// Reads `file` from where it stands.
    pub async fn new(file: &mut tokio::fs::File) -> io::Result<Self> {
        Ok(FileSource(blocking_handle(file).await?))
    }
}

impl FileSink {
    /// Writes `file` from where it stands.
    pub async fn new(file: &mut tokio::fs::File) -> io::Result<Self> {
        Ok(FileSink(blocking_handle(file).await?))
    }
}

impl Source for FileSource {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let file = self.0.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut block = Vec::with_capacity(max);
            // `read_to_end` fills unused capacity: nothing is zeroed first.
            (&*file).take(max as u64).read_to_end(&mut block)?;
            Ok(vec![Bytes::from(block)])
        });
        read.await.map_err(io::Error::other)?
    }
}

impl Sink for FileSink {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let file = self.0.clone();
        let written = tokio::task::spawn_blocking(move || write_all_vectored(&file, &block));
        written.await.map_err(io::Error::other)?
    }
}

/// Writes all of `pieces` with as few system calls as the kernel allows.
pub(crate) fn write_all_vectored(mut out: &std::fs::File, pieces: &[Bytes]) -> io::Result<()> {
    /// Slices per call: Linux takes at most 1024 (IOV_MAX).
    const MAX_SLICES: usize = 1024;
    let mut slices: Vec<IoSlice<'_>> = pieces
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let upto = rest.len().min(MAX_SLICES);
        match out.write_vectored(&rest[..upto]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Any [`AsyncRead`] as a [`Source`] (it copies into fresh blocks).
#[derive(Debug)]
pub struct Reader<R>(pub R);

/// Any [`AsyncWrite`] as a [`Sink`].
#[derive(Debug)]
pub struct Writer<W>(pub W);

impl<R: AsyncRead + Unpin + Send> Source for Reader<R> {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut block = BytesMut::with_capacity(max);
        while block.len() < max {
            let room = max - block.len();
            // `read_buf` fills unused capacity: nothing is zeroed first.
            if self.0.read_buf(&mut (&mut block).limit(room)).await? == 0 {
                break;
            }
        }
        Ok(vec![block.freeze()])
    }
}

impl<W: AsyncWrite + Unpin + Send> Sink for Writer<W> {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        for piece in block.iter() {
            self.0.write_all(piece).await?;
        }
        Ok(())
    }
}

/// Sends `size` bytes of `file`, from where it stands, to `dst`, continuing `hasher`; returns
/// the SHA-256 of everything `hasher` has seen.
pub async fn send_file<W: Sink>(
    hasher: Sha256,
    file: &mut tokio::fs::File,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError> {
    let mut src = FileSource::new(file).await.map_err(CopyError::Read)?;
    copy_continuing(hasher, &mut src, dst, size, stall, progress).await
}

/// Receives `size` bytes from `src` into `file`, from where it stands, continuing `hasher`;
/// returns the SHA-256 of everything `hasher` has seen. When it returns, even with an error,
/// every byte received before is written.
pub async fn receive_file<R: Source>(
    hasher: Sha256,
    src: &mut R,
    file: &mut tokio::fs::File,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError> {
    let mut dst = FileSink::new(file).await.map_err(CopyError::Write)?;
    copy_continuing(hasher, src, &mut dst, size, stall, progress).await
}

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
/// Three stages overlap, so that one transfer uses more than one core: reading the next block,
/// writing the previous one, and hashing on a blocking thread (SHA-256 is a quarter of a
/// transfer's CPU time, and inline it held up the QUIC work on the same thread; see
/// BENCHMARKS.md). At most [`PIPELINE`] blocks wait between the stages, so memory stays bounded.
pub async fn copy_continuing<R: Source, W: Sink>(
    hasher: Sha256,
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError> {
    let (to_hash, mut hash_queue) = mpsc::channel::<Block>(PIPELINE);
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = hasher;
        while let Some(block) = hash_queue.blocking_recv() {
            for piece in block.iter() {
                hasher.update(piece);
            }
        }
        hasher
    });
    let (to_write, mut write_queue) = mpsc::channel::<Block>(PIPELINE);
    // The reader's own error waits until the blocks read before it are written: what did
    // arrive is kept (a resumed transfer continues after it). A write error ends both at once.
    let reading = async move {
        let read = read_blocks(src, size, stall, &to_hash, &to_write).await;
        drop((to_hash, to_write));
        Ok::<_, CopyError>(read)
    };
    let writing = async {
        while let Some(block) = write_queue.recv().await {
            let len: usize = block.iter().map(Bytes::len).sum();
            within(stall, dst.write_block(block))
                .await?
                .map_err(CopyError::Write)?;
            progress.inc(len as u64);
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

/// Reads a body of `size` bytes, at most one [`BLOCK`], whole into memory and returns it with
/// its SHA-256, hashed inline: for a small file the pipeline of [`copy_continuing`] has nothing
/// to overlap, and its hand-offs between threads cost more than the copy.
pub async fn read_whole<R: Source>(
    src: &mut R,
    size: usize,
    stall: Option<Duration>,
) -> Result<(Vec<Bytes>, [u8; 32]), CopyError> {
    debug_assert!(size <= BLOCK);
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

/// Blocks queued between the stages of a copy, each way.
const PIPELINE: usize = 1;

/// Reads `size` bytes from `src` in blocks, handing each to the hasher and the writer. A
/// source that ends early still hands over what it gave, then reports [`CopyError::Short`].
async fn read_blocks<R: Source>(
    src: &mut R,
    size: u64,
    stall: Option<Duration>,
    to_hash: &mpsc::Sender<Block>,
    to_write: &mpsc::Sender<Block>,
) -> Result<(), CopyError> {
    let mut done = 0u64;
    while done < size {
        let want = usize::try_from(size - done).map_or(BLOCK, |left| left.min(BLOCK));
        // Large blocks, because a write per network packet halves throughput (FIELD-NOTES).
        let pieces = within(stall, src.read_block(want))
            .await?
            .map_err(CopyError::Read)?;
        let got: usize = pieces.iter().map(Bytes::len).sum();
        done += got as u64;
        if got > 0 {
            let block: Block = pieces.into();
            // A closed queue means the writer failed; its error is the one reported.
            if to_hash.send(block.clone()).await.is_err() || to_write.send(block).await.is_err() {
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
            &mut Reader(rest),
            &mut Writer(Vec::new()),
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
