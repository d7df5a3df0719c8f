//! The ends a copy reads from and writes to: QUIC streams, files, and any tokio reader or writer.
//!
//! Files are read and written at explicit offsets (pread/pwritev) on tokio's blocking threads,
//! straight into and out of the blocks that travel: no handle shares a file offset with another,
//! so a source or sink can be made at any position without seeking a handle someone else holds.

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Block, Sink, Source};

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

/// Reads a file from an offset with blocking calls on tokio's blocking threads, straight into
/// the buffers that are then sent: tokio::fs would copy each block once more through its own.
#[derive(Debug, Clone)]
pub struct FileSource {
    file: Arc<std::fs::File>,
    pos: u64,
}

/// Writes a file from an offset with blocking calls (a vectored write per block) on tokio's
/// blocking threads.
#[derive(Debug, Clone)]
pub struct FileSink {
    file: Arc<std::fs::File>,
    pos: u64,
}

impl FileSource {
    /// Reads `file` from byte `pos`.
    pub fn new(file: Arc<std::fs::File>, pos: u64) -> Self {
        FileSource { file, pos }
    }
}

impl FileSink {
    /// Writes `file` from byte `pos`.
    pub fn new(file: Arc<std::fs::File>, pos: u64) -> Self {
        FileSink { file, pos }
    }
}

impl Source for FileSource {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let (file, pos) = (self.file.clone(), self.pos);
        let read = tokio::task::spawn_blocking(move || read_at(&file, pos, max));
        let block = read.await.map_err(io::Error::other)??;
        self.pos += block.len() as u64;
        Ok(vec![block])
    }
}

impl Sink for FileSink {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let (file, pos) = (self.file.clone(), self.pos);
        let len: usize = block.iter().map(Bytes::len).sum();
        let written = tokio::task::spawn_blocking(move || write_all_at(&file, pos, &block));
        written.await.map_err(io::Error::other)??;
        self.pos += len as u64;
        Ok(())
    }
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
