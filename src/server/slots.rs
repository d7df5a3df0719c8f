//! Transfer slots, shared fairly, and the resume hashing a client may cause.
//!
//! A file body moves only with a slot: that bounds the copy buffers held at once. Slots come in
//! two pools, so that a small file (under [`SMALL_FILE`], held whole in memory) never waits
//! behind large transfers that stalled; and within each pool one client holds at most
//! [`Limits::max_transfers_per_client`], waiting in its own queue for more, so that its stalled
//! or queued transfers cannot take every slot (256 uploads that sent nothing once made a 6-byte
//! `get` wait 236 s).
//!
//! Resuming makes the server hash what is held before the client says where it continues; a
//! client that claims to hold a whole file and then resumes at 0 (or never answers) had the
//! server hash it for nothing. What a client had hashed and did not use is charged to it
//! ([`Limits::resume_hash_allowance`], refilled over a minute); past its allowance it gets
//! fewer pieces hashed, never a refusal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use super::Limits;
use crate::protocol::SMALL_FILE;
use crate::tls::Fingerprint;

/// Who a client is, for its fair share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Who {
    /// Its key, where an authorized-clients list vets keys.
    Key([u8; 32]),
    /// Its address, where anyone may connect (and make as many keys as it likes).
    Addr(IpAddr),
}

/// Every transfer slot of the server, and what each client owes for resume hashing.
#[derive(Debug)]
pub(crate) struct Slots {
    large: Pool,
    /// Slots in each pool.
    total: usize,
    small: Pool,
    per_client: usize,
    allowance: u64,
    hashed: Mutex<HashMap<Who, Debt>>,
    /// Whether a list of authorized clients vets keys: then a client is its key.
    keyed: bool,
}

#[derive(Debug)]
struct Pool {
    all: Semaphore,
    /// Each client's own share, while it holds or waits for a slot.
    clients: Mutex<HashMap<Who, Arc<Semaphore>>>,
}

/// A slot: a file body may move while it is held.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    pool: &'a Pool,
    who: Who,
    own: Option<OwnedSemaphorePermit>,
    _all: SemaphorePermit<'a>,
}

impl Slots {
    /// Slots within `limits`; `keyed` where an authorized-clients list vets keys.
    pub(crate) fn new(limits: &Limits, keyed: bool) -> Self {
        let pool = || Pool {
            all: Semaphore::new(limits.max_transfers.max(1)),
            clients: Mutex::default(),
        };
        Slots {
            large: pool(),
            total: limits.max_transfers.max(1),
            small: pool(),
            per_client: limits.max_transfers_per_client.max(1),
            allowance: limits.resume_hash_allowance,
            hashed: Mutex::default(),
            keyed,
        }
    }

    /// Who the client with `key` at `ip` is, for its fair share.
    pub(crate) fn who(&self, key: Option<Fingerprint>, ip: IpAddr) -> Who {
        match key {
            Some(key) if self.keyed => Who::Key(key.0),
            _ => Who::Addr(ip),
        }
    }

    /// Waits for a slot to move a body of `size` bytes for `who`: first in the client's own
    /// queue, then in the server's.
    pub(crate) async fn acquire(&self, who: Who, size: u64) -> Result<Slot<'_>, AcquireError> {
        let pool = if size < SMALL_FILE {
            &self.small
        } else {
            &self.large
        };
        let share = pool
            .lock()
            .entry(who)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_client)))
            .clone();
        let own = share.acquire_owned().await?;
        let all = pool.all.acquire().await?;
        Ok(Slot {
            pool,
            who,
            own: Some(own),
            _all: all,
        })
    }

    /// Large transfers moving now (their slots held).
    pub(crate) fn large_running(&self) -> usize {
        self.total - self.large.all.available_permits()
    }

    /// What `who` may have hashed now of the `held` bytes a resume would hash.
    pub(crate) fn hashing(&self, who: Who, held: u64) -> Hashing<'_> {
        let owed = self.debts().get(&who).map_or(0, |d| d.now(self.allowance));
        let bytes = held.min(self.allowance.saturating_sub(owed));
        Hashing {
            slots: self,
            who,
            bytes,
            settled: false,
        }
    }

    fn debts(&self) -> std::sync::MutexGuard<'_, HashMap<Who, Debt>> {
        self.hashed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Who, Arc<Semaphore>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut clients = self.pool.lock();
        drop(self.own.take());
        // Forget a client's share once nobody holds or waits for it.
        if clients
            .get(&self.who)
            .is_some_and(|share| Arc::strong_count(share) == 1)
        {
            clients.remove(&self.who);
        }
    }
}

/// Resume hashing allowed to a client: `bytes` may be hashed. What the client does not use is
/// charged to it when it says where it resumes ([`Hashing::used`]), or all of it if it never
/// does.
#[derive(Debug)]
pub(crate) struct Hashing<'a> {
    slots: &'a Slots,
    who: Who,
    /// Bytes the client may have hashed now.
    pub(crate) bytes: u64,
    settled: bool,
}

impl Hashing<'_> {
    /// The client resumes at `from`: the hashing up to there was of use, the rest is charged.
    pub(crate) fn used(mut self, from: u64) {
        self.charge(self.bytes - from.min(self.bytes));
        self.settled = true;
    }

    fn charge(&self, wasted: u64) {
        if wasted == 0 {
            return;
        }
        let allowance = self.slots.allowance;
        let mut debts = self.slots.debts();
        let debt = debts.entry(self.who).or_insert(Debt {
            bytes: 0,
            at: Instant::now(),
        });
        debt.bytes = debt.now(allowance).saturating_add(wasted);
        debt.at = Instant::now();
        if debts.len() > 1024 {
            debts.retain(|_, d| d.now(allowance) > 0);
        }
    }
}

impl Drop for Hashing<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.charge(self.bytes);
        }
    }
}

/// Hashing a client had and did not use, paid back at its allowance per minute.
#[derive(Debug)]
struct Debt {
    bytes: u64,
    at: Instant,
}

impl Debt {
    /// What is still owed.
    fn now(&self, allowance: u64) -> u64 {
        let repaid = (allowance as u128 * self.at.elapsed().as_millis()
            / Duration::from_secs(60).as_millis())
        .min(u64::MAX as u128) as u64;
        self.bytes.saturating_sub(repaid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_transfers: 3,
            max_transfers_per_client: 2,
            resume_hash_allowance: 100 << 20,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn one_client_holds_at_most_its_share_and_small_ones_have_their_own_pool() {
        let slots = Slots::new(&limits(), false);
        let (a, b) = (
            Who::Addr("10.0.0.1".parse().unwrap()),
            Who::Addr("10.0.0.2".parse().unwrap()),
        );
        let big = SMALL_FILE;
        let _a1 = slots.acquire(a, big).await.unwrap();
        let _a2 = slots.acquire(a, big).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.acquire(a, big));
        assert!(waiting.await.is_err(), "a third waits for its own share");
        // Another client still gets the last one, and small transfers are never behind.
        let _b1 = tokio::time::timeout(Duration::from_secs(5), slots.acquire(b, big))
            .await
            .unwrap()
            .unwrap();
        let _a_small = tokio::time::timeout(Duration::from_secs(5), slots.acquire(a, 6))
            .await
            .unwrap()
            .unwrap();
        drop((_a1, _a2));
        assert!(
            !slots.large.lock().contains_key(&a),
            "a client's share is forgotten once it holds and waits for nothing"
        );
    }

    #[test]
    fn hashing_not_used_is_charged_and_an_honest_resume_costs_nothing() {
        let slots = Slots::new(&limits(), false);
        let who = Who::Addr("10.0.0.1".parse().unwrap());
        let honest = slots.hashing(who, 80 << 20);
        assert_eq!(honest.bytes, 80 << 20);
        honest.used(80 << 20);
        let wasted = slots.hashing(who, 80 << 20);
        assert_eq!(
            wasted.bytes,
            80 << 20,
            "nothing charged for an honest resume"
        );
        drop(wasted);
        let next = slots.hashing(who, 80 << 20);
        assert!(
            next.bytes <= 21 << 20,
            "{} after wasting 80 MiB",
            next.bytes
        );
        let other = slots.hashing(Who::Addr("10.0.0.2".parse().unwrap()), 80 << 20);
        assert_eq!(other.bytes, 80 << 20, "others are not charged");
    }
}
