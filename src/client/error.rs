//! Why a client operation failed: one sentence for a person each, and a stable code for scripts.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::TrustError;
use crate::paths::NameError;
use crate::protocol::{ErrorCode, FrameError};
use crate::tls::TlsSetupError;

/// Why a client operation failed: each is one sentence for a person.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target is not `HOST[:PORT]`.
    #[error("'{0}' is not a server address of the form HOST:PORT")]
    BadTarget(String),
    /// `user@host`, as ssh takes it: qft has no user names.
    #[error(
        "qft has no user names: a server knows its clients by their key ('qft id' prints \
             yours); connect to '{host}' without '{user}@'"
    )]
    UserInTarget {
        /// What came before the `@`, sanitized.
        user: String,
        /// The rest, sanitized.
        host: String,
    },
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
    /// The server sent (or took) nothing for the stall timeout in the middle of a command.
    #[error("the server stopped answering: nothing moved for {} s", .0.as_secs_f64())]
    Stalled(std::time::Duration),
    /// The connection ended under a command: the server shut down or dropped it, or the path
    /// went silent. The sentence says which ([`closed_sentence`]).
    #[error("{0}")]
    Closed(String),
    /// The server closed the connection with a reason: this client is not authorized, or the
    /// server is at a connection limit.
    #[error("the server refused this client: {0}")]
    Refused(String),
    /// A command was given in a way that cannot work (`get -o -` of several files, `put -`
    /// without a name...).
    #[error("{0}")]
    Usage(String),
    /// A download to stdout went wrong after bytes were written there: they cannot be taken
    /// back, so the output must be thrown away, and the person is told so plainly.
    #[error(
        "the output on stdout is bad: {why}; the {} of '{name}' already written cannot be \
         taken back, so do not use that output",
        indicatif::HumanBytes(*.written)
    )]
    BadOutput {
        /// The remote name, sanitized.
        name: String,
        /// Bytes written to stdout before it went wrong.
        written: u64,
        /// What went wrong.
        why: String,
        /// The code of what went wrong ([`ClientError::code`]).
        code: &'static str,
    },
    /// A local file would be replaced.
    #[error("{} already exists; use --force to replace it", shown(.0))]
    Exists(PathBuf),
    /// The local disk filled up while downloading.
    #[error("no space left on this machine to write {}; nothing was kept", shown(.0))]
    NoSpace(PathBuf),
    /// A local file operation failed.
    #[error("{}: {}", shown(path), crate::fsutil::describe_io(source))]
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
    #[error("{}: {reason}", shown(path))]
    Unsafe {
        /// The local path.
        path: PathBuf,
        /// Why, one phrase.
        reason: String,
    },
}

/// A local path as shown in an error: it is often made of names a server chose.
fn shown(path: &Path) -> String {
    crate::paths::sanitize(&path.display().to_string())
}

impl ClientError {
    /// A stable, machine-readable name for this failure (the `code` of a JSON error record):
    /// the server's code for a refusal, a client-side name otherwise. Documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::BadTarget(_) | ClientError::UserInTarget { .. } => "bad_target",
            ClientError::Resolve { .. } => "resolve",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Trust(_) => "trust",
            ClientError::Tls(_) => "tls",
            ClientError::Remote { code, .. } => remote_code(*code),
            ClientError::InvalidName { .. } => "invalid_name",
            ClientError::HashMismatch(_) => "hash_mismatch",
            ClientError::Protocol(_) => "protocol",
            // A closed connection interrupts whatever ran on it: the code scripts already know.
            ClientError::Interrupted(_) | ClientError::Closed(_) => "interrupted",
            ClientError::Stalled(_) => "stalled",
            ClientError::Exists(_) => "exists",
            ClientError::Local { .. } => "local",
            ClientError::NoMatch { .. } => "no_match",
            ClientError::BadPattern { .. } => "bad_pattern",
            ClientError::Unsafe { .. } => "unsafe_path",
            ClientError::Refused(_) => "refused",
            ClientError::NoSpace(_) => "no_space_local",
            ClientError::Usage(_) => "usage",
            ClientError::BadOutput { code, .. } => code,
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
        ErrorCode::Exists => "exists_remote",
        ErrorCode::NotEmpty => "not_empty",
        ErrorCode::NotAtomic => "not_atomic",
        ErrorCode::NotEnabled => "not_enabled",
        ErrorCode::Other(_) => "remote",
    }
}

impl ClientError {
    /// The key the server presented, for a failure to trust it (the `fingerprint` of a JSON
    /// error record: a script can check it and pin it).
    pub fn fingerprint(&self) -> Option<crate::tls::Fingerprint> {
        match self {
            ClientError::Trust(TrustError::Unknown { fingerprint, .. }) => Some(*fingerprint),
            ClientError::Trust(
                TrustError::Changed { presented, .. } | TrustError::PinMismatch { presented, .. },
            ) => Some(*presented),
            _ => None,
        }
    }

    pub(super) fn local(path: &Path) -> impl FnOnce(io::Error) -> ClientError + '_ {
        move |source| ClientError::Local {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why a connection ended, as one sentence for a person: the server's own reason when it gave
/// one (a server shutting down says so), otherwise what the transport saw.
pub(super) fn closed_sentence(e: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    match e {
        E::ApplicationClosed(c) => {
            let reason = crate::paths::sanitize(&String::from_utf8_lossy(&c.reason));
            match reason.is_empty() {
                true => "the server closed the connection".to_owned(),
                false => format!("the server closed the connection ({reason})"),
            }
        }
        E::TimedOut => "the connection timed out: the server stopped answering".to_owned(),
        E::Reset => "the server reset the connection (it may have restarted)".to_owned(),
        E::LocallyClosed => "the connection was closed".to_owned(),
        other => format!("the connection was lost: {other}"),
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
