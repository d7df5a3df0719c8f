//! Bandwidth limits (`qft connect --bwlimit`, `qft serve --bwlimit` and
//! `--bwlimit-per-connection`), as rsync's and rclone's `--bwlimit`: file bodies move at most at
//! a rate, whatever the network could do.
//!
//! A [`Limiter`] is a token bucket kept as a single time (GCRA): each block of a body is due when
//! the bytes before it have had their time at the rate, and waits until then, less a small
//! [`BURST`] so that the pacing is not jerky. Over a transfer of `t` seconds the rate can be
//! exceeded by at most one burst and one block: 0.3% over 30 s at 10 MiB/s. Clones share one bucket: every transfer of a
//! client, or of a connection, or of the whole server, draws from the same one, so a limit holds
//! for all of them together. Limits stack: a block on a limited connection of a limited server
//! waits for both.
//!
//! [`Limited`] puts limits on a stream's body blocks (the transfer layer's [`Source`] and
//! [`Sink`]) and passes everything else (the framed messages, a few bytes each) straight
//! through, so a handler sees the same stream, only slower. Pacing the reader of a download is
//! enough: QUIC's flow control then slows the sender.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transfer::{Block, Sink, Source};

/// How far ahead of its schedule a transfer may run: a short burst, so that blocks need not
/// wait one by one, and small enough that no second ever sees much more than the rate.
pub const BURST: Duration = Duration::from_millis(50);

/// A shared rate: clones draw from one bucket.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
    /// Counts the bytes taken, for a server's metrics (`qft_bwlimited_bytes_total`): what
    /// shows that a limit is applied to a kind of transfer, without timing anything.
    counter: Option<prometheus_client::metrics::counter::Counter>,
}

#[derive(Debug)]
struct Inner {
    /// Bytes per second.
    rate: u64,
    /// When the bytes taken so far are due: the next block may start at this less [`BURST`].
    due: Mutex<Instant>,
}

impl Limiter {
    /// A limit of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        Limiter {
            inner: Arc::new(Inner {
                rate: bytes_per_second.max(1),
                due: Mutex::new(Instant::now()),
            }),
            counter: None,
        }
    }

    /// This limit, counting the bytes it takes on `counter`.
    pub fn counted(self, counter: prometheus_client::metrics::counter::Counter) -> Self {
        Limiter {
            counter: Some(counter),
            ..self
        }
    }

    /// The rate, in bytes per second.
    pub fn rate(&self) -> u64 {
        self.inner.rate
    }

    /// Takes `n` bytes from the bucket, waiting until they are due.
    pub async fn take(&self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(counter) = &self.counter {
            counter.inc_by(n as u64);
        }
        let start = {
            let mut due = self.inner.due.lock().unwrap_or_else(|p| p.into_inner());
            // Idle time is not saved up: after a pause the schedule starts again from now.
            let at = (*due).max(Instant::now());
            *due = at + Duration::from_secs_f64(n as f64 / self.inner.rate as f64);
            // This block may go once the bytes before it are due, less the burst.
            at.checked_sub(BURST).unwrap_or(at)
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Takes `n` bytes from each limit of `limits`.
pub async fn take_all(limits: &[Limiter], n: usize) {
    for limit in limits {
        limit.take(n).await;
    }
}

/// A stream whose body blocks go at most at the rates of its limits (none: unlimited).
#[derive(Debug)]
pub struct Limited<'a, S> {
    /// The stream.
    pub inner: &'a mut S,
    limits: &'a [Limiter],
}

impl<'a, S> Limited<'a, S> {
    /// `inner`, its body blocks paced by every one of `limits`.
    pub fn new(inner: &'a mut S, limits: &'a [Limiter]) -> Self {
        Limited { inner, limits }
    }
}

impl<S: Source + Send> Source for Limited<'_, S> {
    // As far ahead as the stream itself: a QUIC stream's receive queue stays what it was.
    const READ_AHEAD: usize = S::READ_AHEAD;

    fn hand_off(&self) -> usize {
        self.inner.hand_off()
    }

    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        // The block is read, then paid for: the next read waits. A reader that waits leaves
        // the sender's flow-control window full, which holds the sender back.
        let block = self.inner.read_block(max).await?;
        let len = block.iter().map(Bytes::len).sum();
        take_all(self.limits, len).await;
        Ok(block)
    }

    async fn read_ready(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let block = self.inner.read_ready(max).await?;
        let len = block.iter().map(Bytes::len).sum();
        take_all(self.limits, len).await;
        Ok(block)
    }
}

impl<S: Sink + Send> Sink for Limited<'_, S> {
    fn stall_unit(&self) -> usize {
        self.inner.stall_unit()
    }

    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let len = block.iter().map(Bytes::len).sum();
        take_all(self.limits, len).await;
        self.inner.write_block(block).await
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<'_, S> {
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

/// The lowest rate a limit takes: below it a single block (256 KiB) would take longer than the
/// stall timeout (60 s) allows either side to wait.
pub const MIN_RATE: u64 = 16 << 10;

/// Parses a `--bwlimit` value: a rate of at least [`MIN_RATE`].
pub fn parse_limit(text: &str) -> Result<u64, String> {
    match parse_rate(text)? {
        None => Err("a bandwidth limit must be above 0 (leave the option out for none)".into()),
        Some(rate) if rate < MIN_RATE => Err(format!(
            "'{text}' is below the lowest limit, 16K (a 256 KiB block would take over the stall \
             timeout)"
        )),
        Some(rate) => Ok(rate),
    }
}

/// Parses a rate as `--bwlimit` takes it: bytes per second, or with a K, M or G suffix (powers
/// of 1024: `10M` is 10 MiB/s); `0` means no limit.
pub fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let bad =
        || format!("'{text}' is not a rate (e.g. 500K, 10M, 1G bytes per second; 0 for none)");
    let t = text.trim().trim_end_matches("/s");
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: f64 = digits.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    let rate = (n * (1u64 << shift) as f64).round() as u64;
    Ok((rate > 0).then_some(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_people_write_them() {
        assert_eq!(parse_rate("10M").unwrap(), Some(10 << 20));
        assert_eq!(parse_rate("1.5M").unwrap(), Some(3 << 19));
        assert_eq!(parse_rate("500k").unwrap(), Some(500 << 10));
        assert_eq!(parse_rate("4096").unwrap(), Some(4096));
        assert_eq!(parse_rate("2G/s").unwrap(), Some(2 << 30));
        assert_eq!(parse_rate("0").unwrap(), None);
        for bad in ["", "fast", "10X", "-1M", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn blocks_wait_their_turn_at_the_rate() {
        // Paused time: the waits are computed, not slept, so this checks the schedule only.
        let limit = Limiter::new(1 << 20);
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            limit.take(256 << 10).await;
        }
        // 2.5 MiB at 1 MiB/s: the last block may start after 2.25 s, less the burst.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2150), "{took:?}");
        assert!(took <= Duration::from_millis(2300), "{took:?}");
    }
}
