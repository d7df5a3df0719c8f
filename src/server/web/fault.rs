//! A test-only fault: a browser's stream whose byte at one offset is flipped on the way out,
//! after the server hashed it, as a bad network or a bad middlebox would. The page must refuse
//! what it receives ([`super::WebConfig::corrupt_downloads_at`]). Without the fault (`at` is
//! `None`) everything passes through untouched.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use crate::server::dispatch::SendEnd;
use crate::transfer::{Block, Sink};

/// Passes everything to `inner`, but the byte at stream offset `at`, which it flips.
pub(super) struct Corrupting<W> {
    pub(super) inner: W,
    pub(super) at: Option<u64>,
    pub(super) pos: u64,
}

impl<W> Corrupting<W> {
    /// `inner`, spoiled at `at` if that is set.
    pub(super) fn new(inner: W, at: Option<u64>) -> Self {
        Corrupting { inner, at, pos: 0 }
    }

    /// `piece` as it should go out, given that it starts at `self.pos`.
    fn spoil(&mut self, piece: &[u8]) -> Option<Bytes> {
        let start = self.pos;
        self.pos += piece.len() as u64;
        let at = self.at.filter(|at| (start..self.pos).contains(at))?;
        let mut bad = BytesMut::from(piece);
        bad[(at - start) as usize] ^= 0x55;
        Some(bad.freeze())
    }
}

impl<W: Sink + Send> Sink for Corrupting<W> {
    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        if self.at.is_none() {
            return self.inner.write_block(block).await;
        }
        let pieces: Vec<Bytes> = block
            .iter()
            .map(|p| self.spoil(p).unwrap_or_else(|| p.clone()))
            .collect();
        self.inner.write_block(Arc::from(pieces)).await
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Corrupting<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Frames are small; write them one byte at a time where the fault falls, so that the
        // offset count stays exact whatever the inner writer accepts.
        let start = self.pos;
        let hit = self
            .at
            .is_some_and(|at| (start..start + buf.len() as u64).contains(&at));
        let buf = if hit { &buf[..1] } else { buf };
        let mut byte = [0u8; 1];
        let out: &[u8] = if hit && Some(start) == self.at {
            byte[0] = buf[0] ^ 0x55;
            &byte
        } else {
            buf
        };
        let written = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, out))?;
        self.pos += written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<W: SendEnd> SendEnd for Corrupting<W> {
    fn end(&mut self) {
        self.inner.end();
    }

    fn abandon(&mut self, code: u32) {
        self.inner.abandon(code);
    }

    fn delivered(&mut self) -> impl Future<Output = ()> + Send {
        self.inner.delivered()
    }
}
