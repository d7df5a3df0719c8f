//! How qft drives the network, the same on both ends: the congestion controller, the
//! flow-control windows and the largest packet. The defaults come from the measurements in
//! BENCHMARKS.md; each has a flag on `serve` and `connect` so a user can try others.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use quinn::congestion::{BbrConfig, CubicConfig, NewRenoConfig};

use crate::congestion::{ByPathFactory, CappedFactory, SHORT_PATH};
use quinn::{EndpointConfig, MtuDiscoveryConfig, TransportConfig, VarInt};
use socket2::{Domain, Protocol, Socket, Type};

/// The congestion controller both ends use for what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Congestion {
    /// Paces to the measured bandwidth and round trip, and does not read loss as congestion:
    /// on a lossy path it holds its rate where cubic collapses (BENCHMARKS.md). Its window is
    /// held to a multiple of the path's measured capacity ([`crate::congestion`]).
    Bbr,
    /// quinn's default, like TCP's: halves its window on every loss.
    Cubic,
    /// The classic loss-based controller.
    NewReno,
    /// Cubic where the path's round trip is short (under [`crate::congestion::SHORT_PATH`]),
    /// capped BBR elsewhere ([`crate::congestion::ByPath`]). The default: on loopback and a LAN
    /// quinn's BBR starts slowly and paces its GSO batches small, and cubic moved a 1 GiB file
    /// 5-15% (loopback) and 20-28% (lan) faster file to file; a long or lossy path gets BBR.
    Auto,
}

impl FromStr for Congestion {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "bbr" => Ok(Congestion::Bbr),
            "cubic" => Ok(Congestion::Cubic),
            "newreno" | "new-reno" => Ok(Congestion::NewReno),
            "auto" => Ok(Congestion::Auto),
            _ => Err(format!(
                "'{text}' is not a congestion controller (auto, bbr, cubic or newreno)"
            )),
        }
    }
}

impl fmt::Display for Congestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Congestion::Bbr => "bbr",
            Congestion::Cubic => "cubic",
            Congestion::NewReno => "newreno",
            Congestion::Auto => "auto",
        })
    }
}

/// Parses a size as flags and config.toml take it: a number of bytes, or with a K, M, G or T
/// suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("'{text}' is not a size (e.g. 512, 64K, 500M, 20G)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("'{text}' is not a size (e.g. 512, 64K, 500M, 20G)"))
}

/// Transport settings shared by server and client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// The congestion controller for what this end sends.
    pub congestion: Congestion,
    /// Bytes the peer may send on one stream ahead of what this end has hashed and written:
    /// quinn's stream window plus the transfer's own receive queue
    /// ([`crate::transfer::RECEIVE_QUEUE`]), which quinn's window is that much smaller for (see
    /// [`Tuning::quinn_stream_window`]). One transfer's rate is at most quinn's part per round
    /// trip, so it must cover the path's bandwidth × delay with room for loss recovery. Far above
    /// that, quinn can fail with "too many gaps" (quinn #2809).
    pub stream_window: u64,
    /// Bytes this end may have sent but not yet acknowledged on one connection; also what a
    /// connection may hold in send buffers, so it bounds a server's memory per download.
    pub send_window: u64,
    /// The largest UDP payload this end sends (path MTU discovery searches up to it, and stays
    /// lower where the path is smaller) and accepts. Per-packet work dominates QUIC's CPU cost.
    pub max_packet: u16,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            // BENCHMARKS.md, "2026-11-29, night": auto against capped BBR, interleaved.
            congestion: Congestion::Auto,
            // On the WAN profile (50 ms, 1% loss, 500 Mbit/s) 8 MiB windows gave 32 MB/s and
            // 16 MiB 39 MB/s; at 16 MiB a 1 GiB upload still sent ~490 STREAM_DATA_BLOCKED:
            // with a loss every ~2 ms, a lost retransmission holds the stream's read offset
            // for two or three round trips while the sender goes on, and 12 MiB for quinn did
            // not cover that. 24 MiB: one block, 0.92× the line instead of 0.89× (BENCHMARKS.md).
            // (32 MiB once failed with quinn's "too many gaps in stream buffer"; quinn-proto
            // 0.11.19 compacts its buffer first and ran it cleanly.)
            stream_window: 24 << 20,
            send_window: 16 << 20,
            // Loopback: 4096-byte packets moved 1 GiB 15-25% faster than 1452 (and than 8192 or
            // 65527). Where the path is smaller, discovery stays at what it carries.
            max_packet: 4096,
        }
    }
}

/// The least a connection keeps in flight on a short path (a round trip under [`SHORT_PATH`],
/// where `auto` runs cubic): see [`path_window`].
pub const SHORT_PATH_WINDOW: u64 = 2 << 20;

/// The rate a short path's windows are sized for: 10 Gbit/s.
const SHORT_PATH_RATE: u64 = 1_250_000_000;

/// What a connection may have sent and not had acknowledged (its send window), or received and
/// not yet read (its receive window), on a path whose round trip is `rtt` (quinn's estimate
/// once the handshake is done): `window`, but on a short path only twice what 10 Gbit/s keeps
/// in flight for that round trip, and no less than [`SHORT_PATH_WINDOW`].
///
/// Such a path is full with little in flight, and nothing is lost on it to hold cubic back, so
/// larger windows only grew queues. On the sender, what was sent waited in memory that had left
/// the CPU caches by the time it was packed and acknowledged: qft's transport on the lan moved
/// 1,030 MB/s with 16 MiB in flight, 1,167 with 4 MiB and 1,253 with 2 MiB, at 1.73, 1.47 and
/// 1.43 CPU s per GB (both ends; plain quinn, whose 1.25 MB stream window bounds it the same
/// way, 1,136-1,191). On a receiver slower than its sender, unread packets piled up in quinn
/// until it copied them all into one buffer (its reassembly compaction), work on the very end
/// that was behind. BENCHMARKS.md has the runs.
pub fn path_window(window: u64, rtt: Duration) -> u64 {
    if rtt >= SHORT_PATH {
        return window;
    }
    let in_flight = (SHORT_PATH_RATE as u128 * rtt.as_nanos() / 1_000_000_000) as u64;
    (2 * in_flight).max(SHORT_PATH_WINDOW).min(window)
}

/// Makes `conn`'s receive window, `configured` when its transport was set up, what its path
/// needs once the handshake has measured the round trip (see [`path_window`]); never larger.
/// quinn takes the difference out of the credit it gives back as data is read.
pub fn fit_receive_window(conn: &quinn::Connection, configured: u64) {
    let fitted = path_window(configured, conn.rtt());
    if fitted < configured {
        conn.set_receive_window(VarInt::from_u64(fitted).unwrap_or(VarInt::MAX));
    }
}

/// What a connection may have received and not yet read, over all its streams, unless a
/// stream's window is larger: the server's default ([`crate::server::Limits::receive_window`])
/// and the client's.
pub const CONNECTION_WINDOW: u64 = 24 << 20;

/// The largest UDP payload QUIC allows (IPv6's).
pub const MAX_PACKET: u16 = 65_527;
/// The smallest a QUIC path must carry.
pub const MIN_PACKET: u16 = 1200;

impl Tuning {
    /// Sets these choices on a transport config (the other fields are left as they are).
    pub fn apply(&self, t: &mut TransportConfig) {
        t.congestion_controller_factory(match self.congestion {
            Congestion::Bbr => capped_bbr(),
            Congestion::Cubic => Arc::new(CubicConfig::default()),
            Congestion::NewReno => Arc::new(NewRenoConfig::default()),
            Congestion::Auto => Arc::new(ByPathFactory {
                short: Arc::new(CubicConfig::default()),
                long: capped_bbr(),
            }),
        });
        t.stream_receive_window(
            VarInt::from_u64(self.quinn_stream_window()).unwrap_or(VarInt::MAX),
        );
        t.send_window(self.send_window);
        // Finite, so that a short path's window can be made smaller once the handshake has
        // measured it: quinn's default is unlimited, and credit once given is never taken back.
        t.receive_window(VarInt::from_u64(self.connection_window()).unwrap_or(VarInt::MAX));
        let mut mtu = MtuDiscoveryConfig::default();
        mtu.upper_bound(self.max_packet.clamp(MIN_PACKET, MAX_PACKET));
        t.mtu_discovery_config(Some(mtu));
    }

    /// These settings for a connection with `peer`: the largest packet no larger than the route
    /// to it carries, where the system says (see [`route_payload`]). Path MTU discovery then
    /// starts its search at what the path can take: from 4,096 bytes on a 1,500-byte path its
    /// first dozen probes are lost by design, and a sender that always has a window to fill
    /// gets few probes out (quinn sends one only when nothing else was written), so under
    /// cubic a whole GiB went at 1,200-byte packets on the lan (BENCHMARKS.md).
    pub fn for_peer(&self, peer: SocketAddr) -> Tuning {
        let mut tuning = self.clone();
        if let Some(route) = route_payload(peer) {
            tuning.max_packet = tuning.max_packet.min(route).max(MIN_PACKET);
        }
        tuning
    }

    /// What a connection may have received and not yet read, over all its streams: at least
    /// one stream's window.
    pub fn connection_window(&self) -> u64 {
        self.stream_window.max(CONNECTION_WINDOW)
    }

    /// The part of [`Tuning::stream_window`] that waits in quinn: the rest is the transfer's own
    /// receive queue, which a copy fills as packets arrive. At least half of the window stays
    /// with quinn (a small `--window` gets a smaller total rather than none for quinn).
    pub fn quinn_stream_window(&self) -> u64 {
        let queue = crate::transfer::RECEIVE_QUEUE as u64;
        self.stream_window
            .saturating_sub(queue)
            .max(self.stream_window / 2)
    }

    /// A UDP endpoint bound to `addr` with these settings (a server when `server` is given).
    pub fn endpoint(
        &self,
        addr: SocketAddr,
        server: Option<quinn::ServerConfig>,
    ) -> io::Result<quinn::Endpoint> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            // Dual-stack where the system allows it, so "[::]:port" serves IPv4 clients too.
            let _ = socket.set_only_v6(false);
        }
        // The default receive buffer (about 200 KiB) overflows within a millisecond at a few
        // hundred MB/s, and every datagram dropped there is a loss the congestion controller
        // pays for. The kernel caps these at net.core.[rw]mem_max; asking is harmless.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| io::Error::other("no async runtime to run QUIC on"))?;
        let mut config = EndpointConfig::default();
        // Clamped to QUIC's range first, so this cannot fail.
        let _ =
            config.max_udp_payload_size(self.max_packet.clamp(MIN_PACKET, MAX_PACKET).max(1472));
        quinn::Endpoint::new(config, server, socket.into(), runtime)
    }
}

/// The largest UDP payload the route to `peer` carries in one IP packet, as the kernel knows it
/// (the outgoing interface's MTU, or a smaller path MTU it has learned), less the IP and UDP
/// headers. A UDP socket's `connect` only picks the route: nothing is sent. `None` where the
/// system cannot tell.
#[cfg(target_os = "linux")]
pub fn route_payload(peer: SocketAddr) -> Option<u16> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    // A client of a dual-stack server arrives as ::ffff:a.b.c.d; its packets are IPv4.
    let peer = match peer {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => peer,
        },
        v4 => v4,
    };
    let (bind, headers): (SocketAddr, u32) = match peer {
        SocketAddr::V4(_) => ((Ipv4Addr::UNSPECIFIED, 0).into(), 20 + 8),
        SocketAddr::V6(_) => ((Ipv6Addr::UNSPECIFIED, 0).into(), 40 + 8),
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(peer).ok()?;
    let mtu = match peer {
        SocketAddr::V4(_) => rustix::net::sockopt::ip_mtu(&socket).ok()?,
        SocketAddr::V6(_) => rustix::net::sockopt::ipv6_mtu(&socket).ok()?,
    };
    u16::try_from(mtu.checked_sub(headers)?).ok()
}

/// Elsewhere the route's MTU is not asked for: discovery searches up to the configured size.
#[cfg(not(target_os = "linux"))]
pub fn route_payload(_peer: SocketAddr) -> Option<u16> {
    None
}

/// qft's BBR: quinn's, its window capped ([`crate::congestion::Capped`]).
fn capped_bbr() -> Arc<dyn quinn::congestion::ControllerFactory + Send + Sync> {
    Arc::new(CappedFactory(Arc::new(BbrConfig::default())))
}

/// Socket buffer asked for, each direction.
const SOCKET_BUFFER: usize = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// A lan keeps 2 MiB in flight, a 3 ms path what 10 Gbit/s needs twice over, a smaller
    /// setting stays smaller, and a long path (the wan needs its whole window to ride out lost
    /// retransmissions) keeps its own. The same rule sizes the send and the receive window.
    #[test]
    fn only_a_short_path_caps_a_window() {
        let lan = Duration::from_micros(300);
        assert_eq!(path_window(16 << 20, lan), SHORT_PATH_WINDOW);
        assert_eq!(path_window(1 << 20, lan), 1 << 20);
        assert_eq!(path_window(16 << 20, Duration::from_millis(3)), 7_500_000);
        assert_eq!(path_window(16 << 20, SHORT_PATH), 16 << 20);
        assert_eq!(path_window(16 << 20, Duration::from_millis(50)), 16 << 20);
    }

    /// Loopback carries far larger packets than qft's 4,096 bytes (its MTU is 65,536), so the
    /// bound changes nothing there; a peer seen as an IPv4-mapped IPv6 address is IPv4 (its
    /// headers are 28 bytes, not 48); a smaller setting stays smaller.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_route_bounds_the_packet_size_and_loopback_does_not() {
        let v4: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let route = route_payload(v4).expect("the route to 127.0.0.1");
        assert!(route > 60_000, "loopback's route carries {route}");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4433".parse().unwrap();
        assert_eq!(route_payload(mapped), Some(route), "a mapped peer is IPv4");
        let tuning = Tuning::default();
        assert_eq!(tuning.for_peer(v4), tuning);
        let small = Tuning {
            max_packet: 1400,
            ..Tuning::default()
        };
        assert_eq!(small.for_peer(v4).max_packet, 1400);
    }

    #[test]
    fn congestion_names_round_trip_and_bad_ones_are_explained() {
        for c in [
            Congestion::Bbr,
            Congestion::Cubic,
            Congestion::NewReno,
            Congestion::Auto,
        ] {
            assert_eq!(c.to_string().parse::<Congestion>(), Ok(c));
        }
        assert_eq!("BBR".parse::<Congestion>(), Ok(Congestion::Bbr));
        let err = "vegas".parse::<Congestion>().unwrap_err();
        assert!(err.contains("auto, bbr, cubic or newreno"), "{err}");
    }
}
