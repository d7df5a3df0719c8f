//! One budget for the bytes a server serving S3 holds in flight: every upload's parts on their
//! way to the store and every download's ranges on their way from it draw on it. Per transfer
//! the writer and the reader are bounded already (48 MiB of parts, four 8 MiB ranges), but a
//! server runs up to `--max-transfers` of them at once (64), which alone would allow gigabytes;
//! with one budget, many transfers share it and the server's memory stays bounded whatever
//! their number: a transfer that finds it spent waits for another's request to finish.
//!
//! No deadlock: a request's share is taken before it starts and given back when it is done (a
//! part stored, a range handed out), and neither needs more of the budget to finish. A request
//! larger than the whole budget (a 5 GiB part of a huge file) takes all of it and runs alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget's default: six uploads' parts, or eight downloads' ranges, at full speed at once.
pub(super) const BUDGET: u64 = 256 << 20;

/// The budget is counted in units of this many bytes (a semaphore's permits are `u32` when taken
/// in bulk).
const UNIT: u64 = 64 << 10;

/// The shared budget.
#[derive(Debug, Clone)]
pub(super) struct Buffers {
    permits: Arc<Semaphore>,
    units: u32,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub(super) struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl Buffers {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: u64) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        Buffers {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Waits until `len` bytes fit, and holds them.
    pub async fn reserve(&self, len: u64) -> Held {
        let units = len.div_ceil(UNIT).clamp(1, u64::from(self.units)) as u32;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed");
        Held(permit)
    }

    /// Bytes of the budget not held now.
    #[cfg(test)]
    pub fn free(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new(BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn shares_wait_for_what_others_give_back_and_a_huge_one_runs_alone() {
        let buffers = Buffers::new(16 << 20);
        let a = buffers.reserve(8 << 20).await;
        let b = buffers.reserve(8 << 20).await;
        assert_eq!(buffers.free(), 0);
        // A third share waits until one of the first two is given back.
        let waiting = tokio::spawn({
            let buffers = buffers.clone();
            async move { buffers.reserve(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the budget is spent: it must wait");
        drop(a);
        let c = waiting.await.unwrap();
        assert_eq!(buffers.free(), (8 << 20) - UNIT);
        drop((b, c));
        // Larger than the whole budget: it takes all of it rather than waiting forever.
        let huge = buffers.reserve(5 << 30).await;
        assert_eq!(buffers.free(), 0);
        drop(huge);
        assert_eq!(buffers.free(), 16 << 20);
    }
}
