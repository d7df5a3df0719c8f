//! The client: a verified connection ([`Client`]) and the operations on it, plus the two ways a
//! person drives it: a [`session::Session`] runs [`command::Command`]s, read from the
//! [`prompt`] or given once on the command line.
//!
//! Around the session: `batch` plans and runs many transfers in parallel (patterns from
//! [`pattern`], trees from `tree`), [`json`] and [`display`] shape the output, [`progress`] draws
//! the bars, and the prompt has `complete` (tab completion), `local` (lls, lcd, lpwd) and
//! [`remote_path`] (cd, pwd).

mod batch;
pub mod command;
mod complete;
mod connect;
pub mod display;
pub mod json;
mod local;
pub mod output;
pub mod pattern;
pub mod progress;
pub mod prompt;
pub mod remote_path;
pub mod resume;
pub mod session;
mod tree;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use quinn::{RecvStream, SendStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use connect::{Target, Trust, TrustError, DEFAULT_PORT};

use crate::fsutil::is_full;
use crate::paths::{NameError, SafeName};
use crate::protocol::{
    close, read_frame, write_frame, CommandHelp, Entry, ErrorCode, FrameError, Request, Response,
    Trailer, MIN_CHUNK,
};
use crate::tls::{Fingerprint, TlsSetupError};
use crate::transfer::{receive_file, CopyError};

/// The most entries a client accepts in one listing: a bound on what a server can make it hold.
pub const MAX_LIST_ENTRIES: usize = 1_000_000;
/// The most name bytes a client accepts in one listing (a million maximal names would be 4 GB).
pub const MAX_LIST_BYTES: usize = 64 << 20;

/// Why a client operation failed: each is one sentence for a person.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target is not `HOST[:PORT]`.
    #[error("'{0}' is not a server address of the form HOST:PORT")]
    BadTarget(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// No QUIC connection could be made.
    #[error("cannot connect to {addr}: {reason}")]
    Unreachable {
        /// The address tried last.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server's identity was not accepted.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The server refused the command.
    #[error("{message}")]
    Remote {
        /// The server's code.
        code: ErrorCode,
        /// The server's sentence (sanitized before it is shown).
        message: String,
    },
    /// A name is not acceptable (checked locally before sending, and on names the server sends).
    #[error("invalid name '{name}': {reason}")]
    InvalidName {
        /// The name, sanitized.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// The received bytes do not match the sender's SHA-256.
    #[error("verification failed for '{0}': the SHA-256 of the received data does not match; nothing was kept")]
    HashMismatch(String),
    /// The server broke the protocol.
    #[error("the server sent something unexpected: {0}")]
    Protocol(String),
    /// The connection or stream failed mid-command.
    #[error("the transfer was interrupted: {0}")]
    Interrupted(String),
    /// The server closed the connection with a reason: this client is not authorized, or the
    /// server is at a connection limit.
    #[error("the server refused this client: {0}")]
    Refused(String),
    /// A local file would be replaced.
    #[error("{} already exists; use --force to replace it", .0.display())]
    Exists(PathBuf),
    /// The local disk filled up while downloading.
    #[error("no space left on this machine to write {}; nothing was kept", .0.display())]
    NoSpace(PathBuf),
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Local {
        /// The local path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A wildcard pattern matched nothing.
    #[error("no {} file matches '{pattern}'", if *.remote { "remote" } else { "local" })]
    NoMatch {
        /// The pattern, sanitized.
        pattern: String,
        /// Whether it was matched against the server's listing (else the local disk).
        remote: bool,
    },
    /// A wildcard pattern cannot be used.
    #[error("bad pattern '{pattern}': {reason}")]
    BadPattern {
        /// The pattern, sanitized.
        pattern: String,
        /// Why, one phrase.
        reason: String,
    },
    /// A local path is unsafe or unsuitable to write under (a symlink, a file where a directory
    /// must be, a name the server would refuse).
    #[error("{}: {reason}", path.display())]
    Unsafe {
        /// The local path.
        path: PathBuf,
        /// Why, one phrase.
        reason: String,
    },
}

impl ClientError {
    /// A stable, machine-readable name for this failure (the `code` of a JSON error record):
    /// the server's code for a refusal, a client-side name otherwise. Documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::BadTarget(_) => "bad_target",
            ClientError::Resolve { .. } => "resolve",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Trust(_) => "trust",
            ClientError::Tls(_) => "tls",
            ClientError::Remote { code, .. } => remote_code(*code),
            ClientError::InvalidName { .. } => "invalid_name",
            ClientError::HashMismatch(_) => "hash_mismatch",
            ClientError::Protocol(_) => "protocol",
            ClientError::Interrupted(_) => "interrupted",
            ClientError::Exists(_) => "exists",
            ClientError::Local { .. } => "local",
            ClientError::NoMatch { .. } => "no_match",
            ClientError::BadPattern { .. } => "bad_pattern",
            ClientError::Unsafe { .. } => "unsafe_path",
            ClientError::Refused(_) => "refused",
            ClientError::NoSpace(_) => "no_space_local",
        }
    }
}

/// Names for the server's codes. Exhaustive on purpose: a new wire code must be given a name here.
fn remote_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::InvalidName => "invalid_name",
        ErrorCode::NotFound => "not_found",
        ErrorCode::IsADirectory => "is_a_directory",
        ErrorCode::NotADirectory => "not_a_directory",
        ErrorCode::PermissionDenied => "permission_denied",
        ErrorCode::NoSpace => "no_space",
        ErrorCode::HashMismatch => "hash_mismatch",
        ErrorCode::SizeMismatch => "size_mismatch",
        ErrorCode::Unsupported => "unsupported",
        ErrorCode::Internal => "internal",
        ErrorCode::NotAFile => "not_a_file",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::Other(_) => "remote",
    }
}

impl ClientError {
    fn local(path: &Path) -> impl FnOnce(io::Error) -> ClientError + '_ {
        move |source| ClientError::Local {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => ClientError::Interrupted(e.to_string()),
            FrameError::Closed | FrameError::Truncated => ClientError::Interrupted(e.to_string()),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

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

/// Settings for [`Client::connect`].
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
}

impl Client {
    /// Connects and verifies the server's identity; nothing is sent before that succeeds.
    pub async fn connect(config: &ConnectConfig) -> Result<Self, ClientError> {
        let (endpoint, conn, newly_recorded) = connect::connect(
            &config.target,
            &config.trust,
            config.identity.as_ref(),
            config.timeout,
            &config.tuning,
        )
        .await?;
        Ok(Client {
            endpoint,
            conn,
            newly_recorded,
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

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        self.conn.close_reason().map(|e| e.to_string())
    }

    pub(super) async fn open(
        &self,
        request: &Request,
    ) -> Result<(SendStream, RecvStream), ClientError> {
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| ClientError::Interrupted(e.to_string()))?;
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
            match response(&mut recv).await? {
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
        match response(&mut recv).await? {
            Response::Help { commands } => Ok(commands),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a file on the server.
    pub async fn delete(&self, name: &str) -> Result<(), ClientError> {
        self.explain(self.delete_inner(name).await)
    }

    /// Asks the server to stop gracefully (needs the admin permission).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let attempt = async {
            let mut recv = self.ask(&Request::Shutdown).await?;
            match response(&mut recv).await? {
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
        match response(&mut recv).await? {
            Response::Deleted => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Downloads `name` to `dest`. The data goes to a hidden temp file beside `dest`, which
    /// becomes `dest` only after the SHA-256 matched; an existing `dest` is replaced only with
    /// `overwrite`.
    pub async fn download(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        self.explain(self.download_inner(name, dest, overwrite, progress).await)
    }

    async fn download_inner(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let started = Instant::now();
        let name = safe(name)?;
        if !overwrite && dest.symlink_metadata().is_ok() {
            return Err(ClientError::Exists(dest.to_path_buf()));
        }
        if let Some(report) = self
            .download_resumable(&name, dest, overwrite, progress)
            .await?
        {
            return Ok(report);
        }
        // A server without resuming: the plain exchange, through a temp file.
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut recv = self
            .ask(&Request::Download {
                name: name.to_string(),
            })
            .await?;
        let size = match response(&mut recv).await? {
            Response::FileHeader { size, .. } => size,
            other => return Err(unexpected(&other)),
        };
        // Hidden, marked as partial, and short enough that a long name still fits the limit.
        let stem: String = name.file_name().chars().take(32).collect();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(".qft-part")
            .permissions(crate::fsutil::new_file_permissions(dest))
            .tempfile_in(dir)
            .map_err(ClientError::local(dir))?;
        let mut file = tokio::fs::File::from_std(
            temp.as_file()
                .try_clone()
                .map_err(ClientError::local(dir))?,
        );
        progress.set_length(size);
        let received = receive_file(
            sha2::Sha256::default(),
            &mut recv,
            &mut file,
            size,
            None,
            progress,
        )
        .await
        .map_err(|e| match e {
            CopyError::Write(source) if is_full(&source) => {
                ClientError::NoSpace(dest.to_path_buf())
            }
            CopyError::Write(source) => ClientError::Local {
                path: dest.to_path_buf(),
                source,
            },
            other => ClientError::Interrupted(other.to_string()),
        })?;
        let trailer: Trailer = read_frame(&mut recv).await?;
        expect_end(&mut recv).await?;
        if trailer.sha256 != received {
            return Err(ClientError::HashMismatch(name.to_string()));
        }
        let full = |e: io::Error| match is_full(&e) {
            true => ClientError::NoSpace(dest.to_path_buf()),
            false => ClientError::Local {
                path: dest.to_path_buf(),
                source: e,
            },
        };
        file.flush().await.map_err(full)?;
        file.sync_all().await.map_err(full)?;
        let persisted = if overwrite {
            temp.persist(dest)
        } else {
            temp.persist_noclobber(dest)
        };
        persisted.map_err(|e| match e.error.kind() {
            io::ErrorKind::AlreadyExists => ClientError::Exists(dest.to_path_buf()),
            _ => ClientError::Local {
                path: dest.to_path_buf(),
                source: e.error,
            },
        })?;
        crate::fsutil::sync_dir(dir).map_err(ClientError::local(dir))?;
        Ok(TransferReport {
            name: name.to_string(),
            path: dest.to_path_buf(),
            bytes: size,
            sha256: received,
            elapsed: started.elapsed(),
            resumed_from: 0,
        })
    }

    /// Uploads the local file `path` as `name`. The server stores it only after its own SHA-256
    /// of what arrived matches ours.
    pub async fn upload(
        &self,
        path: &Path,
        name: &str,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        self.explain(self.upload_inner(path, name, progress).await)
    }

    async fn upload_inner(
        &self,
        path: &Path,
        name: &str,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let started = Instant::now();
        let name = safe(name)?;
        let (file, size, whole) = open_upload(path).await?;
        let request = Request::Upload {
            name: name.to_string(),
            size,
        };
        progress.set_length(size);
        let (sent, mut recv) = match whole {
            // Smaller than one resume piece: nothing a retry could keep, so the plain exchange,
            // with the body sent at once rather than after the server's Ready. One round trip
            // and one read per file: what many small files, above all over a long path, pay.
            Some(body) => {
                let (mut send, mut recv) = self.open(&request).await?;
                let sent = send_whole(&mut send, &mut recv, &body).await?;
                let _ = send.finish();
                progress.inc(size);
                ready(&mut recv).await?;
                (sent, recv)
            }
            None => {
                let mut file = tokio::fs::File::from_std(file);
                if let Some(report) = self
                    .upload_resumable(path, &name, &mut file, size, progress)
                    .await?
                {
                    return Ok(report);
                }
                // A server without resuming: the plain exchange, from the start of the file.
                tokio::io::AsyncSeekExt::seek(&mut file, io::SeekFrom::Start(0))
                    .await
                    .map_err(ClientError::local(path))?;
                let (mut send, mut recv) = self.open(&request).await?;
                ready(&mut recv).await?;
                let hasher = Default::default();
                let sent = send_body(
                    &mut file, &mut send, &mut recv, hasher, size, path, progress,
                )
                .await?;
                let _ = send.finish();
                (sent, recv)
            }
        };
        match response(&mut recv).await? {
            Response::Done { sha256 } if sha256 == sent => Ok(TransferReport {
                name: name.to_string(),
                path: path.to_path_buf(),
                bytes: size,
                sha256: sent,
                elapsed: started.elapsed(),
                resumed_from: 0,
            }),
            Response::Done { .. } => Err(ClientError::HashMismatch(name.to_string())),
            other => Err(unexpected(&other)),
        }
    }

    /// A failure caused by the server closing the connection says why it closed it.
    fn explain<T>(&self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        let Err(e @ (ClientError::Interrupted(_) | ClientError::Protocol(_))) = result else {
            return result;
        };
        match self.conn.close_reason() {
            Some(quinn::ConnectionError::ApplicationClosed(c)) => {
                let reason = crate::paths::sanitize(&String::from_utf8_lossy(&c.reason));
                let code = c.error_code.into_inner();
                if code == u64::from(close::NOT_AUTHORIZED) || code == u64::from(close::BUSY) {
                    Err(ClientError::Refused(reason))
                } else {
                    Err(ClientError::Interrupted(format!(
                        "the server closed the connection ({reason})"
                    )))
                }
            }
            _ => Err(e),
        }
    }

    /// LOGOUT: closes the connection cleanly and waits briefly for the server to hear it.
    pub async fn close(self) {
        // What tuning needs to see (path MTU, round trip, losses, congestion events): `-vv`.
        tracing::debug!(stats = ?self.conn.stats().path, "connection statistics");
        self.conn.close(close::NORMAL.into(), b"logout");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// Opens a file to upload: the file, its size, and, below [`MIN_CHUNK`], its content, all in
/// one blocking call (one hand-off to a thread per small file, not four).
async fn open_upload(path: &Path) -> Result<(std::fs::File, u64, Option<Vec<u8>>), ClientError> {
    let owned = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&owned)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let size = meta.len();
        if size >= MIN_CHUNK {
            return Ok((file, size, None));
        }
        // Exactly `size` bytes: a file that shrank since is caught here, one that grew is
        // sent as it was when measured, as the streamed path does.
        let mut body = vec![0; size as usize];
        io::Read::read_exact(&mut file, &mut body)
            .map_err(|e| io::Error::other(format!("changed while it was being read ({e})")))?;
        Ok((file, size, Some(body)))
    });
    match opened.await {
        Ok(result) => result.map_err(ClientError::local(path)),
        Err(e) => Err(ClientError::local(path)(io::Error::other(e))),
    }
}

/// Sends a body held in memory, then its trailer; returns its SHA-256. A write that fails
/// because the server stopped reading is reported with the server's reason.
async fn send_whole(
    send: &mut SendStream,
    recv: &mut RecvStream,
    body: &[u8],
) -> Result<[u8; 32], ClientError> {
    let sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(body).into();
    let written = match AsyncWriteExt::write_all(send, body).await {
        Ok(()) => write_frame(send, &Trailer { sha256 }).await,
        Err(e) => Err(FrameError::from(e)),
    };
    match written {
        Ok(()) => Ok(sha256),
        Err(e) => Err(server_reason(recv, e.into()).await),
    }
}

/// The reason a server that stopped reading gave on the other half of the stream, or `fallback`.
async fn server_reason(recv: &mut RecvStream, fallback: ClientError) -> ClientError {
    match response(recv).await {
        Err(remote @ ClientError::Remote { .. }) => remote,
        _ => fallback,
    }
}

/// Sends `len` bytes of `file` (from where it stands) continuing `hasher`, then the trailer
/// with the whole file's hash, which it returns. The caller finishes the stream. A write that
/// fails because the server stopped reading is reported with the server's reason.
pub(super) async fn send_body(
    file: &mut tokio::fs::File,
    send: &mut SendStream,
    recv: &mut RecvStream,
    hasher: sha2::Sha256,
    len: u64,
    path: &Path,
    progress: &ProgressBar,
) -> Result<[u8; 32], ClientError> {
    let sent = match crate::transfer::send_file(hasher, file, send, len, None, progress).await {
        Ok(digest) => digest,
        Err(CopyError::Write(e)) => {
            // The server stopped reading: it has said why on the other half of the stream.
            return Err(server_reason(recv, ClientError::Interrupted(e.to_string())).await);
        }
        Err(e) => {
            let _ = send.reset(close::ABORTED.into());
            return Err(ClientError::Local {
                path: path.to_path_buf(),
                source: io::Error::other(format!("changed while it was being read ({e})")),
            });
        }
    };
    if let Err(e) = write_frame(send, &Trailer { sha256: sent }).await {
        // As above: a refusal on the last block shows up here; the reason is on `recv`.
        return Err(server_reason(recv, e.into()).await);
    }
    Ok(sent)
}

fn safe(name: &str) -> Result<SafeName, ClientError> {
    SafeName::new(name).map_err(|reason| ClientError::InvalidName {
        name: crate::paths::sanitize(name),
        reason,
    })
}

/// Reads one response, turning an `Error` frame into [`ClientError::Remote`].
pub(super) async fn response(recv: &mut RecvStream) -> Result<Response, ClientError> {
    match read_frame::<Response, _>(recv).await? {
        Response::Error { code, message } => Err(ClientError::Remote {
            code,
            message: crate::paths::sanitize(&message),
        }),
        other => Ok(other),
    }
}

/// The server's go-ahead for an upload body, or its refusal.
async fn ready(recv: &mut RecvStream) -> Result<(), ClientError> {
    match response(recv).await? {
        Response::Ready => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// The stream must end after the trailer.
pub(super) async fn expect_end(recv: &mut RecvStream) -> Result<(), ClientError> {
    let mut extra = [0u8; 1];
    // Through AsyncRead: quinn's inherent `read` has a different signature.
    match AsyncReadExt::read(recv, &mut extra).await {
        Ok(0) => Ok(()),
        Ok(_) => Err(ClientError::Protocol(
            "data after the end of the file".into(),
        )),
        Err(e) => Err(ClientError::Interrupted(e.to_string())),
    }
}

pub(super) fn unexpected(response: &Response) -> ClientError {
    let kind = match response {
        Response::Error { .. } => "an error",
        Response::ListPage { .. } => "a listing",
        Response::FileHeader { .. } => "a file header",
        Response::Ready => "a ready signal",
        Response::Done { .. } => "an upload confirmation",
        Response::Deleted => "a delete confirmation",
        Response::Help { .. } => "a help text",
        Response::ShuttingDown => "a shutdown notice",
        Response::Held { .. } => "an upload's held pieces",
        Response::Prefix { .. } => "a download's prefix",
    };
    ClientError::Protocol(format!("{kind} out of place"))
}
