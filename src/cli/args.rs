//! The command line as clap sees it: the modes and their flags, the parsers for sizes and
//! addresses, and the conversions from flags into the library's plain configs ([`Tuning`],
//! [`Limits`], [`Command`]). The only module of qft that names clap's derive types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::client::command::Command;
use crate::client::session::DEFAULT_JOBS;
use crate::client::sync::{Side, SyncSpec};
use crate::client::{Keep, ShareCommand};
use crate::server::{Limits, Startups};
use crate::tls::Fingerprint;
use crate::tuning::{parse_size, Congestion, Tuning, MAX_PACKET, MIN_PACKET};

/// qft: secure file transfer over QUIC.
#[derive(Debug, Parser)]
#[command(name = "qft", version, about, propagate_version = true)]
pub(super) struct Cli {
    /// More log detail (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(super) verbose: u8,
    #[command(subcommand)]
    pub(super) mode: Mode,
}

#[derive(Debug, Subcommand)]
pub(super) enum Mode {
    /// Serve a directory over QUIC.
    Serve(ServeArgs),
    /// Connect to a server: an interactive prompt, or one command and exit.
    Connect(ConnectArgs),
    /// Print the fingerprint of this machine's server identity (made on first use).
    Fingerprint(FingerprintArgs),
    /// Print this client's fingerprint (made on first use), for a server's authorized-clients file.
    Id,
    /// Make a link that lets a browser download (or upload) one file or directory; --list, --revoke.
    Share(super::share::ShareArgs),
    /// Download the file a share link names (verified), without a server address or key.
    Get(super::get_link::GetLinkArgs),
    /// Show or edit the servers this client trusts (the qft home's known_hosts).
    KnownHosts(KnownHostsArgs),
    /// Print a shell completion script (e.g. `qft completions bash > ~/.local/share/bash-completion/completions/qft`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(super) struct KnownHostsArgs {
    /// Remove every key recorded for HOST[:PORT] (as `ssh-keygen -R`), e.g. after the server's
    /// identity was deliberately replaced.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(super) forget: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The directory to serve, or s3://BUCKET[/PREFIX] (credentials and region from the
    /// standard AWS_* environment variables).
    #[arg(default_value = ".")]
    pub(super) dir: PathBuf,
    /// The S3 endpoint for an s3:// URL (default: AWS_ENDPOINT_URL, else AWS itself).
    #[arg(long, value_name = "URL")]
    pub(super) s3_endpoint: Option<String>,
    /// Allow a plain http:// S3 endpoint that is not on loopback.
    #[arg(long)]
    pub(super) s3_allow_http: bool,
    /// Address to listen on: ADDR:PORT, or just PORT (0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "[::]:4433", value_parser = parse_listen)]
    pub(super) listen: SocketAddr,
    /// Write the bound port here (number and newline) once the server accepts connections.
    #[arg(long, value_name = "FILE")]
    pub(super) port_file: Option<PathBuf>,
    /// Use this certificate (PEM) instead of the kept identity.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub(super) cert: Option<PathBuf>,
    /// The private key (PEM) for --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub(super) key: Option<PathBuf>,
    /// Admit only the clients listed in FILE, with the permissions it grants
    /// (lines: SHA256:... read,write,delete,admin comment). Re-read when it changes; applies to open sessions at their next command.
    #[arg(long, value_name = "FILE")]
    pub(super) authorized_clients: Option<PathBuf>,
    /// Serve listings and downloads only.
    #[arg(long)]
    pub(super) read_only: bool,
    /// Also answer browsers: WebTransport on the same UDP port, the page over HTTP on TCP.
    #[arg(long)]
    pub(super) web: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics: ADDR:PORT, or a PORT on 127.0.0.1.
    /// They are not authenticated, so keep them on loopback unless a firewall stands guard.
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics)]
    pub(super) metrics: Option<SocketAddr>,
    /// How log lines look: text for a person, json for one object per line (time, peer,
    /// client fingerprint and name, command, name, bytes, result, duration_ms).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub(super) log_format: super::logging::LogFormat,
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
    pub(super) tuning: TuningArgs,
}

/// How the network is driven, on either end; the defaults are in [`Tuning::default`], chosen
/// from the measurements in BENCHMARKS.md.
#[derive(Debug, Args)]
pub(super) struct TuningArgs {
    /// Congestion controller for what this end sends: bbr, cubic or newreno.
    #[arg(long, global = true, value_name = "NAME", default_value_t = Tuning::default().congestion)]
    congestion: Congestion,
    /// Bytes one transfer may have in flight toward this end (its stream window, e.g. 16M):
    /// a transfer moves at most this per round trip.
    #[arg(long, global = true, value_name = "SIZE",
          default_value_t = Size(Tuning::default().stream_window))]
    window: Size,
    /// Bytes this end may have sent and not yet had acknowledged, per connection (e.g. 8M).
    #[arg(long, global = true, value_name = "SIZE",
          default_value_t = Size(Tuning::default().send_window))]
    send_window: Size,
    /// Largest UDP payload to send, when the path carries it (path MTU discovery finds out).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = Tuning::default().max_packet,
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_PACKET)..=i64::from(MAX_PACKET)))]
    max_packet: u16,
}

impl TuningArgs {
    pub(super) fn tuning(&self) -> Tuning {
        Tuning {
            congestion: self.congestion,
            stream_window: self.window.0,
            send_window: self.send_window.0,
            max_packet: self.max_packet,
        }
    }
}

impl ServeArgs {
    pub(super) fn limits(&self) -> Limits {
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

/// A size given on the command line, shown the way it is typed (`16M`, not 16777216).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size(u64);

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_size(text).map(Size)
    }
}

impl std::fmt::Display for Size {
    /// The largest suffix that shows it exactly: 16M, 1536K, 1000.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
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
pub(super) struct ConnectArgs {
    /// The server: HOST:PORT, HOST (port 4433), [IPv6]:PORT, or a NAME saved as [host.NAME]
    /// in the qft home's config.toml (with its key and settings; flags given here win).
    pub(super) target: String,
    /// Trust and record a server seen for the first time; a changed key is still refused.
    #[arg(long, global = true)]
    pub(super) accept_new: bool,
    /// Trust exactly this server key (as printed by the server), ignoring known hosts.
    #[arg(long, global = true, value_name = "SHA256:...")]
    pub(super) fingerprint: Option<Fingerprint>,
    /// Errors only: no progress bars, no line per file, no summary (--json still prints its
    /// records).
    #[arg(short, long, global = true)]
    pub(super) quiet: bool,
    /// At the prompt: every download replaces existing local files (`get -f` asks it for one).
    #[arg(short, long)]
    pub(super) force: bool,
    /// Local address to connect from: ADDR or ADDR:PORT (e.g. 127.0.0.2, to spread load over
    /// several loopback addresses).
    #[arg(long, global = true, value_name = "ADDR", value_parser = parse_bind)]
    pub(super) bind: Option<SocketAddr>,
    /// Seconds to wait for the server to answer the connection (at least 1).
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) timeout: u64,
    /// Seconds the server may send (or take) nothing in the middle of a command, whether a
    /// response or a block of a file, before that command fails as stalled (as the server's
    /// own --stall-timeout).
    #[arg(long, global = true, value_name = "SECS",
          default_value_t = crate::client::DEFAULT_STALL_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) stall_timeout: u64,
    /// Print results as JSON lines (fields documented in the README).
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// The most file bytes per second this client moves, all transfers together (as rsync's
    /// --bwlimit; 10M is 10 MiB/s, 500K, 1G).
    #[arg(long, global = true, value_name = "RATE", value_parser = crate::rate::parse_limit)]
    pub(super) bwlimit: Option<u64>,
    /// Compress file bodies (zstd) where the server can and the data shrinks: text, logs,
    /// databases over a slow link. Files already compressed (.zip, .jpg...) and data that does
    /// not shrink go as they are.
    #[arg(short = 'C', long, global = true)]
    pub(super) compress: bool,
    /// At the prompt: transfers to run at once, each on its own stream (`get`/`put -j` for one
    /// command).
    #[arg(short, long, value_name = "N", default_value_t = DEFAULT_JOBS as u16,
          value_parser = jobs_range())]
    pub(super) jobs: u16,
    #[command(subcommand)]
    pub(super) action: Option<Action>,
    #[command(flatten)]
    pub(super) tuning: TuningArgs,
}

#[derive(Debug, Subcommand)]
pub(super) enum Action {
    /// List files (in DIR, or the top).
    #[command(visible_alias = "ls")]
    List {
        /// A directory on the server.
        dir: Option<String>,
    },
    /// Download files into the current directory (or -o; `-o -` writes one file to stdout).
    #[command(visible_alias = "download")]
    Get {
        /// Names on the server; quote wildcards ('*.log') to match them against its listing.
        #[arg(required = true)]
        names: Vec<String>,
        /// Where to write: a file name for one download, or a directory (made if missing).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Copy directories with everything in them, into a directory of the same name.
        #[arg(short, long)]
        recursive: bool,
        /// Replace existing local files (without it, one already identical is skipped).
        #[arg(short, long)]
        force: bool,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Upload local files; each is stored under its file name (in -o, or a last DIR/);
    /// `put - --name NAME` stores what stdin gives.
    #[command(visible_alias = "upload")]
    Put {
        /// Local files (wildcards the shell left alone are expanded here); a last argument
        /// ending in / that is no local path is the remote directory to store into.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Send directories with everything in them (symlinks are skipped).
        #[arg(short, long)]
        recursive: bool,
        /// Where to store on the server: a directory (several files, -r, a trailing /, or one
        /// that exists), or one file's remote name.
        #[arg(short, long, value_name = "REMOTE")]
        output: Option<String>,
        /// For `put -` (stdin): the remote name to store what it gives as.
        #[arg(long, value_name = "NAME", conflicts_with = "output")]
        name: Option<String>,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Delete files on the server.
    #[command(visible_alias = "rm")]
    Delete {
        /// Names on the server; quoted wildcards match files, never directories.
        #[arg(required = true)]
        names: Vec<String>,
        /// Delete directories with everything in them.
        #[arg(short, long)]
        recursive: bool,
        /// With -r: do not ask (needed when not at a terminal).
        #[arg(short, long, requires = "recursive")]
        yes: bool,
    },
    // Managing the server's names, and sync.
    /// Make directories on the server.
    Mkdir {
        /// Directories to make.
        #[arg(required = true)]
        names: Vec<String>,
        /// Make missing parents too; one already there is fine.
        #[arg(short, long)]
        parents: bool,
    },
    /// Remove empty directories on the server.
    Rmdir {
        /// Directories to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Rename a file or directory on the server (into TO if it is a directory); never replaces
    /// a file.
    #[command(visible_alias = "mv")]
    Rename {
        /// The name now.
        from: String,
        /// The new name, or a directory to move it into.
        to: String,
    },
    /// Show size, time, permissions and (when known, or with --sha256) the SHA-256.
    Stat {
        /// Names on the server; quoted wildcards match files.
        #[arg(required = true)]
        names: Vec<String>,
        /// Have the server read the file for its SHA-256 if it does not know it.
        #[arg(long)]
        sha256: bool,
    },
    /// Print the SHA-256 of files on the server as `sha256sum` does (check copies with
    /// `sha256sum -c`).
    Sum {
        /// Names on the server; quoted wildcards match files.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Make DST hold what SRC holds: new and changed files sent (their times kept), the same
    /// ones skipped; one side remote, written with a leading ':' (`sync ./photos :photos`,
    /// `sync :photos ./photos`; ':' alone is the top).
    Sync {
        /// Where to copy from: a local directory, or :DIR on the server.
        src: String,
        /// What to make hold the same: :DIR on the server, or a local directory.
        dst: String,
        /// Delete what DST has and SRC does not (never excluded names).
        #[arg(long)]
        delete: bool,
        /// Print what would be done; change nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Compare files by SHA-256 (the server's where it knows it) instead of size and time.
        #[arg(short, long)]
        checksum: bool,
        /// Keep permission bits too (never setuid, setgid or sticky).
        #[arg(long)]
        perms: bool,
        /// Leave out names matching GLOB (repeatable): without '/' a name at any depth, with one
        /// the path from the top; a trailing '/' matches directories only.
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Read --exclude patterns from FILE, one a line ('#' starts a comment).
        #[arg(long, value_name = "FILE")]
        exclude_from: Vec<PathBuf>,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
    },
    /// Show how much more the server can store (its free space as uploads see it).
    Df,
    /// Make a share link to a file or directory, for a browser or `qft get LINK` (needs the
    /// admin permission and a server started with --web); --list the links, --revoke one.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["name", "list", "revoke"])))]
    Share {
        /// The file or directory on the server.
        name: Option<String>,
        /// How long the link works (e.g. 30m, 1h, 7d; at most 30d).
        #[arg(long, value_name = "TIME", default_value = "1d", value_parser = crate::client::parse_expiry)]
        expires: Duration,
        /// A drop box: the link uploads new files into the directory, and can neither list nor
        /// download.
        #[arg(long)]
        upload_only: bool,
        /// Transfers (downloads or uploads) the link allows in all.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        uses: Option<u64>,
        /// The page's address as the link's holder reaches it (an https proxy in front of the
        /// server, say). Default: this server's host at its port.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// List the server's links.
        #[arg(long, conflicts_with_all = ["name", "revoke"])]
        list: bool,
        /// Revoke the link with this ID (as --list shows it).
        #[arg(long, value_name = "ID", conflicts_with = "name")]
        revoke: Option<String>,
    },
    /// Show the server's command reference.
    Help,
    /// Stop the server gracefully (needs the admin permission).
    Shutdown,
}

fn jobs_range() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..=i64::from(crate::client::session::MAX_JOBS))
}

/// What a transfer keeps besides the bytes (get, put).
#[derive(Debug, Args)]
pub(super) struct KeepArgs {
    /// Keep the modification time (as scp -p).
    #[arg(short = 'p', long)]
    preserve: bool,
    /// Keep the permission bits (never setuid, setgid or sticky).
    #[arg(long)]
    perms: bool,
}

impl From<KeepArgs> for Keep {
    fn from(args: KeepArgs) -> Self {
        Keep {
            time: args.preserve,
            perms: args.perms,
        }
    }
}

impl Action {
    /// `-j` given to this command, if it takes one.
    pub(super) fn jobs(&self) -> Option<u16> {
        match self {
            Action::Get { jobs, .. } | Action::Put { jobs, .. } | Action::Sync { jobs, .. } => {
                *jobs
            }
            _ => None,
        }
    }

    /// What clap cannot check: `sync` with exactly one remote side.
    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Action::Sync {
                src, dst, exclude, ..
            } => {
                SyncSpec::new(src, dst)?;
                crate::client::sync::Excludes::new(exclude).map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

impl Cli {
    /// What clap cannot check, as a usage error.
    pub(super) fn check(&self) -> Result<(), clap::Error> {
        let Mode::Connect(ConnectArgs {
            action: Some(action),
            ..
        }) = &self.mode
        else {
            return Ok(());
        };
        action.check().map_err(|why| {
            use clap::CommandFactory;
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{why}\n"))
                .format(&mut Cli::command())
        })
    }
}

impl From<Action> for Command {
    fn from(action: Action) -> Self {
        match action {
            Action::List { dir } => Command::List {
                dir: dir.unwrap_or_default(),
            },
            Action::Get {
                names,
                output,
                recursive,
                force,
                keep,
                ..
            } => Command::Get {
                names,
                output,
                recursive,
                force,
                keep: keep.into(),
            },
            Action::Put {
                paths,
                recursive,
                output,
                keep,
                name,
                ..
            } => Command::Put {
                paths,
                recursive,
                into: String::new(),
                // `--name` is `-o NAME` said for stdin, which has no name of its own.
                output: output.or(name),
                keep: keep.into(),
            },
            Action::Df => Command::Df,
            Action::Delete {
                names,
                recursive: false,
                ..
            } => Command::Delete { names },
            // Managing the server's names, and sync.
            Action::Delete { names, yes, .. } => Command::DeleteTree { names, yes },
            Action::Mkdir { names, parents } => Command::Mkdir { names, parents },
            Action::Rmdir { names } => Command::Rmdir { names },
            Action::Rename { from, to } => Command::Rename { from, to },
            Action::Stat { names, sha256 } => Command::Stat {
                names,
                digest: sha256,
            },
            Action::Sum { names } => Command::Sum {
                names,
                into: String::new(),
            },
            Action::Sync {
                src,
                dst,
                delete,
                dry_run,
                checksum,
                perms,
                exclude,
                exclude_from,
                ..
            } => {
                // Checked already ([`Cli::check`]); a spec that is wrong anyway is refused when
                // it runs.
                let base = SyncSpec::new(&src, &dst).unwrap_or_else(|_| SyncSpec {
                    src: Side::Local(src.into()),
                    dst: Side::Local(dst.into()),
                    ..SyncSpec::new(".", ":").expect("one remote side")
                });
                Command::Sync(SyncSpec {
                    delete,
                    dry_run,
                    checksum,
                    perms,
                    excludes: exclude,
                    exclude_from,
                    ..base
                })
            }
            Action::Share { list: true, .. } => Command::Share(ShareCommand::List),
            Action::Share {
                revoke: Some(id), ..
            } => Command::Share(ShareCommand::Revoke { id }),
            Action::Share {
                name,
                expires,
                upload_only,
                uses,
                url,
                ..
            } => Command::Share(ShareCommand::Create {
                // clap requires one of name, --list, --revoke.
                name: name.unwrap_or_default(),
                expires,
                upload_only,
                uses,
                url,
            }),
            Action::Help => Command::Help,
            Action::Shutdown => Command::Shutdown,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct FingerprintArgs {
    /// Print the fingerprint of this certificate (PEM) instead.
    #[arg(long, value_name = "PEM")]
    pub(super) cert: Option<PathBuf>,
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    text.parse().map_err(|_| {
        format!("'{text}' is not ADDR:PORT (e.g. 0.0.0.0:4433 or [::]:4433) or a port")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_sizes_are_shown_as_they_are_typed() {
        assert_eq!(Size(16 << 20).to_string(), "16M");
        assert_eq!(Size(1536 << 10).to_string(), "1536K");
        assert_eq!(Size(3 << 40).to_string(), "3T");
        assert_eq!(Size(1000).to_string(), "1000");
        assert_eq!(Size(0).to_string(), "0");
        for size in [Size(16 << 20), Size(1000), Size(5 << 30)] {
            assert_eq!(size.to_string().parse::<Size>().unwrap(), size);
        }
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("20G").unwrap(), 20 << 30);
        for bad in ["", "G", "1.5G", "12X", "-1", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
