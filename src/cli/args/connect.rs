//! `qft connect`'s flags: the server to reach, how to trust it, and how this client behaves;
//! the one command to run instead of the prompt is an [`Action`].

use std::net::SocketAddr;

use clap::Args;

use super::action::Action;
use super::tuning::TuningArgs;
use crate::client::session::DEFAULT_JOBS;
use crate::tls::Fingerprint;

/// Parses a local address: `ADDR` (any port) or `ADDR:PORT`.
fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    if let Ok(ip) = bare.unwrap_or(text).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is not ADDR or ADDR:PORT (e.g. 127.0.0.2 or [::1]:0)"))
}

#[derive(Debug, Args)]
#[command(disable_help_subcommand = true)]
pub(in crate::cli) struct ConnectArgs {
    /// The server: HOST:PORT, HOST (port 4433), [IPv6]:PORT, or a NAME saved as [host.NAME]
    /// in the qft home's config.toml (with its key and settings; flags given here win).
    pub(in crate::cli) target: String,
    /// Trust and record a server seen for the first time; a changed key is still refused.
    #[arg(long, global = true)]
    pub(in crate::cli) accept_new: bool,
    /// Trust exactly this server key (as printed by the server), ignoring known hosts.
    #[arg(long, global = true, value_name = "SHA256:...")]
    pub(in crate::cli) fingerprint: Option<Fingerprint>,
    /// Errors only: no progress bars, no line per file, no summary (--json still prints its
    /// records).
    #[arg(short, long, global = true)]
    pub(in crate::cli) quiet: bool,
    /// At the prompt: every download replaces existing local files (`get -f` asks it for one).
    #[arg(short, long)]
    pub(in crate::cli) force: bool,
    /// Local address to connect from: ADDR or ADDR:PORT (e.g. 127.0.0.2, to spread load over
    /// several loopback addresses).
    #[arg(long, global = true, value_name = "ADDR", value_parser = parse_bind)]
    pub(in crate::cli) bind: Option<SocketAddr>,
    /// Seconds to wait for the server to answer the connection (at least 1).
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(in crate::cli) timeout: u64,
    /// Seconds the server may send (or take) nothing in the middle of a command, whether a
    /// response or a block of a file, before that command fails as stalled (as the server's
    /// own --stall-timeout).
    #[arg(long, global = true, value_name = "SECS",
          default_value_t = crate::client::DEFAULT_STALL_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(in crate::cli) stall_timeout: u64,
    /// Print results as JSON lines (fields documented in the README).
    #[arg(long, global = true)]
    pub(in crate::cli) json: bool,
    /// The most file bytes per second this client moves, all transfers together (as rsync's
    /// --bwlimit; 10M is 10 MiB/s, 500K, 1G).
    #[arg(long, global = true, value_name = "RATE", value_parser = crate::rate::parse_limit)]
    pub(in crate::cli) bwlimit: Option<u64>,
    /// Compress file bodies (zstd) where the server can and the data shrinks: text, logs,
    /// databases over a slow link. Files already compressed (.zip, .jpg...) and data that does
    /// not shrink go as they are.
    #[arg(short = 'C', long, global = true)]
    pub(in crate::cli) compress: bool,
    /// At the prompt: transfers to run at once, each on its own stream (`get`/`put -j` for one
    /// command).
    #[arg(short, long, value_name = "N", default_value_t = DEFAULT_JOBS as u16,
          value_parser = jobs_range())]
    pub(in crate::cli) jobs: u16,
    #[command(subcommand)]
    pub(in crate::cli) action: Option<Action>,
    #[command(flatten)]
    pub(in crate::cli) tuning: TuningArgs,
}

/// `-j`: at least one transfer at a time, at most what a session runs.
pub(super) fn jobs_range() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..=i64::from(crate::client::session::MAX_JOBS))
}
