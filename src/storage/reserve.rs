//! Free space promised to uploads in progress ([`super::Storage::reserve`]): a [`Reservation`]
//! sets aside what an upload announced, and gives it back as the bytes are written through
//! [`Counted`] or when the upload ends.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::transfer::{Block, Sink};

/// Space set aside for one upload ([`Storage::reserve`](super::Storage::reserve)): what it announced and has not
/// written yet. Given back as it is written, and in full when dropped.
#[derive(Debug)]
pub struct Reservation {
    pub(super) held: Arc<Held>,
}

#[derive(Debug)]
pub(super) struct Held {
    /// Bytes still set aside.
    pub(super) left: AtomicU64,
    /// The storage's total of promises, which `left` is part of.
    pub(super) promised: Arc<AtomicU64>,
}

impl Held {
    /// Gives back up to `n` bytes of what is set aside.
    fn use_up(&self, n: u64) {
        let taken = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(n))
            })
            .map_or(0, |left| left.min(n));
        self.promised.fetch_sub(taken, Ordering::AcqRel);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let left = *self.left.get_mut();
        self.promised.fetch_sub(left, Ordering::AcqRel);
    }
}

impl Reservation {
    /// Bytes still set aside.
    pub fn left(&self) -> u64 {
        self.held.left.load(Ordering::Acquire)
    }

    /// Sets `n` more bytes aside, without asking: for space the same upload just freed (a
    /// resumed partial cut back to where the client continues).
    pub fn grow(&self, n: u64) {
        self.held.promised.fetch_add(n, Ordering::AcqRel);
        self.held.left.fetch_add(n, Ordering::AcqRel);
    }

    /// `sink`, with what is written through it counted against this reservation.
    pub fn counting<S: Sink>(&self, sink: S) -> Counted<S> {
        Counted {
            sink,
            held: self.held.clone(),
        }
    }
}

/// A sink whose writes use up a [`Reservation`].
#[derive(Debug)]
pub struct Counted<S> {
    sink: S,
    held: Arc<Held>,
}

impl<S: Sink + Send> Sink for Counted<S> {
    fn stall_unit(&self) -> usize {
        self.sink.stall_unit()
    }

    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        let len: usize = block.iter().map(Bytes::len).sum();
        self.sink.write_block(block).await?;
        self.held.use_up(len as u64);
        Ok(())
    }
}
