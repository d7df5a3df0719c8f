//! A test-only fault: a download stream whose byte at one offset is flipped on the way out,
//! after the server hashed it, as a bad network or a bad middlebox would. The page must refuse
//! what it receives ([`super::WebConfig::corrupt_downloads_at`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use crate::transfer::{Block, Sink};

/// Passes everything to `inner`, but the byte at stream offset `at`, which it flips.
pub(super) struct Corrupting<'a, W> {
    pub(super) inner: &'a mut W,
    pub(super) at: u64,
    pub(super) pos: u64,
}

impl<W> Corrupting<'_, W> {
    /// `piece` as it should go out, given that it starts at `self.pos`.
    fn spoil(&mut self, piece: &[u8]) -> Option<Bytes> {
        let start = self.pos;
        self.pos += piece.len() as u64;
        if !(start..self.pos).contains(&self.at) {
            return None;
        }
        let mut bad = BytesMut::from(piece);
        bad[(self.at - start) as usize] ^= 0x55;
        Some(bad.freeze())
    }
}

impl<W: Sink + Send> Sink for Corrupting<'_, W> {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let pieces: Vec<Bytes> = block
            .iter()
            .map(|p| self.spoil(p).unwrap_or_else(|| p.clone()))
            .collect();
        self.inner.write_block(Arc::from(pieces)).await
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Corrupting<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Frames are small; write them one byte at a time where the fault falls, so that the
        // offset count stays exact whatever the inner writer accepts.
        let start = self.pos;
        let hit = (start..start + buf.len() as u64).contains(&self.at);
        let buf = if hit { &buf[..1] } else { buf };
        let mut byte = [0u8; 1];
        let out: &[u8] = if hit && start == self.at {
            byte[0] = buf[0] ^ 0x55;
            &byte
        } else {
            buf
        };
        let written = std::task::ready!(Pin::new(&mut *self.inner).poll_write(cx, out))?;
        self.pos += written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
