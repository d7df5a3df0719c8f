//! The command line: clap types, their conversion into library configs, and exit codes. Nothing
//! below this module sees clap.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::client::command::Command;
use crate::client::progress::Progress;
use crate::client::session::{Format, Session, DEFAULT_JOBS};
use crate::client::{prompt, Client, ClientError, ConnectConfig, Target, Trust, TrustError};
use crate::home::qft_home;
use crate::server::{Access, Limits, Server, ServerConfig, Storage};
use crate::tls::{
    Fingerprint, Identity, KnownHosts, CLIENT_IDENTITY_FILE, KNOWN_HOSTS_FILE, SERVER_IDENTITY_FILE,
};
use crate::tuning::{Congestion, Tuning, MAX_PACKET, MIN_PACKET};

/// Exit statuses, one table for the whole program.
pub mod exit {
    /// Everything asked for was done.
    pub const SUCCESS: u8 = 0;
    /// An operation failed: not found, refused, verification failed, trust refused, no connection.
    pub const FAILURE: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// Stopped by Ctrl-C.
    pub const INTERRUPTED: u8 = 130;
}

/// qft: secure file transfer over QUIC.
#[derive(Debug, Parser)]
#[command(name = "qft", version, about, propagate_version = true)]
struct Cli {
    /// More log detail (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve a directory over QUIC.
    Serve(ServeArgs),
    /// Connect to a server: an interactive prompt, or one command and exit.
    Connect(ConnectArgs),
    /// Print the fingerprint of this machine's server identity (made on first use).
    Fingerprint(FingerprintArgs),
    /// Print this client's fingerprint (made on first use), for a server's authorized-clients file.
    Id,
    /// Print a shell completion script (e.g. `qft completions bash > ~/.local/share/bash-completion/completions/qft`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The directory to serve.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to listen on: ADDR:PORT, or just PORT (0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "[::]:4433", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Write the bound port here (number and newline) once the server accepts connections.
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,
    /// Use this certificate (PEM) instead of the kept identity.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) for --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Admit only the clients listed in FILE, with the permissions it grants
    /// (lines: SHA256:... read,write,delete,admin comment). Re-read for every connection.
    #[arg(long, value_name = "FILE")]
    authorized_clients: Option<PathBuf>,
    /// Serve listings and downloads only.
    #[arg(long)]
    read_only: bool,
    /// Connections at once, all clients together.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Connections at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
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
    /// Make clients prove their address with a QUIC Retry before any handshake work
    /// (for servers on the internet; costs one round trip).
    #[arg(long)]
    retry: bool,
    #[command(flatten)]
    tuning: TuningArgs,
}

/// How the network is driven, on either end; the defaults are in [`Tuning::default`], chosen
/// from the measurements in BENCHMARKS.md.
#[derive(Debug, Args)]
struct TuningArgs {
    /// Congestion controller for what this end sends: bbr, cubic or newreno.
    #[arg(long, global = true, value_name = "NAME", default_value_t = Tuning::default().congestion)]
    congestion: Congestion,
    /// Bytes one transfer may have in flight toward this end (its stream window, e.g. 16M):
    /// a transfer moves at most this per round trip.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size,
          default_value_t = Tuning::default().stream_window)]
    window: u64,
    /// Bytes this end may have sent and not yet had acknowledged, per connection (e.g. 8M).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size,
          default_value_t = Tuning::default().send_window)]
    send_window: u64,
    /// Largest UDP payload to send, when the path carries it (path MTU discovery finds out).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = Tuning::default().max_packet,
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_PACKET)..=i64::from(MAX_PACKET)))]
    max_packet: u16,
}

impl TuningArgs {
    fn tuning(&self) -> Tuning {
        Tuning {
            congestion: self.congestion,
            stream_window: self.window,
            send_window: self.send_window,
            max_packet: self.max_packet,
        }
    }
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
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
            ..Limits::default()
        }
    }
}

/// Parses a size: a number of bytes, or with a K, M, G or T suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
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

#[derive(Debug, Args)]
#[command(disable_help_subcommand = true)]
struct ConnectArgs {
    /// The server: HOST:PORT, HOST (port 4433) or [IPv6]:PORT.
    target: String,
    /// Trust and record a server seen for the first time; a changed key is still refused.
    #[arg(long, global = true)]
    accept_new: bool,
    /// Trust exactly this server key (as printed by the server), ignoring known hosts.
    #[arg(long, global = true, value_name = "SHA256:...")]
    fingerprint: Option<Fingerprint>,
    /// No progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Replace existing local files when downloading.
    #[arg(short, long, global = true)]
    force: bool,
    /// Seconds to wait for the server to answer.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    timeout: u64,
    /// Print results as JSON lines (fields documented in the README).
    #[arg(long, global = true)]
    json: bool,
    /// Transfers to run at once, each on its own stream.
    #[arg(short, long, global = true, value_name = "N", default_value_t = DEFAULT_JOBS as u16,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    tuning: TuningArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List files (in DIR, or the top).
    #[command(visible_alias = "ls")]
    List {
        /// A directory on the server.
        dir: Option<String>,
    },
    /// Download files into the current directory (or -o).
    #[command(visible_alias = "download")]
    Get {
        /// Names on the server; quote wildcards ('*.log') to match them against its listing.
        #[arg(required = true)]
        names: Vec<String>,
        /// Where to write: a file name for one download, or a directory.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Copy directories with everything in them, into a directory of the same name.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Upload local files; each is stored under its file name.
    #[command(visible_alias = "upload")]
    Put {
        /// Local files (wildcards the shell left alone are expanded here).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Send directories with everything in them (symlinks are skipped).
        #[arg(short, long)]
        recursive: bool,
    },
    /// Delete files on the server.
    #[command(visible_alias = "rm")]
    Delete {
        /// Names on the server; quoted wildcards match files, never directories.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show the server's command reference.
    Help,
    /// Stop the server gracefully (needs the admin permission).
    Shutdown,
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
            } => Command::Get {
                names,
                output,
                recursive,
            },
            Action::Put { paths, recursive } => Command::Put {
                paths,
                recursive,
                into: String::new(),
            },
            Action::Delete { names } => Command::Delete { names },
            Action::Help => Command::Help,
            Action::Shutdown => Command::Shutdown,
        }
    }
}

#[derive(Debug, Args)]
struct FingerprintArgs {
    /// Print the fingerprint of this certificate (PEM) instead.
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    text.parse().map_err(|_| {
        format!("'{text}' is not ADDR:PORT (e.g. 0.0.0.0:4433 or [::]:4433) or a port")
    })
}

/// Parses the command line, runs it, and returns the exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qft: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.mode {
            Mode::Serve(args) => {
                init_logging(cli.verbose, "info");
                report(serve(args).await)
            }
            Mode::Connect(args) => {
                init_logging(cli.verbose, "warn");
                connect(args).await
            }
            Mode::Fingerprint(args) => {
                init_logging(cli.verbose, "warn");
                report(fingerprint(args))
            }
            Mode::Id => {
                init_logging(cli.verbose, "warn");
                report(
                    client_identity()
                        .map(|id| crate::client::display::emit(&id.fingerprint().to_string())),
                )
            }
            Mode::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "qft", &mut std::io::stdout());
                exit::SUCCESS
            }
        }
    });
    // Don't wait for blocked readers (a prompt's stdin) on the way out.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("qft: {e:#}");
            exit::FAILURE
        }
    }
}

fn init_logging(verbose: u8, default: &str) {
    let level = match verbose {
        0 => default,
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,qft={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let storage =
        Storage::open(&args.dir).with_context(|| format!("cannot serve {}", args.dir.display()))?;
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Identity::from_pem_files(cert, key)?,
        _ => Identity::load_or_create(
            &qft_home()
                .context("cannot find the qft home")?
                .join(SERVER_IDENTITY_FILE),
        )?,
    };
    let access = match &args.authorized_clients {
        Some(path) => Access::Authorized(path.clone()),
        None => Access::Open,
    };
    // Fail at start, not at the first client, if the list cannot be read.
    let (listed, warnings) = access.check().await?;
    for w in &warnings {
        tracing::warn!("authorized clients: ignoring {w}");
    }
    let mut config = ServerConfig {
        access,
        read_only: args.read_only,
        limits: args.limits(),
        tuning: args.tuning.tuning(),
        ..ServerConfig::new(storage, identity, args.listen)
    };
    let server = match Server::bind(config.clone()) {
        // The default "[::]" needs IPv6; on a host without it, fall back to IPv4 only.
        Err(_) if args.listen.ip().is_unspecified() && args.listen.is_ipv6() => {
            config.listen = SocketAddr::from(([0, 0, 0, 0], args.listen.port()));
            Server::bind(config.clone())?
        }
        other => other?,
    };
    let addr = server.local_addr()?;
    let fingerprint = server.fingerprint();
    match &config.access {
        Access::Open if !addr.ip().is_loopback() => tracing::warn!(
            "no --authorized-clients: anyone who can reach {addr} may list, upload, download and delete"
        ),
        Access::Authorized(path) => tracing::info!("{listed} authorized clients in {}", path.display()),
        Access::Open => {}
    }
    let host = match addr {
        a if a.ip().is_unspecified() && a.is_ipv4() => "127.0.0.1".to_string(),
        a if a.ip().is_unspecified() => "localhost".to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    crate::client::display::emit(&format!(
        "Serving {} on {addr}\nFingerprint: {fingerprint}\nConnect with: qft connect {host}:{} --fingerprint {fingerprint}",
        config.storage,
        addr.port()
    ));
    if let Some(path) = &args.port_file {
        write_port_file(path, addr.port())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    server.run(shutdown_signal()).await;
    Ok(())
}

/// Written whole through a rename, so a script polling for the file never reads half a number.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    use crate::fsutil::{write_atomic, Mode, Replace};
    let text = format!("{port}\n");
    write_atomic(
        path,
        text.as_bytes(),
        Replace::Yes,
        Mode::Private,
        "qft-port",
    )
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// This client's identity, made on first use and kept in the qft home.
fn client_identity() -> anyhow::Result<Identity> {
    let home = qft_home().context("cannot find the qft home")?;
    Ok(Identity::load_or_create(&home.join(CLIENT_IDENTITY_FILE))?)
}

fn fingerprint(args: FingerprintArgs) -> anyhow::Result<()> {
    let fingerprint = match &args.cert {
        Some(cert) => {
            let pem =
                std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
            use rustls::pki_types::pem::PemObject;
            let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).map_err(|_| {
                anyhow::anyhow!("{} does not hold a PEM certificate", cert.display())
            })?;
            Fingerprint::of_certificate(&der)
                .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", cert.display()))?
        }
        None => Identity::load_or_create(
            &qft_home()
                .context("cannot find the qft home")?
                .join(SERVER_IDENTITY_FILE),
        )?
        .fingerprint(),
    };
    crate::client::display::emit(&fingerprint.to_string());
    Ok(())
}

async fn connect(args: ConnectArgs) -> u8 {
    let format = Format::detect(args.json);
    // Before there is a session, a failure is reported here; with --json as a record too.
    let failed = |e: &ClientError| {
        eprintln!("qft: {e}");
        if format == Format::Json {
            crate::client::display::emit(&crate::client::json::Record::error(e, None).line());
        }
    };
    let target = match Target::parse(&args.target) {
        Ok(target) => target,
        Err(e) => {
            failed(&e);
            return exit::USAGE;
        }
    };
    let known_hosts = match qft_home() {
        Ok(home) => KnownHosts::new(home.join(KNOWN_HOSTS_FILE)),
        Err(e) => {
            eprintln!("qft: cannot find the qft home: {e}");
            return exit::FAILURE;
        }
    };
    let identity = match client_identity() {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("qft: {e:#}");
            return exit::FAILURE;
        }
    };
    let mut config = ConnectConfig {
        identity: Some(identity),
        target,
        trust: Trust {
            pin: args.fingerprint,
            known_hosts: Some(known_hosts.clone()),
            accept_new: args.accept_new,
        },
        timeout: Duration::from_secs(args.timeout),
        tuning: args.tuning.tuning(),
    };
    let client = match with_interrupt(open(&mut config, &known_hosts)).await {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            failed(&e);
            return exit::FAILURE;
        }
        None => return exit::INTERRUPTED,
    };
    if let Some(fp) = client.newly_recorded {
        eprintln!(
            "qft: recorded {} with key {fp} in {}",
            config.target.key(),
            known_hosts.path().display()
        );
    }
    let session = Session {
        client,
        progress: Progress::new(!args.quiet),
        format,
        force: args.force,
        jobs: usize::from(args.jobs),
    };
    let failed = match args.action {
        Some(action) => match with_interrupt(session.run(&action.into())).await {
            Some(failed) => failed,
            None => return exit::INTERRUPTED,
        },
        None => match prompt::run(&session).await {
            prompt::Ended {
                interrupted: true, ..
            } => return exit::INTERRUPTED,
            prompt::Ended { failed, .. } => failed,
        },
    };
    session.client.close().await;
    if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILURE
    }
}

/// Connects; for an unknown server on a terminal, shows the key and asks, as ssh does.
async fn open(config: &mut ConnectConfig, known_hosts: &KnownHosts) -> Result<Client, ClientError> {
    match Client::connect(config).await {
        Err(ClientError::Trust(TrustError::Unknown { host, fingerprint }))
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() =>
        {
            eprintln!("The server {host} is not known yet.\nIts key fingerprint is {fingerprint}.");
            if !ask_yes("Trust it and remember it? [y/N] ").await {
                return Err(ClientError::Trust(TrustError::Unknown {
                    host,
                    fingerprint,
                }));
            }
            config.trust.pin = Some(fingerprint);
            let mut client = Client::connect(config).await?;
            known_hosts
                .add(&host, &fingerprint)
                .map_err(|source| ClientError::Local {
                    path: known_hosts.path().to_path_buf(),
                    source,
                })?;
            client.newly_recorded = Some(fingerprint);
            Ok(client)
        }
        other => other,
    }
}

async fn ask_yes(question: &str) -> bool {
    eprint!("{question}");
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await;
    matches!(answer, Ok(Ok(line)) if matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Runs `work` unless Ctrl-C comes first (then `None`: dropping `work` removes its temp files).
async fn with_interrupt<T>(work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        value = work => Some(value),
        _ = tokio::signal::ctrl_c() => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
