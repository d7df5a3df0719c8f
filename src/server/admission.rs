//! Admission: the bookkeeping that enforces the connection limits of [`Limits`].
//!
//! A connection passes two gates. While its handshake runs it holds only a place among the
//! handshakes in progress ([`Handshakes`]): few of those are allowed from unproven addresses
//! before every new client must prove its address with a QUIC Retry, and past
//! [`Startups::start`] new ones are dropped at random, as sshd's MaxStartups does (a dropped
//! Initial is simply resent by an honest client a moment later). Only a connection whose
//! handshake finished and whose client is admitted takes a connection slot ([`Connections`]);
//! a server over those limits closes it with [`crate::protocol::close::BUSY`] and a hint of when to try again
//! ([`crate::protocol::close::busy`]), which qft clients follow by themselves.
//!
//! [`Startups::start`]: super::Startups::start

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::limits::Limits;

/// What to do with a new connection attempt, before any handshake work.
#[derive(Debug)]
pub enum Verdict {
    /// Run the handshake; the place is given back when the [`Handshake`] is dropped.
    Proceed(Handshake),
    /// Ask the client to prove its address first (a stateless QUIC Retry).
    Retry,
    /// Drop the attempt without a word: an honest client resends its Initial shortly.
    Drop,
}

/// Counts handshakes in progress: in total, from unproven addresses, and per proven address.
#[derive(Debug, Clone, Default)]
pub struct Handshakes {
    inner: Arc<Mutex<Pending>>,
}

#[derive(Debug, Default)]
struct Pending {
    total: usize,
    unproven: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A handshake's place among those in progress; given back when dropped.
#[derive(Debug)]
pub struct Handshake {
    inner: Arc<Mutex<Pending>>,
    /// The address, if it was proven (only proven ones are counted per address).
    proven: Option<IpAddr>,
}

impl Handshakes {
    /// Decides on an attempt from `ip`, whose address is `proven` (by a Retry token) or not;
    /// `roll` is a random number below 100 for the early drop.
    pub fn consider(&self, ip: IpAddr, proven: bool, limits: &Limits, roll: u8) -> Verdict {
        let mut p = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !proven && (limits.retry || p.unproven >= limits.retry_above) {
            return Verdict::Retry;
        }
        if limits.startups.drops(p.total, roll) {
            return Verdict::Drop;
        }
        if proven {
            let from_ip = p.per_ip.entry(ip).or_insert(0);
            if *from_ip >= limits.max_startups_per_ip {
                return Verdict::Drop;
            }
            *from_ip += 1;
        } else {
            p.unproven += 1;
        }
        p.total += 1;
        Verdict::Proceed(Handshake {
            inner: self.inner.clone(),
            proven: proven.then_some(ip),
        })
    }

    /// Handshakes in progress now.
    pub fn in_progress(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut p = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        p.total = p.total.saturating_sub(1);
        match self.proven {
            Some(ip) => {
                if let Some(n) = p.per_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        p.per_ip.remove(&ip);
                    }
                }
            }
            None => p.unproven = p.unproven.saturating_sub(1),
        }
    }
}

/// How long a client refused for being over a connection limit is told to wait before it tries
/// again (it waits longer on each refusal in a row).
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts admitted connections, in total and per IP address.
///
/// It also shares the send buffers out: every established connection gets an equal part of
/// `send_buffers`, up to its own send window. A download fills its connection's send buffer
/// as fast as the disk reads, so without a shared budget 16 downloads held 16 full windows
/// (185 MB of server memory, measured).
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Established connections, by quinn's stable id, for sharing out the send buffers.
    live: HashMap<usize, quinn::Connection>,
    send_buffers: u64,
    max_send_window: u64,
}

/// The smallest send window a connection is given, however many share the budget.
const MIN_SEND_WINDOW: u64 = 1 << 20;

impl Counts {
    /// Gives every live connection its equal share of the send buffers.
    fn share(&self) {
        let n = self.live.len().max(1) as u64;
        let most = self.max_send_window.max(MIN_SEND_WINDOW);
        let each = (self.send_buffers / n).clamp(MIN_SEND_WINDOW, most);
        for conn in self.live.values() {
            conn.set_send_window(crate::tuning::path_window(each, conn.rtt()));
        }
    }
}

/// A live connection's place in the counts; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    inner: Arc<Mutex<Counts>>,
    ip: IpAddr,
    /// Set once the handshake is done and the connection shares the send buffers.
    id: Option<usize>,
}

impl Slot {
    /// Counts `conn` among those sharing the send buffers, until this slot is dropped.
    pub fn attach(&mut self, conn: &quinn::Connection) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.live.insert(conn.stable_id(), conn.clone());
        self.id = Some(conn.stable_id());
        counts.share();
    }
}

impl Connections {
    /// No connections yet; `send_buffers` bytes to share among them, at most
    /// `max_send_window` each.
    pub fn new(send_buffers: u64, max_send_window: u64) -> Self {
        Connections {
            inner: Arc::new(Mutex::new(Counts {
                total: 0,
                per_ip: HashMap::new(),
                live: HashMap::new(),
                send_buffers,
                max_send_window,
            })),
        }
    }

    /// Takes a slot for a connection from `ip` whose handshake finished and whose client is
    /// admitted, or says which limit is reached (the reason [`crate::protocol::close::busy`] sends).
    pub fn admit(&self, ip: IpAddr, limits: &Limits) -> Result<Slot, String> {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= limits.max_connections {
            return Err(format!(
                "the server is at its limit of {} connections",
                limits.max_connections
            ));
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.max_connections_per_ip {
            return Err(format!(
                "too many connections from {ip} (the limit is {})",
                limits.max_connections_per_ip
            ));
        }
        counts.total += 1;
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            inner: self.inner.clone(),
            ip,
            id: None,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
        if let Some(id) = self.id {
            counts.live.remove(&id);
            counts.share();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_in_total_and_per_ip_and_given_back() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let c = Connections::new(limits.send_buffers, 8 << 20);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = c.admit(a, &limits).unwrap();
        let _a2 = c.admit(a, &limits).unwrap();
        assert!(c
            .admit(a, &limits)
            .unwrap_err()
            .contains("too many connections from 10.0.0.1"));
        let _b1 = c.admit(b, &limits).unwrap();
        assert!(c
            .admit(b, &limits)
            .unwrap_err()
            .contains("limit of 3 connections"));
        drop(a1);
        assert!(c.admit(b, &limits).is_ok(), "a freed slot is reusable");
    }

    #[test]
    fn unproven_handshakes_beyond_a_few_must_retry_and_proven_ones_are_capped_per_address() {
        let limits = Limits {
            retry_above: 2,
            max_startups_per_ip: 3,
            startups: "100:30:200".parse().unwrap(),
            ..Limits::default()
        };
        let h = Handshakes::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let proceed = |v: Verdict| match v {
            Verdict::Proceed(place) => place,
            other => panic!("expected to proceed, got {other:?}"),
        };
        let a = proceed(h.consider(ip, false, &limits, 99));
        let _b = proceed(h.consider(ip, false, &limits, 99));
        assert!(matches!(
            h.consider(other, false, &limits, 99),
            Verdict::Retry
        ));
        // Proven addresses are not asked again; each may have three in progress.
        let proven: Vec<_> = (0..3)
            .map(|_| proceed(h.consider(ip, true, &limits, 99)))
            .collect();
        assert!(matches!(h.consider(ip, true, &limits, 99), Verdict::Drop));
        let _c = proceed(h.consider(other, true, &limits, 99));
        assert_eq!(h.in_progress(), 6);
        // Places are given back: an unproven one ends, so the next unproven one may start.
        drop(a);
        let _d = proceed(h.consider(other, false, &limits, 99));
        drop(proven);
        let _e = proceed(h.consider(ip, true, &limits, 99));
        assert_eq!(h.in_progress(), 4);
        // Always-retry mode asks every unproven client.
        let always = Limits {
            retry: true,
            ..limits
        };
        assert!(matches!(
            Handshakes::default().consider(ip, false, &always, 99),
            Verdict::Retry
        ));
    }
}
