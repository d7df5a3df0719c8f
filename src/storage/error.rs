//! Why a storage operation failed, and what the client is told: messages name only the client's
//! relative name, never a path on the server, and each maps to one wire code.

use std::io;

use indicatif::HumanBytes;

use crate::protocol::ErrorCode;

/// Why a storage operation failed. Messages name only the client's relative name, never a path
/// on the server.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such file or directory.
    #[error("'{0}' does not exist")]
    NotFound(String),
    /// A directory where a file was expected.
    #[error("'{0}' is a directory")]
    IsADirectory(String),
    /// Not a directory where one was expected.
    #[error("'{0}' is not a directory")]
    NotADirectory(String),
    /// Not a regular file (a device, a FIFO...).
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
    /// The name is the private area.
    #[error("'{0}' is reserved by the server")]
    Reserved(String),
    /// The same client is already uploading this file on another stream.
    #[error("an upload of '{0}' from this client is already running")]
    Busy(String),
    /// A newer attempt of the same client took this upload over while this one waited.
    #[error("a newer upload of '{0}' from this client took over")]
    Superseded(String),
    /// A symlink leads outside the served directory.
    #[error("'{0}' leads outside the served directory")]
    Escapes(String),
    /// The filesystem refused.
    #[error("the server is not allowed to access '{0}'")]
    PermissionDenied(String),
    /// The disk is full.
    #[error("no space left on the server")]
    NoSpace,
    /// An upload that would not fit: the free space, less what running uploads were promised
    /// and the reserve the server keeps, is smaller than its size.
    #[error(
        "no space left on the server for {}: it has {} free ({} of it promised to uploads \
         in progress) and keeps {} in reserve",
        HumanBytes(*.size), HumanBytes(*.free), HumanBytes(*.promised), HumanBytes(*.keep)
    )]
    NoRoom {
        /// Bytes asked for.
        size: u64,
        /// Bytes free on the disk.
        free: u64,
        /// Bytes running uploads announced and have not written yet.
        promised: u64,
        /// Bytes the server keeps free.
        keep: u64,
    },
    /// A component of the name is longer than the storage can hold.
    #[error("'{name}' has a component longer than {max} bytes, the most this server can store")]
    NameTooLong {
        /// The client's name.
        name: String,
        /// The longest component the storage takes.
        max: usize,
    },
    /// The server holds as many unfinished resumable uploads as it keeps (for this client, or
    /// in all): this one can still go as a plain upload.
    #[error("the server keeps no more unfinished uploads {0}; send '{1}' without resuming")]
    TooManyPartials(&'static str, String),
    /// Anything else; logged in full, shown briefly.
    #[error("the server could not access '{name}'")]
    Io {
        /// The client's name for the file.
        name: String,
        /// The underlying error, for the server's log only.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// Classifies an io error on `name` (the client's name for it).
    pub fn from_io(name: &str, e: io::Error) -> Self {
        let name = name.to_owned();
        match e.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound(name),
            io::ErrorKind::IsADirectory => StorageError::IsADirectory(name),
            io::ErrorKind::NotADirectory => StorageError::NotADirectory(name),
            io::ErrorKind::PermissionDenied => StorageError::PermissionDenied(name),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageError::NoSpace,
            _ => StorageError::Io { name, source: e },
        }
    }

    /// The wire code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::IsADirectory(_) => ErrorCode::IsADirectory,
            StorageError::NotADirectory(_) => ErrorCode::NotADirectory,
            StorageError::NotAFile(_) => ErrorCode::NotAFile,
            StorageError::Reserved(_) | StorageError::Escapes(_) => ErrorCode::InvalidName,
            StorageError::Busy(_) | StorageError::Superseded(_) => ErrorCode::BadRequest,
            StorageError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            StorageError::NoSpace | StorageError::NoRoom { .. } => ErrorCode::NoSpace,
            StorageError::NameTooLong { .. } => ErrorCode::InvalidName,
            // What makes the client fall back to a plain upload, which leaves nothing behind.
            StorageError::TooManyPartials(..) => ErrorCode::Unsupported,
            StorageError::Io { .. } => ErrorCode::Internal,
        }
    }
}
