//! `qft connect`: the settings (a host alias's from config.toml, under the flags given), the
//! client's identity, the connection with the first-use trust question (asked as ssh does), then
//! one command or the prompt, and Ctrl-C turned into exit 130 with word of what it kept.

use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::args::{ConnectArgs, KnownHostsArgs};
use super::exit;
use crate::client::command::Command;
use crate::client::config::{Config, Host, CONFIG_FILE};
use crate::client::output::{Format, Output};
use crate::client::progress::Progress;
use crate::client::session::Session;
use crate::client::{pipe, prompt, Client, ClientError, ConnectConfig, Target, Trust, TrustError};
use crate::home::qft_home;
use crate::paths::sanitize;
use crate::tls::{Fingerprint, Identity, KnownHosts, CLIENT_IDENTITY_FILE, KNOWN_HOSTS_FILE};
use crate::tuning::Tuning;

/// Connects, runs the command given (or the prompt), and returns the exit status. `given` says
/// which flags were on the command line: they win over a host's settings in config.toml.
pub(super) async fn connect(args: ConnectArgs, given: Given) -> u8 {
    let format = Format::detect(args.json);
    // Before there is a session there are no bars to lift; a failure is still reported as the
    // session reports one (with --json, as a record too).
    let no_bars = Progress::new(false);
    let early = Output {
        progress: &no_bars,
        format,
        quiet: args.quiet,
        data_on_stdout: false,
    };
    let home = match qft_home() {
        Ok(home) => home,
        Err(e) => {
            eprintln!("qft: cannot find the qft home: {e}");
            return exit::FAILURE;
        }
    };
    let config = match Config::load(&home.join(CONFIG_FILE)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("qft: {e}");
            return exit::FAILURE;
        }
    };
    let host = config.host(&args.target);
    let settings = Settings::new(&args, &given, host);
    let command = args.action.map(Command::from);
    // A pipe that cannot work (`put -` without a name) is a usage mistake, found before
    // connecting.
    if let Some(Err(e)) = command.as_ref().map(pipe::check) {
        early.failure(None, &e);
        return exit::USAGE;
    }
    let target = match Target::parse(&settings.address) {
        Ok(target) => target,
        Err(e) if host.is_some() => {
            let file = home.join(CONFIG_FILE);
            eprintln!(
                "qft: {} [host.{}]: {e}",
                file.display(),
                sanitize(&args.target)
            );
            return exit::FAILURE;
        }
        Err(e) => {
            early.failure(None, &e);
            return exit::USAGE;
        }
    };
    let known_hosts = KnownHosts::new(home.join(KNOWN_HOSTS_FILE));
    let identity = match host_identity(host, &home, &args.target) {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("qft: {}", super::one_sentence(&e));
            return exit::FAILURE;
        }
    };
    let trust = Trust {
        pin: settings.pin,
        known_hosts: Some(known_hosts.clone()),
        accept_new: args.accept_new,
    };
    let mut config = ConnectConfig {
        identity: Some(identity),
        timeout: Duration::from_secs(settings.timeout),
        stall_timeout: Duration::from_secs(settings.stall_timeout),
        bind: args.bind,
        tuning: settings.tuning,
        busy_wait: BUSY_WAIT,
        on_busy: Some(say_busy),
        bwlimit: settings.bwlimit,
        compress: settings.compress,
        ..ConnectConfig::new(target, trust)
    };
    let client = match with_interrupt(open(&mut config, &known_hosts)).await {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            early.failure(None, &e);
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
        quiet: args.quiet,
        jobs: usize::from(settings.jobs),
    };
    let failed = match command {
        Some(command) => match with_interrupt(session.run(&command)).await {
            Some(failed) => failed,
            None => {
                session.output().cancelled(&session.client.take_kept());
                return exit::INTERRUPTED;
            }
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

/// Which of `connect`'s flags were given on the command line, rather than left at their
/// defaults: those win over a host's settings in config.toml.
#[derive(Debug, Clone, Default)]
pub(super) struct Given {
    ids: Vec<&'static str>,
}

impl Given {
    /// The flags a host's settings may also set, by their clap ids (the field names).
    const SAVED: [&'static str; 7] = [
        "jobs",
        "timeout",
        "stall_timeout",
        "congestion",
        "window",
        "send_window",
        "max_packet",
    ];

    /// The flag's value if it was on the command line, else the host's setting, else the
    /// flag's default.
    fn pick<T>(&self, id: &str, flag: T, setting: Option<T>) -> T {
        match self.ids.contains(&id) {
            true => flag,
            false => setting.unwrap_or(flag),
        }
    }
}

impl From<Option<&clap::ArgMatches>> for Given {
    /// From `connect`'s matches, where clap also records the global flags given after its
    /// subcommand (`qft connect box get x --window 1M`).
    fn from(matches: Option<&clap::ArgMatches>) -> Self {
        let on_command_line = |id: &str| {
            matches.and_then(|m| m.value_source(id)) == Some(clap::parser::ValueSource::CommandLine)
        };
        Given {
            ids: Given::SAVED
                .into_iter()
                .filter(|id| on_command_line(id))
                .collect(),
        }
    }
}

/// What to connect to and how: the command line's flags, over the host's saved settings
/// (config.toml), over the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// The server's address (the target as typed, or the host's).
    address: String,
    /// The key to trust exactly.
    pin: Option<Fingerprint>,
    /// Transfers at once.
    jobs: u16,
    /// Seconds to wait for the server.
    timeout: u64,
    /// Seconds a command may stall.
    stall_timeout: u64,
    /// The network settings.
    tuning: Tuning,
    /// File bytes per second, all transfers together.
    bwlimit: Option<u64>,
    /// Whether to offer compressed bodies.
    compress: bool,
}

impl Settings {
    fn new(args: &ConnectArgs, given: &Given, host: Option<&Host>) -> Self {
        let default = Host::default();
        let saved = host.unwrap_or(&default);
        let pick = |id, flag, setting| given.pick(id, flag, setting);
        let flags = args.tuning.tuning();
        let tuning = Tuning {
            congestion: given.pick("congestion", flags.congestion, saved.congestion),
            stream_window: pick("window", flags.stream_window, saved.window),
            send_window: pick("send_window", flags.send_window, saved.send_window),
            max_packet: given.pick("max_packet", flags.max_packet, saved.max_packet),
        };
        // A command's own -j (get/put) first.
        let jobs = args.action.as_ref().and_then(|a| a.jobs());
        Settings {
            address: host.map_or_else(|| args.target.clone(), |h| h.address.clone()),
            pin: args.fingerprint.or(saved.fingerprint),
            jobs: jobs.unwrap_or_else(|| given.pick("jobs", args.jobs, saved.jobs)),
            timeout: pick("timeout", args.timeout, saved.timeout),
            stall_timeout: pick("stall_timeout", args.stall_timeout, saved.stall_timeout),
            tuning,
            // Neither flag has a "none" value: the command line adds to what the host says.
            bwlimit: args.bwlimit.or(saved.bwlimit),
            compress: args.compress || saved.compress == Some(true),
        }
    }
}

/// How long `qft connect` keeps trying a server that says it is busy.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// A busy server is waited for, and the person told so.
fn say_busy(reason: &str, wait: Duration) {
    eprintln!(
        "qft: the server is busy ({reason}); trying again in {:.1} s",
        wait.as_secs_f64()
    );
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

/// Asks on stderr and reads the answer from stdin: only "y" or "yes" is a yes.
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

/// The identity a host's settings name (made on first use, as the default one is), or else
/// this client's own.
fn host_identity(host: Option<&Host>, home: &Path, alias: &str) -> anyhow::Result<Identity> {
    match host.and_then(|h| h.identity_path(home)) {
        Some(path) => Identity::load_or_create(&path).with_context(|| {
            format!(
                "cannot use the identity {} of [host.{}]",
                path.display(),
                sanitize(alias)
            )
        }),
        None => client_identity(),
    }
}

/// This client's identity, made on first use and kept in the qft home.
pub(super) fn client_identity() -> anyhow::Result<Identity> {
    let home = qft_home().context("cannot find the qft home")?;
    Ok(Identity::load_or_create(&home.join(CLIENT_IDENTITY_FILE))?)
}

/// `qft known-hosts`: lists the recorded servers, or forgets one.
pub(super) fn known_hosts(args: KnownHostsArgs) -> anyhow::Result<()> {
    let home = qft_home().context("cannot find the qft home")?;
    let known = KnownHosts::new(home.join(KNOWN_HOSTS_FILE));
    match args.forget {
        Some(host) => {
            let key = Target::parse(&host)?.key();
            let removed = known
                .forget(&key)
                .with_context(|| format!("cannot update {}", known.path().display()))?;
            if removed == 0 {
                anyhow::bail!("{key} is not in {}", known.path().display());
            }
            eprintln!(
                "qft: forgot {key} ({removed} line{}) in {}",
                if removed == 1 { "" } else { "s" },
                known.path().display()
            );
        }
        None => match std::fs::read(known.path()) {
            Ok(bytes) => print!("{}", String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", known.path().display()))
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Mode};
    use clap::{CommandFactory, FromArgMatches};

    fn settings(line: &[&str], host: Option<&Host>) -> Settings {
        let matches = Cli::command().try_get_matches_from(line).unwrap();
        let Mode::Connect(args) = Cli::from_arg_matches(&matches).unwrap().mode else {
            panic!("not connect")
        };
        let given = Given::from(matches.subcommand_matches("connect"));
        Settings::new(&args, &given, host)
    }

    /// Host aliases: a flag given on the command line wins over the host's setting, which wins
    /// over the flag's default, wherever the flag is given (globals after the command too).
    #[test]
    fn regression_flags_win_over_a_hosts_saved_settings() {
        let host = Host {
            address: "10.0.0.5:4433".into(),
            jobs: Some(8),
            window: Some(32 << 20),
            send_window: Some(4 << 20),
            timeout: Some(5),
            congestion: Some(crate::tuning::Congestion::Cubic),
            bwlimit: Some(1 << 20),
            compress: Some(true),
            ..Host::default()
        };
        let saved = settings(&["qft", "connect", "box", "ls"], Some(&host));
        assert_eq!(saved.address, "10.0.0.5:4433");
        assert_eq!((saved.jobs, saved.timeout, saved.stall_timeout), (8, 5, 60));
        assert_eq!(saved.tuning.stream_window, 32 << 20);
        assert_eq!(saved.tuning.congestion, crate::tuning::Congestion::Cubic);
        assert_eq!((saved.bwlimit, saved.compress), (Some(1 << 20), true));
        let line = [
            "qft",
            "connect",
            "box",
            "--timeout",
            "7",
            "get",
            "x",
            "--window",
            "1M",
            "-j",
            "3",
        ];
        let given = settings(&line, Some(&host));
        assert_eq!((given.jobs, given.timeout), (3, 7));
        assert_eq!(given.tuning.stream_window, 1 << 20);
        assert_eq!(given.tuning.send_window, 4 << 20, "not given: the host's");
        let faster = settings(&["qft", "connect", "box", "--bwlimit", "2M"], Some(&host));
        assert_eq!(faster.bwlimit, Some(2 << 20), "the flag wins over the file");
        // A flag given with its default value is still given.
        let line = ["qft", "connect", "-j", "16", "--congestion", "bbr", "box"];
        let same = settings(&line, Some(&host));
        assert_eq!(same.jobs, 16);
        assert_eq!(same.tuning.congestion, crate::tuning::Congestion::Bbr);
        // No host: the target as typed, the flags as they are.
        let plain = settings(&["qft", "connect", "h:1"], None);
        assert_eq!(plain.address, "h:1");
        assert_eq!(plain.tuning, Tuning::default());
        assert_eq!((plain.bwlimit, plain.compress), (None, false));
    }
}
