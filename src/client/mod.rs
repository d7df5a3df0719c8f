//! The client: a verified connection ([`Client`]) and the operations on it, plus the two ways a
//! person drives it: a [`session::Session`] runs [`command::Command`]s, read from the
//! [`prompt`] or given once on the command line.
//!
//! `connect` reaches the server, decides whether to trust it and waits out a busy one. The
//! operations, one direction each: `download` and `upload` (one file each, resumable, over
//! the `stream` helpers; a download's local partial is [`resume`], and every download ends in
//! `receive`, which `qft get LINK` shares; what a file keeps besides its bytes is [`keep`]), `list`, `delete`, `help` here, and `manage` (mkdir, rmdir, rename, stat,
//! delete a tree, walk); their failures are `error`'s [`ClientError`].
//!
//! Around the session: `batch` plans and runs many transfers in parallel (patterns from
//! [`pattern`], trees from `tree`, stdin and stdout from [`pipe`]), [`sync`] keeps a tree in
//! step with another, `names` runs the commands on the server's names (mkdir, mv, stat, sum,
//! rm -r), `share` makes, lists and revokes share links through the server (admin),
//! [`output`] prints results ([`json`] and [`display`] shape them), [`progress`] draws
//! the bars, and the prompt has `complete` (tab completion), `local` (lls, lcd, lpwd) and
//! [`remote_path`] (cd, pwd). [`config`] reads the host aliases of `config.toml`.
//!
//! The walk of `get NAME` at the prompt: [`prompt`] reads the line → [`command`] parses it →
//! [`session`] runs it → `batch` plans the job and runs it → `download` sends the request, agrees
//! on pieces with the local partial ([`crate::pieces`]) → `receive` receives into it and checks
//! the trailer → [`resume`] renames it into place.

mod batch;
mod bundle;
pub mod command;
mod complete;
pub mod config;
mod connect;
pub mod display;
mod download;
mod editor;
mod error;
pub mod json;
pub mod keep;
mod local;
mod manage;
mod names;
pub mod output;
pub mod pattern;
pub mod pipe;
pub mod progress;
pub mod prompt;
mod receive;
pub mod remote_path;
pub mod resume;
pub mod session;
mod share;
mod stream;
pub mod sync;
mod tree;
mod upload;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{RecvStream, SendStream};

pub use connect::{Target, Trust, TrustError, DEFAULT_PORT};
pub use error::ClientError;
pub use keep::Keep;
pub(crate) use receive::receive_file;
pub use share::{parse_expiry, ShareCommand, SharedLink};

use crate::protocol::{close, write_frame, CommandHelp, Entry, ErrorCode, Request, Response};
use crate::tls::Fingerprint;
use stream::{response, safe, unexpected};

/// The most entries a client accepts in one listing: a bound on what a server can make it hold.
pub const MAX_LIST_ENTRIES: usize = 1_000_000;
/// The most name bytes a client accepts in one listing (a million maximal names would be 4 GB).
pub const MAX_LIST_BYTES: usize = 64 << 20;

/// What a finished transfer moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    /// The remote name.
    pub name: String,
    /// The local path.
    pub path: PathBuf,
    /// Bytes moved.
    pub bytes: u64,
    /// SHA-256 of the bytes, verified by both ends.
    pub sha256: [u8; 32],
    /// Wall time.
    pub elapsed: Duration,
    /// Where this transfer started (bytes an earlier, interrupted one had already moved).
    pub resumed_from: u64,
}

/// How much more a server can store ([`Client::space`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes uploads may still use (its free space less its reserve); `None` where the
    /// server's storage cannot tell (an S3 bucket has no fixed size).
    pub available: Option<u64>,
    /// The largest upload it accepts, if it has a limit.
    pub max_upload: Option<u64>,
}

/// Settings for [`Client::connect`]; [`ConnectConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// Where the server is.
    pub target: Target,
    /// How to decide whether to trust it.
    pub trust: Trust,
    /// Who this client is to servers that check (`None`: present no certificate).
    pub identity: Option<crate::tls::Identity>,
    /// How long to wait for each address to answer.
    pub timeout: Duration,
    /// Congestion control, windows and packet size.
    pub tuning: crate::tuning::Tuning,
    /// The local address to send from (`None`: any, chosen by the system).
    pub bind: Option<SocketAddr>,
    /// How long any response, or any block of a body, may take to arrive (or a block of an
    /// upload to be taken) before the command fails as stalled: a server that sends part of
    /// an answer and then nothing must not hold the client forever.
    pub stall_timeout: Duration,
    /// How long in all to keep trying again when the server says it is busy (its connection
    /// limits are reached); zero: take the first answer.
    pub busy_wait: Duration,
    /// Told each time the client waits for a busy server: its reason and the wait.
    pub on_busy: Option<fn(&str, Duration)>,
    /// The most bytes per second file bodies move, all transfers together (`--bwlimit`).
    pub bwlimit: Option<u64>,
    /// Ask for compressed bodies (`-C`), where the server can and the file is worth it.
    pub compress: bool,
}

/// How long a response or a block may take by default: the server's own stall timeout.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl ConnectConfig {
    /// `target`, trusted as `trust`, with no identity and the default timeouts; a busy server's
    /// refusal is taken as the answer.
    pub fn new(target: Target, trust: Trust) -> Self {
        ConnectConfig {
            target,
            trust,
            identity: None,
            timeout: Duration::from_secs(10),
            tuning: crate::tuning::Tuning::default(),
            bind: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            busy_wait: Duration::ZERO,
            on_busy: None,
            bwlimit: None,
            compress: false,
        }
    }
}

/// A verified connection to a qft server. Each operation opens its own stream, so they can run
/// concurrently on one `Client`; clones share the one connection (parallel transfers run as tasks
/// that each hold a clone).
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    /// The server's key, if this connection recorded it in known hosts (first use).
    pub newly_recorded: Option<Fingerprint>,
    /// The stream opened to learn that the server admitted the connection, for the first
    /// command to use.
    first: Arc<Mutex<Option<(SendStream, RecvStream)>>>,
    /// How long a response or a block may take ([`ConnectConfig::stall_timeout`]).
    stall: Duration,
    /// Set once a command's failure was reported as the connection's end ([`Client::explain`]),
    /// so that the front end does not say it a second time ([`Client::close_explained`]).
    close_explained: Arc<std::sync::atomic::AtomicBool>,
    /// Transfers that would leave a partial if cancelled ([`Client::take_kept`]).
    running: resume::Running,
    /// The bandwidth limit all transfers share ([`ConnectConfig::bwlimit`]; empty: none).
    limits: Arc<[crate::rate::Limiter]>,
    /// Ask for compressed bodies ([`ConnectConfig::compress`]).
    compress: bool,
    /// The server's host as it was given (a share link's page is on it).
    host: String,
    /// The server answered a bundle of uploads with Unsupported: files go one by one.
    no_bundles: Arc<std::sync::atomic::AtomicBool>,
}

impl Client {
    /// Connects and verifies the server's identity; nothing is sent before that succeeds. A
    /// busy server is tried again within [`ConnectConfig::busy_wait`]; a refusal (busy, not
    /// authorized) is reported by the first command.
    pub async fn connect(config: &ConnectConfig) -> Result<Self, ClientError> {
        let connected = connect::connect(config).await?;
        Ok(Client {
            endpoint: connected.endpoint,
            conn: connected.conn,
            newly_recorded: connected.newly_recorded,
            first: Arc::new(Mutex::new(connected.first)),
            stall: config.stall_timeout,
            close_explained: Arc::default(),
            running: resume::Running::default(),
            limits: config
                .bwlimit
                .map(crate::rate::Limiter::new)
                .into_iter()
                .collect(),
            compress: config.compress,
            host: config.target.host.clone(),
            no_bundles: Arc::default(),
        })
    }

    /// The server's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// The local UDP address the connection uses now.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Moves the connection to a new local socket (a new network, a new address): QUIC
    /// migrates the connection and transfers in flight carry on, which no TCP-based tool can do.
    pub fn rebind(&self, socket: std::net::UdpSocket) -> io::Result<()> {
        self.endpoint.rebind(socket)
    }

    /// UDP bytes this connection sent and received so far: what crossed the network, QUIC's
    /// own overhead included (what compression saves shows here).
    pub fn wire_bytes(&self) -> (u64, u64) {
        let stats = self.conn.stats();
        (stats.udp_tx.bytes, stats.udp_rx.bytes)
    }

    /// Why the connection ended, if it has: one sentence for a person.
    pub fn closed(&self) -> Option<String> {
        self.conn.close_reason().map(|e| error::closed_sentence(&e))
    }

    /// After a command was cancelled (Ctrl-C): the partials its transfers left to resume, so the
    /// person can be told they are there. Each is told once.
    pub fn take_kept(&self) -> Vec<resume::Kept> {
        self.running.take()
    }

    /// Whether a failed command was already reported as the connection's end: then the end
    /// needs no line of its own (a server shutting down under a command is said once).
    pub fn close_explained(&self) -> bool {
        self.close_explained
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) async fn open(
        &self,
        request: &Request,
    ) -> Result<(SendStream, RecvStream), ClientError> {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (mut send, recv) = match first {
            Some(streams) => streams,
            None => self
                .conn
                .open_bi()
                .await
                .map_err(|e| ClientError::Interrupted(e.to_string()))?,
        };
        write_frame(&mut send, request).await?;
        Ok((send, recv))
    }

    /// Opens a stream for a request that sends nothing more.
    async fn ask(&self, request: &Request) -> Result<RecvStream, ClientError> {
        let (mut send, recv) = self.open(request).await?;
        let _ = send.finish();
        Ok(recv)
    }

    /// Lists `dir` ("" for the root). Names the server sends are checked like any other name.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>, ClientError> {
        self.explain(self.list_inner(dir).await)
    }

    async fn list_inner(&self, dir: &str) -> Result<Vec<Entry>, ClientError> {
        if !dir.is_empty() {
            safe(dir)?;
        }
        let mut recv = self.ask(&Request::List { dir: dir.into() }).await?;
        let mut all = Vec::new();
        let mut bytes = 0usize;
        loop {
            match response(&mut recv, self.stall).await? {
                Response::ListPage { entries, last } => {
                    bytes += entries.iter().map(|e| e.name.len()).sum::<usize>();
                    if all.len() + entries.len() > MAX_LIST_ENTRIES || bytes > MAX_LIST_BYTES {
                        return Err(ClientError::Protocol(format!(
                            "a listing of more than {MAX_LIST_ENTRIES} entries or {MAX_LIST_BYTES} bytes of names"
                        )));
                    }
                    for entry in &entries {
                        if entry.name.contains('/') {
                            return Err(ClientError::Protocol("a listed name contains '/'".into()));
                        }
                        safe(&entry.name)?;
                    }
                    all.extend(entries);
                    if last {
                        return Ok(all);
                    }
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// The server's command reference.
    pub async fn help(&self) -> Result<Vec<CommandHelp>, ClientError> {
        self.explain(self.help_inner().await)
    }

    async fn help_inner(&self) -> Result<Vec<CommandHelp>, ClientError> {
        let mut recv = self.ask(&Request::Help).await?;
        match response(&mut recv, self.stall).await? {
            Response::Help { commands } => Ok(commands),
            other => Err(unexpected(&other)),
        }
    }

    /// How much more the server can store (`df`). A server older than this request says it
    /// does not know it, and the error says so.
    pub async fn space(&self) -> Result<Space, ClientError> {
        let asked = async {
            let mut recv = self.ask(&Request::Space).await?;
            match response(&mut recv, self.stall).await {
                Ok(Response::Space {
                    available,
                    max_upload,
                }) => Ok(Space {
                    available,
                    max_upload,
                }),
                Err(ClientError::Remote {
                    code: ErrorCode::Unsupported,
                    ..
                }) => Err(ClientError::Remote {
                    code: ErrorCode::Unsupported,
                    message: "this server has no df: it is older than this client".into(),
                }),
                Err(e) => Err(e),
                Ok(other) => Err(unexpected(&other)),
            }
        };
        self.explain(asked.await)
    }

    /// Deletes a file on the server.
    pub async fn delete(&self, name: &str) -> Result<(), ClientError> {
        self.explain(self.delete_inner(name).await)
    }

    /// Asks the server to stop gracefully (needs the admin permission).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let attempt = async {
            let mut recv = self.ask(&Request::Shutdown).await?;
            match response(&mut recv, self.stall).await? {
                Response::ShuttingDown => Ok(()),
                other => Err(unexpected(&other)),
            }
        };
        self.explain(attempt.await)
    }

    async fn delete_inner(&self, name: &str) -> Result<(), ClientError> {
        let name = safe(name)?;
        let mut recv = self
            .ask(&Request::Delete {
                name: name.to_string(),
            })
            .await?;
        match response(&mut recv, self.stall).await? {
            Response::Deleted => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// A failure caused by the connection's end says why it ended: the server's refusal, or
    /// its reason for closing (a shutdown), instead of a stream error.
    fn explain<T>(&self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        let Err(e @ (ClientError::Interrupted(_) | ClientError::Protocol(_))) = result else {
            return result;
        };
        let Some(ended) = self.conn.close_reason() else {
            return Err(e);
        };
        self.close_explained
            .store(true, std::sync::atomic::Ordering::Relaxed);
        match ended {
            quinn::ConnectionError::ApplicationClosed(c)
                if [close::NOT_AUTHORIZED, close::BUSY]
                    .map(u64::from)
                    .contains(&c.error_code.into_inner()) =>
            {
                let reason = crate::paths::sanitize(&String::from_utf8_lossy(&c.reason));
                Err(ClientError::Refused(reason))
            }
            other => Err(ClientError::Closed(error::closed_sentence(&other))),
        }
    }

    /// LOGOUT: closes the connection cleanly and waits briefly for the server to hear it.
    pub async fn close(self) {
        // What tuning needs to see (path MTU, round trip, losses, congestion events): `-vv`.
        tracing::debug!(stats = ?self.conn.stats().path, "connection statistics");
        let rtt = self.conn.rtt();
        self.conn.close(close::NORMAL.into(), b"logout");
        // The close goes out at once; lingering lets it be sent again in answer to what the
        // server had in flight. Not the whole draining period quinn waits for (three probe
        // timeouts, about 80 ms even on loopback, most of it the peer's allowed ACK delay):
        // every one-shot command would pay it, and a 1 GiB transfer on loopback takes 1.6 s.
        let linger = (rtt * 2 + Duration::from_millis(10)).min(Duration::from_secs(2));
        let _ = tokio::time::timeout(linger, self.endpoint.wait_idle()).await;
    }
}
