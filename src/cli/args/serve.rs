//! `qft serve`'s flags, and how they become the server's [`Limits`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::tuning::TuningArgs;
use crate::server::{Limits, Startups};
use crate::tuning::parse_size;

#[derive(Debug, Args)]
pub(in crate::cli) struct ServeArgs {
    /// The directory to serve, or s3://BUCKET[/PREFIX] (credentials and region from the
    /// standard AWS_* environment variables).
    #[arg(default_value = ".")]
    pub(in crate::cli) dir: PathBuf,
    /// The S3 endpoint for an s3:// URL (default: AWS_ENDPOINT_URL, else AWS itself).
    #[arg(long, value_name = "URL")]
    pub(in crate::cli) s3_endpoint: Option<String>,
    /// Allow a plain http:// S3 endpoint that is not on loopback.
    #[arg(long)]
    pub(in crate::cli) s3_allow_http: bool,
    /// Address to listen on: ADDR:PORT, or just PORT (0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "[::]:4433", value_parser = parse_listen)]
    pub(in crate::cli) listen: SocketAddr,
    /// Write the bound port here (number and newline) once the server accepts connections.
    #[arg(long, value_name = "FILE")]
    pub(in crate::cli) port_file: Option<PathBuf>,
    /// Use this certificate (PEM) instead of the kept identity.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub(in crate::cli) cert: Option<PathBuf>,
    /// The private key (PEM) for --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub(in crate::cli) key: Option<PathBuf>,
    /// Admit only the clients listed in FILE, with the permissions it grants
    /// (lines: SHA256:... read,write,delete,admin comment). Re-read when it changes; applies to open sessions at their next command.
    #[arg(long, value_name = "FILE")]
    pub(in crate::cli) authorized_clients: Option<PathBuf>,
    /// Serve listings and downloads only.
    #[arg(long)]
    pub(in crate::cli) read_only: bool,
    /// Also answer browsers: WebTransport on the same UDP port, the page over HTTP on TCP.
    #[arg(long)]
    pub(in crate::cli) web: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics: ADDR:PORT, or a PORT on 127.0.0.1.
    /// They are not authenticated, so keep them on loopback unless a firewall stands guard.
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics)]
    pub(in crate::cli) metrics: Option<SocketAddr>,
    /// How log lines look: text for a person, json for one object per line (time, peer,
    /// client fingerprint and name, command, name, bytes, result, duration_ms).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub(in crate::cli) log_format: crate::cli::logging::LogFormat,
    /// Connections at once, all clients together.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections at once from one IP address, counted once the handshake is done and the
    /// client admitted. Clients over a limit are told when to try again, and qft clients do.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Handshakes in progress, as sshd's MaxStartups: past START, new ones are dropped with
    /// probability RATE percent, rising to all at FULL (an honest client resends).
    #[arg(long, value_name = "START:RATE:FULL", default_value_t = Limits::default().startups)]
    max_startups: Startups,
    /// Commands at once on one connection.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_streams)]
    max_streams: u32,
    /// Close connections silent for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Seconds a new stream has to send its request.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout: u64,
    /// Seconds each 256 KiB block of a transfer may take before the transfer is dropped.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().stall_timeout.as_secs())]
    stall_timeout: u64,
    /// Largest message accepted from a client, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame)]
    max_frame: usize,
    /// Largest upload accepted (e.g. 500M, 20G); no limit by default.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_upload: Option<u64>,
    /// Free space every upload must leave on the disk (e.g. 1G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64M")]
    min_free: u64,
    /// Send buffers of all connections together (e.g. 24M): each connection gets an equal
    /// share, up to --send-window. Bounds what downloads hold in the server's memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "24M")]
    send_buffers: u64,
    /// Hours an interrupted upload's partial is kept for the client to resume.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    partial_ttl: u64,
    /// Make every client prove its address with a QUIC Retry before any handshake work (costs
    /// one round trip). Without it, this starts by itself once handshakes from unproven
    /// addresses pile up.
    #[arg(long)]
    retry: bool,
    /// The most file bytes per second all connections together move (e.g. 100M: 100 MiB/s).
    #[arg(long, value_name = "RATE", value_parser = crate::rate::parse_limit)]
    bwlimit: Option<u64>,
    /// The most file bytes per second one connection moves (e.g. 10M).
    #[arg(long, value_name = "RATE", value_parser = crate::rate::parse_limit)]
    bwlimit_per_connection: Option<u64>,
    #[command(flatten)]
    pub(in crate::cli) tuning: TuningArgs,
}

impl ServeArgs {
    pub(in crate::cli) fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            startups: self.max_startups,
            max_streams: self.max_streams,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            request_timeout: Duration::from_secs(self.request_timeout),
            stall_timeout: Duration::from_secs(self.stall_timeout),
            max_frame: self.max_frame,
            max_upload: self.max_upload,
            min_free: self.min_free,
            retry: self.retry,
            send_buffers: self.send_buffers,
            partial_ttl: Duration::from_secs(self.partial_ttl.saturating_mul(3600)),
            bwlimit: self.bwlimit,
            bwlimit_per_connection: self.bwlimit_per_connection,
            ..Limits::default()
        }
    }
}

/// Parses the metrics address: `ADDR:PORT`, or a bare port on loopback.
fn parse_metrics(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is not ADDR:PORT (e.g. 127.0.0.1:9100) or a port"))
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    text.parse().map_err(|_| {
        format!("'{text}' is not ADDR:PORT (e.g. 0.0.0.0:4433 or [::]:4433) or a port")
    })
}
