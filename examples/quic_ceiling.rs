//! The QUIC ceiling: how fast qft's own QUIC and TLS settings move bytes from memory to memory,
//! with no files, no protocol and (unless asked) no hashing. `bench/run` prints it beside the
//! real transfers and beside plain quinn (`examples/quinn_reference`), so a gap to the first is
//! qft's own cost and a gap to the second is what qft's settings cost or win.
//!
//! ```text
//! cargo run --release --example quic_ceiling -- serve 127.0.0.1:0 [OPTIONS]
//! # prints: PORT FINGERPRINT
//! cargo run --release --example quic_ceiling -- send 127.0.0.1:PORT SHA256:... 1G [--sha256] [OPTIONS]
//! # prints: BYTES<TAB>SECONDS<TAB>MB/s<TAB>counters
//! ```
//!
//! The endpoints are built by qft's library ([`qft::tls::server_config`],
//! [`qft::tls::client_config`], [`qft::tls::FingerprintVerifier`],
//! `Limits::default().transport_with(..)` and [`qft::tuning::Tuning`]), so with no options they carry
//! exactly the transport and TLS settings that `qft serve` and `qft connect` use by default, on
//! a current-thread runtime as `qft` runs (flags given to qft through
//! `QFT_SERVE_ARGS`/`QFT_CONNECT_ARGS` do not reach it). The options change one thing at a time,
//! each on the end it is given to (give transport options to both ends):
//!
//! | option | default | |
//! | --- | --- | --- |
//! | `--runtime multi\|current` | `current` | tokio's multi-thread runtime (a worker per core, as `qft` had until 2026-11-29), or one thread (as `qft`) |
//! | `--congestion bbr\|bbr-raw\|cubic\|auto` | qft's | qft's capped BBR, quinn's BBR as it is, cubic, or cubic on a short path and capped BBR on a long one |
//! | `--max-packet N` | 4096 | the largest UDP payload (MTU discovery's upper bound) |
//! | `--gso N` | the socket's (quinn sends at most 10) | datagrams per GSO send, at most |
//! | `--ack-freq N` | off | the ACK frequency extension, asking the peer for an ACK every N+1 packets |
//! | `--window SIZE` | 16M | stream window (quinn gets 4 MiB less, qft's receive queue, as in `qft`) and send window |
//! | `--hash inline\|thread` | `inline` | with SHA-256, where it runs: on the stream's task, or on a thread of its own fed 256 KiB blocks (as qft's transfer) |
//! | `--zero-copy` | off | the sender hands quinn shared `Bytes` (`write_all_chunks`, as qft's transfer) instead of `write_all`, which copies |
//!
//! The stream and its timing are described in `examples/membench`.

#[path = "membench/mod.rs"]
mod membench;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use membench::Hashing;
use qft::server::Limits;
use qft::tls::{self, Fingerprint, FingerprintVerifier, Identity};
use qft::tuning::{fit_receive_window, path_window, Congestion, Tuning};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AckFrequencyConfig, AsyncUdpSocket, Runtime, UdpPoller, VarInt};

const USAGE: &str = "usage: quic_ceiling serve ADDR [OPTIONS]
       quic_ceiling send HOST:PORT FINGERPRINT BYTES [--sha256] [OPTIONS]
OPTIONS: --runtime multi|current  --congestion bbr|bbr-raw|cubic|auto  --max-packet N  --gso N
         --ack-freq N  --window SIZE  --hash inline|thread  --zero-copy
BYTES and SIZE take a K, M or G suffix (powers of 1024).";

/// What one end changes from qft's defaults.
#[derive(Debug)]
struct Options {
    current_thread: bool,
    /// quinn's BBR without qft's cap.
    bbr_raw: bool,
    tuning: Tuning,
    gso: Option<usize>,
    ack_freq: Option<u32>,
    hashing: Hashing,
    sha256: bool,
    zero_copy: bool,
}

impl Options {
    fn parse(args: &[&str]) -> anyhow::Result<Options> {
        let mut o = Options {
            current_thread: true,
            bbr_raw: false,
            tuning: Tuning::default(),
            gso: None,
            ack_freq: None,
            hashing: Hashing::Inline,
            sha256: false,
            zero_copy: false,
        };
        let mut args = args.iter();
        while let Some(&flag) = args.next() {
            let mut value = || {
                args.next()
                    .copied()
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag {
                "--sha256" => o.sha256 = true,
                "--zero-copy" => o.zero_copy = true,
                "--runtime" => {
                    o.current_thread = match value()? {
                        "current" => true,
                        "multi" => false,
                        v => bail!("--runtime {v}: current or multi"),
                    }
                }
                "--congestion" => match value()? {
                    "bbr-raw" => {
                        o.tuning.congestion = Congestion::Bbr;
                        o.bbr_raw = true;
                    }
                    v => o.tuning.congestion = v.parse().map_err(anyhow::Error::msg)?,
                },
                "--max-packet" => o.tuning.max_packet = value()?.parse()?,
                "--gso" => o.gso = Some(value()?.parse()?),
                "--ack-freq" => o.ack_freq = Some(value()?.parse()?),
                "--window" => {
                    let w = membench::parse_size(value()?)?;
                    o.tuning.stream_window = w;
                    o.tuning.send_window = w;
                }
                "--hash" => {
                    o.hashing = match value()? {
                        "inline" => Hashing::Inline,
                        "thread" => Hashing::Thread,
                        v => bail!("--hash {v}: inline or thread"),
                    }
                }
                f => bail!("unknown option {f}\n{USAGE}"),
            }
        }
        Ok(o)
    }

    /// qft's transport settings (`base`, then [`Tuning::apply`]) with this end's changes.
    fn transport(&self, mut base: quinn::TransportConfig) -> quinn::TransportConfig {
        self.tuning.apply(&mut base);
        if self.bbr_raw {
            base.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
        }
        if let Some(n) = self.ack_freq {
            let mut ack = AckFrequencyConfig::default();
            ack.ack_eliciting_threshold(VarInt::from_u32(n));
            base.ack_frequency_config(Some(ack));
        }
        base
    }

    /// A UDP endpoint as [`Tuning::endpoint`] makes it; with `--gso`, the socket's GSO batch
    /// is capped first.
    fn endpoint(
        &self,
        addr: SocketAddr,
        server: Option<quinn::ServerConfig>,
    ) -> io::Result<quinn::Endpoint> {
        let Some(segments) = self.gso else {
            return self.tuning.endpoint(addr, server);
        };
        // Tuning::endpoint's steps, with the runtime wrapped.
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        let _ = socket.set_recv_buffer_size(8 << 20);
        let _ = socket.set_send_buffer_size(8 << 20);
        socket.bind(&addr.into())?;
        let inner = quinn::default_runtime().ok_or_else(|| io::Error::other("no runtime"))?;
        let runtime = Arc::new(GsoCap { inner, segments });
        let mut config = quinn::EndpointConfig::default();
        let _ = config.max_udp_payload_size(self.tuning.max_packet.clamp(1200, 65_527).max(1472));
        quinn::Endpoint::new(config, server, socket.into(), runtime)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (work, options) = match args.as_slice() {
        ["serve", addr, rest @ ..] => {
            let addr: SocketAddr = addr.parse().context("ADDR must be IP:PORT")?;
            (Work::Serve(addr), Options::parse(rest)?)
        }
        ["send", target, fingerprint, bytes, rest @ ..] => {
            let fingerprint: Fingerprint = fingerprint.parse()?;
            let bytes = membench::parse_size(bytes)?;
            (
                Work::Send(target.to_string(), fingerprint, bytes),
                Options::parse(rest)?,
            )
        }
        _ => bail!("{USAGE}"),
    };
    let runtime = if options.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        // What `qft` ran on until 2026-11-29 (tokio::runtime::Runtime::new(): a worker per core).
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        match work {
            Work::Serve(addr) => serve(addr, options).await,
            Work::Send(target, fp, bytes) => send(&target, fp, bytes, options).await,
        }
    })
}

enum Work {
    Serve(SocketAddr),
    Send(String, Fingerprint, u64),
}

/// Accepts connections until Ctrl-C; every stream is read to its end and acknowledged.
async fn serve(addr: SocketAddr, options: Options) -> anyhow::Result<()> {
    let identity = Identity::generate()?;
    let limits = Limits::default();
    // As `qft serve` builds it: the connection's window at least the stream window.
    let mut base = limits.transport_with(&options.tuning);
    // qft's server opens a connection's streams once it admits it (server::connection); here
    // every connection is admitted at once. Without this no stream could open (a hang).
    base.max_concurrent_bidi_streams(limits.max_streams.into());
    let transport = options.transport(base);
    let config = tls::server_config(&identity, false, transport)?;
    let endpoint = options.endpoint(addr, Some(config))?;
    println!(
        "{} {}",
        endpoint.local_addr()?.port(),
        identity.fingerprint()
    );
    let hashing = options.hashing;
    let window = limits.connection_window(&options.tuning);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                tokio::spawn(async move {
                    if let Err(e) = connection(incoming, hashing, window).await {
                        eprintln!("quic_ceiling: connection: {e:#}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    endpoint.close(0u32.into(), b"bye");
    endpoint.wait_idle().await;
    Ok(())
}

async fn connection(
    incoming: quinn::Incoming,
    hashing: Hashing,
    window: u64,
) -> anyhow::Result<()> {
    let conn = incoming.await?;
    // As `qft serve` does once it admits a connection: a short path's receive window.
    fit_receive_window(&conn, window);
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(stream) => stream,
            Err(quinn::ConnectionError::ApplicationClosed(_)) => break,
            Err(e) => return Err(e.into()),
        };
        tokio::spawn(async move {
            if let Err(e) = membench::receive(send, recv, hashing).await {
                eprintln!("quic_ceiling: stream: {e:#}");
            }
        });
    }
    eprintln!("server\t{}", membench::stats_line(&conn.stats()));
    Ok(())
}

/// Sends `bytes` from memory on one stream and prints the result line.
async fn send(
    target: &str,
    fingerprint: Fingerprint,
    bytes: u64,
    options: Options,
) -> anyhow::Result<()> {
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} has no address"))?;
    let verifier = Arc::new(FingerprintVerifier::new(
        Some(fingerprint),
        false,
        tls::crypto_provider(),
    ));
    // A client identity, as `qft connect` presents, so the handshake is the same one.
    let identity = Identity::generate()?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = options.endpoint(bind, None)?;
    // As `qft connect` does: the packet size bounded by the route to the server.
    let mut options = options;
    options.tuning = options.tuning.for_peer(addr);
    let mut config = tls::client_config(verifier, Some(&identity), &options.tuning)?;
    // client_config's own transport (keep-alive, then the tuning), with this end's changes.
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    config.transport_config(Arc::new(options.transport(transport)));
    endpoint.set_default_client_config(config);
    let conn = endpoint.connect(addr, "qft")?.await?;
    // As `qft connect` does: a short path's send window.
    conn.set_send_window(path_window(options.tuning.send_window, conn.rtt()));
    let hashing = if options.sha256 {
        options.hashing
    } else {
        Hashing::Off
    };
    let seconds = membench::send(&conn, bytes, hashing, options.zero_copy).await?;
    let stats = conn.stats();
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    println!("{}", membench::result_line(bytes, seconds, &stats));
    Ok(())
}

/// quinn's runtime, its UDP sockets reporting at most `segments` datagrams per GSO send.
#[derive(Debug)]
struct GsoCap {
    inner: Arc<dyn Runtime>,
    segments: usize,
}

impl Runtime for GsoCap {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        self.inner.new_timer(at)
    }
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.inner.spawn(future)
    }
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(CappedSocket {
            inner: self.inner.wrap_udp_socket(socket)?,
            segments: self.segments,
        }))
    }
}

struct CappedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    segments: usize,
}

impl fmt::Debug for CappedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CappedSocket({})", self.segments)
    }
}

impl AsyncUdpSocket for CappedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }
    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)
    }
    fn poll_recv(
        &self,
        cx: &mut TaskContext,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments().min(self.segments.max(1))
    }
    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }
    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
