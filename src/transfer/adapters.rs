//! The ends a copy reads from and writes to: QUIC streams, files, and any tokio reader or writer.
//!
//! Files are read and written at explicit offsets (pread, and pwritev or a direct write: see
//! `direct`), straight into and out of the blocks that travel (a direct write copies a block once,
//! into its aligned buffer), each file by one thread of its own for as long as it is read or
//! written (a blocking-pool thread, fed or drained through a channel of a few blocks). A thread per
//! block, as before, cost a wake-up on each side per block and spread one transfer's file work over
//! up to eight threads (BENCHMARKS.md). No handle shares a file offset with another, so a source or
//! sink can be made at any position without seeking a handle someone else holds.

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::direct::Writes;
use super::writeback::EarlyWriteback;
use super::{Block, Sink, Source, BLOCK, LARGE_BLOCK, RECEIVE_QUEUE};

impl Source for quinn::RecvStream {
    /// Packets are taken out of quinn as they arrive, into the copy's queue: see
    /// [`RECEIVE_QUEUE`].
    const READ_AHEAD: usize = RECEIVE_QUEUE;

    fn hand_off(&self) -> usize {
        LARGE_BLOCK
    }

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

    async fn read_ready(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0;
        let soon = tokio::time::sleep(READY_WAIT);
        tokio::pin!(soon);
        while got < max {
            // quinn's read_chunk is cancel-safe: a chunk not here yet is not lost when the
            // wait ends first.
            tokio::select! {
                biased;
                chunk = self.read_chunk(max - got, true) => match chunk {
                    Ok(Some(chunk)) => {
                        got += chunk.bytes.len();
                        pieces.push(chunk.bytes);
                    }
                    // The end: the next read_block meets it.
                    Ok(None) => break,
                    Err(e) if pieces.is_empty() => return Err(e.into()),
                    // What did arrive first is handed on; the next read meets the error.
                    Err(_) => break,
                },
                () = &mut soon => break,
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

/// How long a QUIC stream waits for the rest of a block it is growing: a link that delivers
/// 256 KiB in this time (26 MB/s) gets blocks of a MiB; a slower one keeps 256 KiB blocks,
/// each reaching the disk and the progress bar at most this much later than it could.
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Blocks a file's reading thread may be ahead of the copy.
const FILE_QUEUE: usize = 2;

/// Reads a file from an offset, in [`BLOCK`]s read ahead by a thread of its own (started at the
/// first read, ended when this is dropped), straight into the buffers that are then sent:
/// tokio::fs would copy each block once more through its own.
#[derive(Debug)]
pub struct FileSource {
    file: Arc<std::fs::File>,
    /// The next byte to hand out.
    pos: u64,
    /// Bytes per read, and per block handed on: [`BLOCK`] unless [`FileSource::in_blocks_of`].
    block: usize,
    /// Blocks from the reading thread, once started; it ends at the end of the file.
    ahead: Option<mpsc::Receiver<io::Result<Bytes>>>,
    /// What is left of the last block taken from `ahead`.
    rest: Bytes,
}

/// Writes a file from an offset, one write per block (direct where it can: see `direct`), on a
/// thread of its own (started at the first write, ended when this is dropped). Each write
/// returns once its block is written: the copy's queue keeps the rest of the transfer moving
/// meanwhile, and whoever commits the file after the last write finds all of it there.
#[derive(Debug)]
pub struct FileSink {
    file: Arc<std::fs::File>,
    /// Where the next block goes.
    pos: u64,
    /// The writing thread, once started.
    writer: Option<FileWriter>,
}

/// A file's writing thread: blocks go one way, the outcome of each comes back.
#[derive(Debug)]
struct FileWriter {
    blocks: mpsc::Sender<Block>,
    written: mpsc::Receiver<io::Result<()>>,
}

impl FileSource {
    /// Reads `file` from byte `pos`.
    pub fn new(file: Arc<std::fs::File>, pos: u64) -> Self {
        FileSource {
            file,
            pos,
            block: BLOCK,
            ahead: None,
            rest: Bytes::new(),
        }
    }

    /// Reads and hands on `block` bytes at a time: [`LARGE_BLOCK`] where few transfers share
    /// the process (see [`Source::hand_off`]).
    pub fn in_blocks_of(mut self, block: usize) -> Self {
        self.block = block;
        self
    }
}

impl FileSink {
    /// Writes `file` from byte `pos`.
    pub fn new(file: Arc<std::fs::File>, pos: u64) -> Self {
        FileSink {
            file,
            pos,
            writer: None,
        }
    }
}

impl Source for FileSource {
    fn hand_off(&self) -> usize {
        self.block
    }

    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let ahead = self
            .ahead
            .get_or_insert_with(|| read_ahead(self.file.clone(), self.pos, self.block));
        let mut pieces = Vec::new();
        let mut got = 0;
        while got < max {
            if self.rest.is_empty() {
                match ahead.recv().await {
                    Some(block) => self.rest = block?,
                    None => break,
                }
            }
            let piece = self.rest.split_to(self.rest.len().min(max - got));
            got += piece.len();
            pieces.push(piece);
        }
        self.pos += got as u64;
        Ok(pieces)
    }
}

/// Starts the thread that reads `file` from `pos` to its end in blocks of `size`, at most
/// [`FILE_QUEUE`] of them ahead of the reader; it stops early when the receiver is dropped.
fn read_ahead(
    file: Arc<std::fs::File>,
    pos: u64,
    size: usize,
) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(FILE_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut at = pos;
        loop {
            let (block, last) = match read_at(&file, at, size) {
                Ok(block) if block.is_empty() => return,
                Ok(block) => {
                    at += block.len() as u64;
                    let last = block.len() < size;
                    (Ok(block), last)
                }
                Err(e) => (Err(e), true),
            };
            if tx.blocking_send(block).is_err() || last {
                return;
            }
        }
    });
    rx
}

impl Sink for FileSink {
    fn stall_unit(&self) -> usize {
        usize::MAX
    }

    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let len: usize = block.iter().map(Bytes::len).sum();
        let writer = self
            .writer
            .get_or_insert_with(|| write_thread(self.file.clone(), self.pos));
        let gone = || io::Error::other("the file's writer stopped");
        writer.blocks.send(block).await.map_err(|_| gone())?;
        writer.written.recv().await.ok_or_else(gone)??;
        self.pos += len as u64;
        Ok(())
    }
}

/// Starts the thread that writes the blocks it is sent to `file` from `pos` and answers each
/// with its outcome; it stops at the first failure or when the sender is dropped. Large blocks
/// go to the disk directly where the filesystem suits ([`Writes`]); what goes through the page
/// cache the disk takes as it goes ([`EarlyWriteback`]), so the commit's fsync has little left.
fn write_thread(file: Arc<std::fs::File>, pos: u64) -> FileWriter {
    let (blocks, mut to_write) = mpsc::channel::<Block>(1);
    let (answer, written) = mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        let mut at = pos;
        let mut disk = Writes::default();
        let mut early = EarlyWriteback::new(pos);
        while let Some(block) = to_write.blocking_recv() {
            let outcome = disk.write_at(&file, at, &block);
            let cached = matches!(outcome, Ok(true));
            let failed = outcome.is_err();
            if answer.blocking_send(outcome.map(drop)).is_err() || failed {
                return;
            }
            at += block.iter().map(|p| p.len() as u64).sum::<u64>();
            if cached {
                early.written(&file, at);
            }
        }
    });
    FileWriter { blocks, written }
}

/// Up to `max` bytes of `file` from `pos`: fewer only at its end. Reads into the block's unused
/// capacity, so nothing is zeroed first.
fn read_at(file: &std::fs::File, pos: u64, max: usize) -> io::Result<Bytes> {
    let mut block = Vec::with_capacity(max);
    while block.len() < max {
        let at = pos + block.len() as u64;
        match positioned::read(file, &mut block, max, at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from(block))
}

/// Writes all of `pieces` to `file` from `pos`, with as few system calls as the kernel allows.
pub(crate) fn write_all_at(file: &std::fs::File, pos: u64, pieces: &[Bytes]) -> io::Result<()> {
    /// Slices per call: Linux takes at most 1024 (IOV_MAX).
    const MAX_SLICES: usize = 1024;
    let mut slices: Vec<IoSlice<'_>> = pieces
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    let mut at = pos;
    while !rest.is_empty() {
        let upto = rest.len().min(MAX_SLICES);
        match positioned::write_vectored(file, &rest[..upto], at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                at += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Positioned reads and writes: pread/pwritev on Unix; elsewhere a seek and a read or write,
/// which is safe here because each source or sink is the only user of its handle's offset.
mod positioned {
    use std::io::{self, IoSlice};

    /// Appends to `buf` what is read at `pos`, up to its capacity (which the caller made
    /// exactly `max`).
    #[cfg(unix)]
    pub fn read(
        file: &std::fs::File,
        buf: &mut Vec<u8>,
        max: usize,
        pos: u64,
    ) -> io::Result<usize> {
        debug_assert!(buf.capacity() == max);
        Ok(rustix::io::pread(
            file,
            rustix::buffer::spare_capacity(buf),
            pos,
        )?)
    }

    #[cfg(unix)]
    pub fn write_vectored(
        file: &std::fs::File,
        bufs: &[IoSlice<'_>],
        pos: u64,
    ) -> io::Result<usize> {
        Ok(rustix::io::pwritev(file, bufs, pos)?)
    }

    #[cfg(not(unix))]
    pub fn read(
        mut file: &std::fs::File,
        buf: &mut Vec<u8>,
        max: usize,
        pos: u64,
    ) -> io::Result<usize> {
        use std::io::{Read, Seek};
        file.seek(io::SeekFrom::Start(pos))?;
        let room = (max - buf.len()) as u64;
        Read::take(&mut file, room).read_to_end(buf)
    }

    #[cfg(not(unix))]
    pub fn write_vectored(
        mut file: &std::fs::File,
        bufs: &[IoSlice<'_>],
        pos: u64,
    ) -> io::Result<usize> {
        use std::io::{Seek, Write};
        file.seek(io::SeekFrom::Start(pos))?;
        file.write_vectored(bufs)
    }
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

/// An in-memory pipe end, as both ends of a copy: command handlers are generic over their
/// streams, so they run over these in tests, without a network.
impl Source for tokio::io::DuplexStream {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        Reader(self).read_block(max).await
    }
}

impl Sink for tokio::io::DuplexStream {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        Writer(self).write_block(block).await
    }
}
