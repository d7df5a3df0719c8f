//! `qft connect`: the client's identity, the connection with the first-use trust question
//! (asked as ssh does), then one command or the prompt, and Ctrl-C turned into exit 130.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;

use super::args::{ConnectArgs, KnownHostsArgs};
use super::exit;
use crate::client::output::{Format, Output};
use crate::client::progress::Progress;
use crate::client::session::Session;
use crate::client::{prompt, Client, ClientError, ConnectConfig, Target, Trust, TrustError};
use crate::home::qft_home;
use crate::tls::{Identity, KnownHosts, CLIENT_IDENTITY_FILE, KNOWN_HOSTS_FILE};

/// Connects, runs the command given (or the prompt), and returns the exit status.
pub(super) async fn connect(args: ConnectArgs) -> u8 {
    let format = Format::detect(args.json);
    // Before there is a session there are no bars to lift; a failure is still reported as the
    // session reports one (with --json, as a record too).
    let no_bars = Progress::new(false);
    let early = Output {
        progress: &no_bars,
        format,
        quiet: args.quiet,
    };
    let target = match Target::parse(&args.target) {
        Ok(target) => target,
        Err(e) => {
            early.failure(None, &e);
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
    let trust = Trust {
        pin: args.fingerprint,
        known_hosts: Some(known_hosts.clone()),
        accept_new: args.accept_new,
    };
    let mut config = ConnectConfig {
        identity: Some(identity),
        timeout: Duration::from_secs(args.timeout),
        stall_timeout: Duration::from_secs(args.stall_timeout),
        bind: args.bind,
        tuning: args.tuning.tuning(),
        busy_wait: BUSY_WAIT,
        on_busy: Some(say_busy),
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
    let jobs = args
        .action
        .as_ref()
        .and_then(|a| a.jobs())
        .unwrap_or(args.jobs);
    let session = Session {
        client,
        progress: Progress::new(!args.quiet),
        format,
        force: args.force,
        quiet: args.quiet,
        jobs: usize::from(jobs),
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
