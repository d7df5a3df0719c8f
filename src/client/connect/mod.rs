//! Reaching a server and deciding whether to trust it, before any command is sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{RecvStream, SendStream};
use tracing::debug;

use super::{ClientError, ConnectConfig};
use crate::protocol::close;
use crate::tls::{self, Fingerprint, FingerprintVerifier, KnownHosts};
use crate::tuning::{fit_receive_window, path_window};

/// The port a server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4433;

/// How a client decides to trust a server's key.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Accept exactly this key (`--fingerprint`); known hosts are then neither read nor written.
    pub pin: Option<Fingerprint>,
    /// The known-hosts file to check and record in.
    pub known_hosts: Option<KnownHosts>,
    /// Record an unknown server's key on first use (`--accept-new`); a changed key is still
    /// refused.
    pub accept_new: bool,
}

/// Why a server was not trusted. Each is a refusal: nothing was sent to the server.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The server is not in known hosts and nothing allowed recording it.
    #[error(
        "the server {host} is not known; its key fingerprint is {fingerprint}. \
         If that is the server you expect, run again with --accept-new to record it, \
         or with --fingerprint {fingerprint} to trust exactly this key"
    )]
    Unknown {
        /// The host as recorded in known hosts.
        host: String,
        /// The key the server presented.
        fingerprint: Fingerprint,
    },
    /// The server's key differs from the recorded one: possibly an impostor.
    #[error(
        "WARNING: the key of {host} has CHANGED: known hosts has {known} but the server presented {presented}. \
         Someone could be intercepting the connection, or the server's identity was replaced. \
         If you know the change is legitimate, run 'qft known-hosts --forget {host}' (or remove \
         line {line} of {}), then connect again",
        file.display()
    )]
    Changed {
        /// The host as recorded.
        host: String,
        /// The recorded key.
        known: Fingerprint,
        /// The key the server presented.
        presented: Fingerprint,
        /// The known-hosts file.
        file: PathBuf,
        /// The line that holds the recorded key.
        line: usize,
    },
    /// The server's key is not the one pinned with `--fingerprint`.
    #[error("the server {host} presented key {presented}, not the expected {expected}; refusing to connect")]
    PinMismatch {
        /// The host.
        host: String,
        /// The pinned key.
        expected: Fingerprint,
        /// The key the server presented.
        presented: Fingerprint,
    },
}

/// A `HOST:PORT`, `HOST` or `[V6]:PORT` target, split. The host keeps its spelling (lower-cased)
/// because known hosts records servers by the name the user used, as SSH does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, without brackets.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl Target {
    /// Parses a target as typed by a user.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadTarget(crate::paths::sanitize(text));
        // ssh habits: `user@host`. No host name or address has an '@'.
        if let Some((user, host)) = text.split_once('@') {
            return Err(ClientError::UserInTarget {
                user: crate::paths::sanitize(user),
                host: crate::paths::sanitize(host),
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match text.rsplit_once(':') {
                // More than one colon and no brackets: a bare IPv6 address.
                Some((h, _)) if h.contains(':') => (text, None),
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => DEFAULT_PORT,
        };
        Ok(Target {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The known-hosts key: `host:port`, with IPv6 addresses in brackets.
    pub fn key(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The most an address other than the last is given to answer.
const EARLIER_ADDRESS_WAIT: Duration = Duration::from_secs(2);

/// A verified connection the server answered: the endpoint, the connection, the key recorded in
/// known hosts if this was a first use, and the stream whose opening showed that the server
/// admitted the connection (`None` if it refused it, or took too long to say).
pub(super) struct Connected {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) conn: quinn::Connection,
    pub(super) newly_recorded: Option<Fingerprint>,
    pub(super) first: Option<(SendStream, RecvStream)>,
}

/// The longest wait between two tries at a busy server.
const MOST_BUSY_WAIT: Duration = Duration::from_secs(8);

/// Opens a verified QUIC connection to the target, trying each resolved address in turn; while
/// the server says it is busy, tries again after the wait it asks for (longer each time, with
/// jitter, so that many waiting clients do not all come back at once), within `busy_wait`.
pub(super) async fn connect(config: &ConnectConfig) -> Result<Connected, ClientError> {
    let target = &config.target;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|source| ClientError::Resolve {
            host: target.host.clone(),
            source,
        })?
        .collect();
    let started = Instant::now();
    let mut recorded = None;
    for refusals in 0u32.. {
        let (endpoint, conn, newly) = connect_any(&addrs, config).await?;
        recorded = recorded.or(newly);
        let first = match admission(&conn, config.timeout).await {
            Admission::Busy(reason) => {
                let wait = busy_backoff(&reason, refusals);
                if started.elapsed() + wait <= config.busy_wait {
                    match config.on_busy {
                        Some(notify) => notify(&reason, wait),
                        None => debug!("the server is busy ({reason}); trying again in {wait:?}"),
                    }
                    drop((conn, endpoint));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                None
            }
            Admission::Open(first) => first,
        };
        return Ok(Connected {
            endpoint,
            conn,
            newly_recorded: recorded,
            first,
        });
    }
    unreachable!("the loop returns")
}

/// What the server made of a fresh connection.
enum Admission {
    /// Admitted (with the stream that showed it), or closed for a reason the first command
    /// will report, or undecided for longer than the connect timeout (`None`).
    Open(Option<(SendStream, RecvStream)>),
    /// Over a connection limit: the server's reason, sanitized.
    Busy(String),
}

/// A qft server grants streams only to a connection it admits, so the first stream opens once
/// it has (an older server grants them at once, and refuses after).
async fn admission(conn: &quinn::Connection, wait: Duration) -> Admission {
    match tokio::time::timeout(wait, conn.open_bi()).await {
        Ok(Ok(streams)) => Admission::Open(Some(streams)),
        Ok(Err(quinn::ConnectionError::ApplicationClosed(c)))
            if c.error_code == close::BUSY.into() =>
        {
            Admission::Busy(crate::paths::sanitize(&String::from_utf8_lossy(&c.reason)))
        }
        _ => Admission::Open(None),
    }
}

/// The wait before try `refusals + 1` at a busy server: what it asked for (a second if it did
/// not say), doubled for each refusal in a row up to [`MOST_BUSY_WAIT`], plus up to half again
/// at random.
fn busy_backoff(reason: &str, refusals: u32) -> Duration {
    let asked = close::retry_after(reason).unwrap_or(Duration::from_secs(1));
    let base = asked
        .saturating_mul(1 << refusals.min(4))
        .min(MOST_BUSY_WAIT.max(asked));
    base + base.mul_f64(rand::random_range(0.0..0.5))
}

/// Tries `addrs` in order, each for up to the timeout: an address that does not answer is
/// skipped, but a trust refusal is final (the same server is behind every address of a name).
async fn connect_any(
    addrs: &[SocketAddr],
    config: &ConnectConfig,
) -> Result<(quinn::Endpoint, quinn::Connection, Option<Fingerprint>), ClientError> {
    let ConnectConfig {
        target,
        trust,
        timeout,
        tuning,
        ..
    } = config;
    let (identity, timeout) = (config.identity.as_ref(), *timeout);
    let host = target.key();
    let known = match (&trust.pin, &trust.known_hosts) {
        (None, Some(kh)) => kh.lookup(&host).map_err(|source| ClientError::Local {
            path: kh.path().to_path_buf(),
            source,
        })?,
        _ => None,
    };
    let expected = trust.pin.or(known.as_ref().map(|k| k.fingerprint));
    let accept_unknown = expected.is_none() && trust.accept_new;

    let mut last_error = None;
    for &addr in addrs {
        let verifier = Arc::new(FingerprintVerifier::new(
            expected,
            accept_unknown,
            tls::crypto_provider(),
        ));
        let seen = verifier.seen();
        let bind = match config.bind {
            Some(bind) if bind.is_ipv4() != addr.is_ipv4() => {
                last_error = Some(ClientError::Unreachable {
                    addr,
                    reason: format!("it cannot be reached from the local address {bind}"),
                });
                continue;
            }
            Some(bind) => bind,
            None if addr.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
            None => SocketAddr::from(([0u16; 8], 0)),
        };
        let mut endpoint = tuning
            .endpoint(bind, None)
            .map_err(|source| ClientError::Local {
                path: PathBuf::from(format!("(UDP socket on {bind})")),
                source,
            })?;
        // Bounded by the route to this address, so MTU discovery starts where the path is.
        let tuning = tuning.for_peer(addr);
        endpoint.set_default_client_config(tls::client_config(verifier, identity, &tuning)?);
        let server_name = server_name(&target.host);
        let attempt = async {
            endpoint
                .connect(addr, &server_name)
                .map_err(|e| ClientError::Unreachable {
                    addr,
                    reason: e.to_string(),
                })?
                .await
                .map_err(|e| ClientError::Unreachable {
                    addr,
                    reason: e.to_string(),
                })
        };
        // A name often has an address that goes nowhere (an IPv6 one on an IPv4-only server, say):
        // while others remain to try, do not give each one the whole timeout.
        let last = addrs.last() == Some(&addr);
        let wait = if last {
            timeout
        } else {
            timeout.min(EARLIER_ADDRESS_WAIT)
        };
        let result = match tokio::time::timeout(wait, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Unreachable {
                addr,
                reason: format!(
                    "no answer within {:.1} s; check that `qft serve` runs there and that UDP \
                     port {} is open on the way (firewalls often let only TCP through)",
                    wait.as_secs_f64(),
                    addr.port()
                ),
            }),
        };
        let presented = *seen.lock().unwrap_or_else(|p| p.into_inner());
        match (result, presented) {
            (Ok(conn), Some(presented)) => {
                conn.set_send_window(path_window(tuning.send_window, conn.rtt()));
                fit_receive_window(&conn, tuning.connection_window());
                if expected.is_none() {
                    if let Some(kh) = &trust.known_hosts {
                        // Locked while recording: it may wait for another client doing the same.
                        let path = kh.path().to_path_buf();
                        let (kh, recording) = (kh.clone(), host.clone());
                        tokio::task::spawn_blocking(move || kh.add(&recording, &presented))
                            .await
                            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                            .map_err(|source| ClientError::Local { path, source })?;
                        return Ok((endpoint, conn, Some(presented)));
                    }
                }
                return Ok((endpoint, conn, None));
            }
            (Ok(_), None) => unreachable!("a handshake cannot succeed without the verifier"),
            (Err(_), Some(presented)) if refused(expected, accept_unknown, presented) => {
                // The handshake reached the verifier and was refused: a trust decision, final.
                return Err(ClientError::Trust(trust_error(
                    &host, trust, known, presented,
                )));
            }
            (Err(e), _) => {
                debug!(%addr, "connect failed: {e}");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ClientError::Resolve {
        host: target.host.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
    }))
}

/// Whether [`FingerprintVerifier`] refused `presented` (as opposed to a handshake that failed for
/// another reason after the key was seen).
fn refused(expected: Option<Fingerprint>, accept_unknown: bool, presented: Fingerprint) -> bool {
    match expected {
        Some(expected) => expected != presented,
        None => !accept_unknown,
    }
}

fn trust_error(
    host: &str,
    trust: &Trust,
    known: Option<crate::tls::KnownHost>,
    presented: Fingerprint,
) -> TrustError {
    let host = host.to_owned();
    if let Some(expected) = trust.pin {
        return TrustError::PinMismatch {
            host,
            expected,
            presented,
        };
    }
    match (known, &trust.known_hosts) {
        (Some(k), Some(kh)) => TrustError::Changed {
            host,
            known: k.fingerprint,
            presented,
            file: kh.path().to_path_buf(),
            line: k.line,
        },
        _ => TrustError::Unknown {
            host,
            fingerprint: presented,
        },
    }
}

/// The TLS server name: the host if it is a valid DNS name or IP address, otherwise a placeholder
/// (the name is not what qft trusts; the key fingerprint is).
fn server_name(host: &str) -> String {
    match rustls::pki_types::ServerName::try_from(host) {
        Ok(_) => host.to_owned(),
        Err(_) => "qft".to_owned(),
    }
}

#[cfg(test)]
mod tests;
