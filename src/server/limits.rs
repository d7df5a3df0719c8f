//! The server's limits, and the bookkeeping that enforces the connection limits.
//!
//! Worst-case memory is bounded by: `max_connections` × `receive_window` of QUIC receive
//! buffers (filled only while the server is not reading, e.g. a stalled disk), plus
//! `send_buffers` shared by all downloads, plus three [`crate::transfer::BLOCK`]s per running
//! large transfer (at most `max_transfers`) and a small file's body per running small one (at
//! most `max_transfers` of them too, each under [`crate::protocol::SMALL_FILE`]). With the
//! defaults that is 128 × 16 MiB + 24 MiB + 64 × 768 KiB + 64 × 1 MiB; a single client can hold
//! at most `max_connections_per_ip` × `receive_window` of the first part, and
//! `max_transfers_per_client` of each kind of transfer slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every limit a server enforces; [`Limits::default`] holds the defaults the CLI shows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections at once, all clients together.
    pub max_connections: usize,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Commands (streams) at once on one connection; more wait in QUIC flow control.
    pub max_streams: u32,
    /// A connection with no traffic at all for this long is closed.
    pub idle_timeout: Duration,
    /// A new stream must deliver its request within this.
    pub request_timeout: Duration,
    /// Each block of a transfer ([`crate::transfer::BLOCK`], 256 KiB) must move within this,
    /// whichever side is slow; stops a peer that trickles bytes or never reads from holding a
    /// transfer forever.
    pub stall_timeout: Duration,
    /// Largest frame accepted from a client (within each message type's own limit).
    pub max_frame: usize,
    /// Largest upload accepted; `None` for no limit.
    pub max_upload: Option<u64>,
    /// Free space an upload must leave on the server's disk.
    pub min_free: u64,
    /// File bodies moving at once, server-wide; each holds a copy buffer.
    pub max_transfers: usize,
    /// Bytes a client may have in flight on one connection (QUIC receive window).
    pub receive_window: u64,
    /// Send buffers of all connections together: each gets an equal share, up to its send
    /// window. Bounds what downloads hold in memory. 24 MiB: 16 clients downloading over the
    /// lossy wan peaked at 100 MiB with 32, at 64-79 MiB with 24, at the same 57 MB/s; one
    /// client still gets its whole 16 MiB window.
    pub send_buffers: u64,
    /// Partial uploads left untouched this long are deleted.
    pub partial_ttl: Duration,
    /// Require address validation (a QUIC Retry round trip) before any handshake work, against
    /// floods from spoofed addresses: for internet-facing servers.
    pub retry: bool,
    /// Transfer slots one client may hold at once, of each kind (large, small): one client's
    /// stalled transfers cannot take every slot. A client is its key on a server with an
    /// authorized-clients list, its address otherwise (anyone can make keys).
    pub max_transfers_per_client: usize,
    /// Unfinished resumable uploads kept for one client; past this its uploads go plain
    /// (and leave nothing behind if they break).
    pub max_partials_per_client: usize,
    /// Unfinished resumable uploads kept for all clients together.
    pub max_partials: usize,
    /// Bytes a client may have the server hash for resuming and then not use (it resumes
    /// before them, or not at all), refilled over a minute. Past it, the server hashes less
    /// and the client resends more; an honest resume uses what was hashed and costs nothing.
    pub resume_hash_allowance: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 128,
            max_connections_per_ip: 16,
            max_streams: 32,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(60),
            max_frame: 64 * 1024,
            max_upload: None,
            min_free: 64 * 1024 * 1024,
            max_transfers: 64,
            receive_window: 16 << 20,
            send_buffers: 24 << 20,
            retry: false,
            partial_ttl: Duration::from_secs(24 * 3600),
            max_transfers_per_client: 16,
            max_partials_per_client: 64,
            max_partials: 1024,
            resume_hash_allowance: 4 << 30,
        }
    }
}

impl Limits {
    /// How long to wait for a client's resume point: it must first hash, piece by piece, the
    /// `held` bytes it may keep, so the request deadline grows by a second per 50 MiB (a slow
    /// disk's pace). A fixed deadline would make every resume of a big file fail.
    pub fn resume_timeout(&self, held: u64) -> Duration {
        self.request_timeout + Duration::from_secs(held / (50 << 20))
    }

    /// How many partials the storage keeps.
    pub fn partials(&self) -> crate::storage::PartialLimits {
        crate::storage::PartialLimits {
            per_client: self.max_partials_per_client,
            total: self.max_partials,
        }
    }

    /// The QUIC transport settings these limits imply.
    pub fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        // Every command is a bidirectional stream; unidirectional ones have no use here.
        t.max_concurrent_uni_streams(0u8.into());
        t.max_concurrent_bidi_streams(self.max_streams.into());
        t.max_idle_timeout(self.idle_timeout.try_into().ok());
        t.receive_window(
            quinn::VarInt::from_u64(self.receive_window).unwrap_or(quinn::VarInt::MAX),
        );
        t
    }
}

/// Counts live connections, in total and per IP address.
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
            conn.set_send_window(each);
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

    /// Takes a slot for a connection from `ip`, or says which limit is reached.
    pub fn admit(&self, ip: IpAddr, limits: &Limits) -> Result<Slot, String> {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= limits.max_connections {
            return Err(format!(
                "the server is at its limit of {} connections; try again later",
                limits.max_connections
            ));
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.max_connections_per_ip {
            return Err(format!(
                "too many connections from {ip} (the limit is {}); close one and try again",
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
}
