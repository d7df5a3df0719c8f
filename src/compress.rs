//! Compressed file bodies (`qft connect -C`): zstd, block by block, negotiated per transfer (a
//! request variant of its own; a server without it answers `Unsupported` and the transfer goes
//! uncompressed). The SHA-256 in the trailer stays that of the file's own bytes: compression is
//! only how the body crosses the network, and both sides hash what the file holds.
//!
//! # The body, compressed
//! The file's bytes from the resume point to the end, cut in blocks of at most [`BLOCK`] (the
//! transfer layer's larger blocks are cut here), each sent as a *chunk*: a 4-byte big-endian
//! header, whose top bit says whether the payload is zstd (else it is the block itself) and whose
//! other 31 bits are the payload's length, then the payload. A receiver refuses a chunk longer than
//! [`MAX_CHUNK`] and a payload that decompresses to more than [`BLOCK`] before decompressing it (a
//! zstd frame declares its size), so a hostile peer gets no more memory out of it than out of a
//! plain body. The trailer follows the last chunk, as after a plain body.
//!
//! # What is worth compressing
//! A block is sent compressed only if that saves at least a tenth of it. A file whose name says
//! it is compressed already (`.zip`, `.jpg`, `.mp4`...) is not tried at all, and a file whose
//! first [`SAMPLE`] blocks did not shrink is not tried further: incompressible data costs a
//! look at its first blocks and then nothing. Compression runs on the blocking pool, off the
//! thread that drives QUIC; decompression (many times faster) runs inline.
//!
//! [`Compressing`] and [`Decompressing`] are the two ends as the transfer layer's [`Sink`] and
//! [`Source`]; like [`crate::rate::Limited`] they pass the framed messages straight through.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transfer::{split_block, Block, Sink, Source, BLOCK};

/// zstd's level: 3 is zstd's own default, far faster than any network qft runs over (see
/// BENCHMARKS.md for what it bought on the wan).
pub const LEVEL: i32 = 3;

/// The largest chunk payload a receiver accepts: a block, or its compressed form, which zstd
/// bounds just above it.
pub const MAX_CHUNK: usize = BLOCK + BLOCK / 16;

/// Blocks tried before a file that does not shrink is sent as it is.
pub const SAMPLE: usize = 2;

/// The header bit of a compressed chunk.
const ZSTD: u32 = 1 << 31;

/// Names of files compressed already: not worth a try.
const COMPRESSED: &[&str] = &[
    "7z", "avif", "br", "bz2", "deb", "docx", "flac", "gif", "gz", "heic", "jar", "jpeg", "jpg",
    "lz", "lz4", "lzma", "m4a", "m4v", "mkv", "mov", "mp3", "mp4", "odt", "ogg", "opus", "pdf",
    "png", "pptx", "rar", "rpm", "tbz", "tgz", "txz", "webm", "webp", "whl", "xlsx", "xz", "zip",
    "zst",
];

/// Whether the file `name` is worth trying to compress, by what its name says it is.
pub fn worth_trying(name: &str) -> bool {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return true,
    };
    !COMPRESSED.contains(&ext.as_str())
}

/// The sending end: each block written becomes a chunk on `inner`.
#[derive(Debug)]
pub struct Compressing<'a, S> {
    /// The stream.
    pub inner: &'a mut S,
    /// Whether blocks are still worth trying.
    trying: bool,
    /// Blocks tried so far, and how many of them shrank.
    tried: usize,
    shrank: usize,
}

impl<'a, S> Compressing<'a, S> {
    /// Chunks for `inner`, for the file `name` (what it is decides whether to try at all).
    pub fn new(inner: &'a mut S, name: &str) -> Self {
        Compressing {
            inner,
            trying: worth_trying(name),
            tried: 0,
            shrank: 0,
        }
    }
}

/// `block` compressed, if that saves a tenth of it.
fn shrink(block: &Bytes) -> Option<Bytes> {
    let packed = zstd::bulk::compress(block, LEVEL).ok()?;
    (packed.len() < block.len() - block.len() / 10).then(|| Bytes::from(packed))
}

fn header(compressed: bool, len: usize) -> Bytes {
    let word = len as u32 | if compressed { ZSTD } else { 0 };
    Bytes::copy_from_slice(&word.to_be_bytes())
}

impl<S: Sink + Send> Sink for Compressing<'_, S> {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        // A chunk holds at most BLOCK bytes (the receiver checks): a larger block goes as several.
        for chunk in split_block(&block, BLOCK) {
            self.write_chunk(chunk).await?;
        }
        Ok(())
    }
}

impl<S: Sink + Send> Compressing<'_, S> {
    /// Sends `block` (at most [`BLOCK`] bytes) as one chunk, compressed if that pays.
    async fn write_chunk(&mut self, block: Block) -> io::Result<()> {
        let len: usize = block.iter().map(Bytes::len).sum();
        if len == 0 {
            return Ok(());
        }
        let packed = match self.trying {
            true => {
                let whole = match block.len() {
                    1 => block[0].clone(),
                    _ => {
                        let mut joined = BytesMut::with_capacity(len);
                        block.iter().for_each(|p| joined.extend_from_slice(p));
                        joined.freeze()
                    }
                };
                let packed = tokio::task::spawn_blocking(move || shrink(&whole))
                    .await
                    .map_err(io::Error::other)?;
                self.tried += 1;
                self.shrank += usize::from(packed.is_some());
                if self.tried == SAMPLE && self.shrank == 0 {
                    self.trying = false;
                }
                packed
            }
            false => None,
        };
        let chunk: Block = match packed {
            Some(payload) => Arc::from(vec![header(true, payload.len()), payload]),
            None => std::iter::once(header(false, len))
                .chain(block.iter().cloned())
                .collect(),
        };
        self.inner.write_block(chunk).await
    }
}

/// The receiving end: chunks read from `inner`, handed on as the file's own bytes.
#[derive(Debug)]
pub struct Decompressing<'a, S> {
    /// The stream.
    pub inner: &'a mut S,
    /// What the last chunk held and was not handed on yet.
    ready: VecDeque<Bytes>,
}

impl<'a, S> Decompressing<'a, S> {
    /// The file's bytes from the chunks on `inner`.
    pub fn new(inner: &'a mut S) -> Self {
        Decompressing {
            inner,
            ready: VecDeque::new(),
        }
    }
}

impl<S: Source + Send> Decompressing<'_, S> {
    /// Exactly `n` bytes of `inner` (fewer only at its end).
    async fn exactly(&mut self, n: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0;
        while got < n {
            let more = self.inner.read_block(n - got).await?;
            let len: usize = more.iter().map(Bytes::len).sum();
            if len == 0 {
                break;
            }
            got += len;
            pieces.extend(more);
        }
        if got < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the compressed body ended inside a chunk",
            ));
        }
        Ok(pieces)
    }

    /// Reads the next chunk into `ready`; `false` at the end of the stream.
    async fn next_chunk(&mut self) -> io::Result<bool> {
        let head = self.inner.read_block(4).await?;
        let head: Vec<u8> = head.iter().flat_map(|p| p.iter().copied()).collect();
        if head.is_empty() {
            return Ok(false);
        }
        let mut word = [0u8; 4];
        let rest = self.exactly(4 - head.len()).await?;
        let all: Vec<u8> = head
            .into_iter()
            .chain(rest.iter().flat_map(|p| p.iter().copied()))
            .collect();
        word.copy_from_slice(&all);
        let word = u32::from_be_bytes(word);
        let (compressed, len) = (word & ZSTD != 0, (word & !ZSTD) as usize);
        if len == 0 || len > MAX_CHUNK || (!compressed && len > BLOCK) {
            return Err(invalid(format!("a compressed body's chunk of {len} bytes")));
        }
        let payload = self.exactly(len).await?;
        if !compressed {
            self.ready.extend(payload);
            return Ok(true);
        }
        let packed: Vec<u8> = payload.iter().flat_map(|p| p.iter().copied()).collect();
        // A frame that says it holds more than a block is refused before it is unpacked.
        match zstd::zstd_safe::get_frame_content_size(&packed) {
            Ok(Some(size)) if size <= BLOCK as u64 => {}
            _ => return Err(invalid("a chunk that is no zstd frame of a block".into())),
        }
        let plain = zstd::bulk::decompress(&packed, BLOCK)
            .map_err(|e| invalid(format!("a chunk that does not decompress: {e}")))?;
        self.ready.push_back(Bytes::from(plain));
        Ok(true)
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the peer sent {what}"))
}

impl<S: Source + Send> Source for Decompressing<'_, S> {
    const READ_AHEAD: usize = S::READ_AHEAD;

    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut out = Vec::new();
        let mut got = 0;
        while got < max {
            if self.ready.is_empty() && !self.next_chunk().await? {
                break;
            }
            let Some(mut piece) = self.ready.pop_front() else {
                continue;
            };
            if piece.len() > max - got {
                self.ready.push_front(piece.split_off(max - got));
            }
            got += piece.len();
            out.push(piece);
        }
        Ok(out)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Decompressing<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Compressing<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::copy_hashed;
    use sha2::{Digest, Sha256};

    /// A body sent through `Compressing` into a pipe, and read back through `Decompressing`.
    async fn round_trip(name: &str, data: Vec<u8>) -> Vec<u8> {
        let (mut a, mut b) = tokio::io::duplex(64 << 20);
        let size = data.len() as u64;
        let mut src = crate::transfer::Reader(&data[..]);
        let hidden = indicatif::ProgressBar::hidden();
        let sent = {
            let mut z = Compressing::new(&mut a, name);
            copy_hashed(&mut src, &mut z, size, None, &hidden)
                .await
                .unwrap()
        };
        drop(a);
        let mut out = Vec::new();
        {
            let mut raw = crate::transfer::Reader(&mut b);
            let mut sink = crate::transfer::Writer(&mut out);
            let mut un = Decompressing::new(&mut raw);
            let got = copy_hashed(&mut un, &mut sink, size, None, &hidden)
                .await
                .unwrap();
            assert_eq!(got, sent, "the digest is the file's own bytes'");
        }
        assert_eq!(<Sha256 as Digest>::digest(&out).as_slice(), &sent);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_survive_compression_whole() {
        let text: Vec<u8> = (0..700_000u32)
            .flat_map(|i| format!("line {i} of a log\n").into_bytes())
            .take(3 << 20)
            .collect();
        assert_eq!(round_trip("app.log", text.clone()).await, text);
        let noise = crate::transfer::hex(&[1; 32]).into_bytes().repeat(1000);
        assert_eq!(round_trip("x.jpg", noise.clone()).await, noise);
        assert!(round_trip("empty", Vec::new()).await.is_empty());
    }

    proptest::proptest! {
        /// Whatever a peer sends as a compressed body, reading it never panics, never hands out
        /// more than was asked, and ends in bytes or an error.
        #[test]
        fn arbitrary_chunks_never_panic_the_reader(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut raw = crate::transfer::Reader(&bytes[..]);
                let mut un = Decompressing::new(&mut raw);
                for _ in 0..8 {
                    match un.read_block(BLOCK).await {
                        Ok(block) => {
                            let len: usize = block.iter().map(Bytes::len).sum();
                            assert!(len <= BLOCK);
                            if len == 0 {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            });
        }
    }

    #[test]
    fn a_chunk_that_claims_too_much_is_refused_before_it_is_read() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            // A header announcing 1 GiB: refused at once, nothing allocated for it.
            let mut wire = ((1u32 << 30) | ZSTD).to_be_bytes().to_vec();
            wire.extend_from_slice(b"tiny");
            let mut raw = crate::transfer::Reader(&wire[..]);
            let err = Decompressing::new(&mut raw)
                .read_block(BLOCK)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // A zstd frame of more than a block (a bomb): refused before unpacking.
            let bomb = zstd::bulk::compress(&vec![0u8; 4 * BLOCK], LEVEL).unwrap();
            let mut wire = ((bomb.len() as u32) | ZSTD).to_be_bytes().to_vec();
            wire.extend_from_slice(&bomb);
            let mut raw = crate::transfer::Reader(&wire[..]);
            let err = Decompressing::new(&mut raw)
                .read_block(BLOCK)
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("no zstd frame of a block"),
                "{err}"
            );
        });
    }

    #[test]
    fn what_is_compressed_already_is_not_tried() {
        assert!(!worth_trying("IMG_0001.JPG") && !worth_trying("a.tar.gz"));
        assert!(worth_trying("server.log") && worth_trying("Makefile"));
        let text = Bytes::from("abc".repeat(10_000));
        assert!(shrink(&text).is_some_and(|z| z.len() < 1000));
        let noise: Bytes = (0..100_000).map(|_| rand::random::<u8>()).collect();
        assert!(shrink(&noise).is_none(), "noise does not shrink by a tenth");
    }
}
