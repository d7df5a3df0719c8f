//! The server's limits: every number a server enforces, with the defaults the CLI shows, and
//! the sshd-style [`Startups`] setting. [`super::admission`] does the bookkeeping that enforces
//! the connection limits.
//!
//! Worst-case memory is bounded by: `max_connections` × `receive_window` of QUIC receive
//! buffers (filled only while the server is not reading, e.g. a stalled disk), plus
//! `send_buffers` shared by all downloads, plus up to 1 MiB per running large transfer (at most
//! `max_transfers`: three [`crate::transfer::BLOCK`]s of a download, or the aligned buffer of an
//! upload written directly to disk), 4 MiB more for each of the first four downloads at once
//! (they hand on [`crate::transfer::LARGE_BLOCK`]s), and a small file's body per running small
//! one (at most `max_transfers` of them too, each under [`crate::protocol::SMALL_FILE`]; a
//! bundle of small uploads is one of them, its bodies together under that too). With the
//! defaults that is 128 × 24 MiB + 24 MiB + 64 × 1 MiB + 4 × 4 MiB + 64 × 1 MiB; a single
//! client can hold at most `max_connections_per_ip` × `receive_window` of the first part, and
//! `max_transfers_per_client` of each kind of transfer slot.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Every limit a server enforces; [`Limits::default`] holds the defaults the CLI shows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections at once, all clients together.
    pub max_connections: usize,
    /// Admitted connections at once from one IP address. Generous: an office behind one NAT
    /// address is many honest clients; handshakes in progress are bounded apart from this.
    pub max_connections_per_ip: usize,
    /// Handshakes in progress at once, and how new ones are dropped at random before that.
    pub startups: Startups,
    /// Handshakes in progress at once from one proven address (a spoofed address cannot be
    /// counted against itself, so unproven ones are bounded by `retry_above` instead).
    pub max_startups_per_ip: usize,
    /// A handshake not finished within this is dropped, and its place given back.
    pub handshake_timeout: Duration,
    /// Handshakes from unproven addresses in progress at once; past this every new client
    /// must first prove its address with a QUIC Retry (one round trip, no state kept here).
    pub retry_above: usize,
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
    /// Bytes a client may have in flight on one connection (QUIC receive window): at least a
    /// transfer's stream window ([`crate::tuning::Tuning::stream_window`]), or a single
    /// upload would be held to less.
    pub receive_window: u64,
    /// Send buffers of all connections together: each gets an equal share, up to its send
    /// window. Bounds what downloads hold in memory. 24 MiB: 16 clients downloading over the
    /// lossy wan peaked at 100 MiB with 32, at 64-79 MiB with 24, at the same 57 MB/s; one
    /// client still gets its whole 16 MiB window.
    pub send_buffers: u64,
    /// Partial uploads left untouched this long are deleted.
    pub partial_ttl: Duration,
    /// Always require address validation (a QUIC Retry round trip) before any handshake work,
    /// not only once unproven handshakes pile up (`retry_above`).
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
    /// File body bytes per second all connections together may move (`--bwlimit`); `None`: no
    /// limit. Browser sessions (`--web`) are not counted.
    pub bwlimit: Option<u64>,
    /// File body bytes per second one connection may move (`--bwlimit-per-connection`).
    pub bwlimit_per_connection: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 128,
            max_connections_per_ip: 64,
            startups: Startups::default(),
            max_startups_per_ip: 16,
            handshake_timeout: Duration::from_secs(10),
            retry_above: 8,
            max_streams: 32,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(60),
            max_frame: 64 * 1024,
            max_upload: None,
            min_free: 64 * 1024 * 1024,
            max_transfers: 64,
            receive_window: crate::tuning::CONNECTION_WINDOW,
            send_buffers: 24 << 20,
            retry: false,
            partial_ttl: Duration::from_secs(24 * 3600),
            max_transfers_per_client: 16,
            max_partials_per_client: 64,
            max_partials: 1024,
            resume_hash_allowance: 4 << 30,
            bwlimit: None,
            bwlimit_per_connection: None,
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

    /// The QUIC transport settings these limits imply, with `tuning`'s on top. The connection's
    /// receive window is at least `tuning`'s stream window: `serve --window 48M` would otherwise
    /// be held to [`Limits::receive_window`] without a word.
    pub fn transport_with(&self, tuning: &crate::tuning::Tuning) -> quinn::TransportConfig {
        let mut t = self.transport();
        tuning.apply(&mut t);
        let window = self.connection_window(tuning);
        t.receive_window(quinn::VarInt::from_u64(window).unwrap_or(quinn::VarInt::MAX));
        t
    }

    /// A connection's receive window with `tuning`: at least one stream's window.
    pub fn connection_window(&self, tuning: &crate::tuning::Tuning) -> u64 {
        self.receive_window.max(tuning.stream_window)
    }

    /// The QUIC transport settings these limits imply by themselves.
    fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        // Every command is a bidirectional stream; unidirectional ones have no use here.
        t.max_concurrent_uni_streams(0u8.into());
        // None until the connection is admitted (then `max_streams`): a client's first stream
        // opens only once the server will serve it, and a refused one never gets to send.
        t.max_concurrent_bidi_streams(0u8.into());
        t.max_idle_timeout(self.idle_timeout.try_into().ok());
        t.receive_window(
            quinn::VarInt::from_u64(self.receive_window).unwrap_or(quinn::VarInt::MAX),
        );
        t
    }
}

/// sshd's MaxStartups for QUIC handshakes (`start:rate:full`): up to `start` handshakes in
/// progress are all let through; past it a new one is dropped with probability `rate` percent,
/// rising linearly to 100 at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startups {
    /// Handshakes in progress below which none is dropped.
    pub start: usize,
    /// The chance, in percent, that a new one is dropped at `start`.
    pub rate: u8,
    /// Handshakes in progress at which every new one is dropped.
    pub full: usize,
}

impl Default for Startups {
    /// 64:30:256. A handshake takes one round trip and a signature, so far more can be in
    /// progress than sshd's 10; a half-open one holds a few KB until `handshake_timeout`.
    fn default() -> Self {
        Startups {
            start: 64,
            rate: 30,
            full: 256,
        }
    }
}

impl Startups {
    /// Whether a new handshake is dropped with `in_progress` already running; `roll` is a
    /// random number below 100.
    pub(super) fn drops(&self, in_progress: usize, roll: u8) -> bool {
        if in_progress >= self.full {
            return true;
        }
        if in_progress < self.start {
            return false;
        }
        let span = (self.full - self.start).max(1);
        let over = in_progress - self.start;
        let chance =
            u64::from(self.rate) + (100 - u64::from(self.rate)) * over as u64 / span as u64;
        u64::from(roll) < chance
    }
}

impl FromStr for Startups {
    type Err = String;

    /// `START:RATE:FULL` as in sshd_config, or `N` for `N:100:N` (a plain cap).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not START:RATE:FULL (e.g. 64:30:256) or a number");
        let parts: Vec<&str> = text.split(':').collect();
        let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
        let startups = match parts[..] {
            [n] => Startups {
                start: num(n)?,
                rate: 100,
                full: num(n)?,
            },
            [start, rate, full] => Startups {
                start: num(start)?,
                rate: rate.trim().parse::<u8>().map_err(|_| bad())?,
                full: num(full)?,
            },
            _ => return Err(bad()),
        };
        if startups.rate > 100 || startups.start > startups.full || startups.full == 0 {
            return Err(bad());
        }
        Ok(startups)
    }
}

impl fmt::Display for Startups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.rate, self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuning::Tuning;

    /// quinn's TransportConfig has no getters; its Debug output names every field.
    fn receive_window(t: &quinn::TransportConfig) -> String {
        let text = format!("{t:?}");
        let at = text.find(" receive_window: ").expect(&text);
        text[at..].split(',').next().unwrap().trim().to_string()
    }

    #[test]
    fn a_larger_stream_window_raises_the_connection_window_and_a_smaller_one_does_not() {
        let limits = Limits::default();
        let big = Tuning {
            stream_window: 48 << 20,
            ..Tuning::default()
        };
        let small = Tuning {
            stream_window: 8 << 20,
            ..Tuning::default()
        };
        assert_eq!(
            receive_window(&limits.transport_with(&big)),
            format!("receive_window: {}", 48u64 << 20)
        );
        assert_eq!(
            receive_window(&limits.transport_with(&small)),
            format!("receive_window: {}", limits.receive_window)
        );
    }

    #[test]
    fn startups_parse_like_sshd_and_drop_more_as_they_fill() {
        let s: Startups = "10:30:100".parse().unwrap();
        assert_eq!((s.start, s.rate, s.full), (10, 30, 100));
        assert_eq!(s.to_string(), "10:30:100");
        assert_eq!("5".parse::<Startups>().unwrap().to_string(), "5:100:5");
        for bad in [
            "",
            "1:2",
            "a:30:100",
            "10:101:100",
            "20:30:10",
            "0",
            "1:2:3:4",
        ] {
            assert!(bad.parse::<Startups>().is_err(), "{bad}");
        }
        // Below start: never; at start: `rate` percent; halfway: halfway to 100; at full: always.
        let drops = |n, roll| s.drops(n, roll);
        assert!(!drops(9, 0));
        assert!(drops(10, 29) && !drops(10, 30));
        assert!(drops(55, 64) && !drops(55, 65));
        assert!(drops(100, 99) && drops(1000, 99));
    }
}
