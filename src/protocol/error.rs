//! Why a command failed, as it travels: [`ErrorCode`] and its numbering. The numbers, not the
//! variants' order, are the wire format: a code keeps its number for good, and a new one takes
//! the next free number.

use serde::{Deserialize, Serialize};

/// Why a command failed. Travels as a number so that a code added later decodes as
/// [`ErrorCode::Other`] on an older peer instead of breaking the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ErrorCode {
    /// The request was malformed or out of order.
    BadRequest,
    /// The name is not acceptable (see [`crate::paths`]).
    InvalidName,
    /// No such file or directory.
    NotFound,
    /// The name is a directory where a file was expected.
    IsADirectory,
    /// The name is not a directory where one was expected.
    NotADirectory,
    /// The server's filesystem refused the operation.
    PermissionDenied,
    /// The server's disk is full.
    NoSpace,
    /// The received bytes did not match the sender's SHA-256.
    HashMismatch,
    /// The body was longer or shorter than announced.
    SizeMismatch,
    /// The server does not know this request.
    Unsupported,
    /// Something failed on the server; details are in its log.
    Internal,
    /// The name is not a regular file (a device, a FIFO...).
    NotAFile,
    /// The upload is larger than the server accepts.
    TooLarge,
    /// The name is already taken (MakeDir without parents, Rename onto an existing name).
    Exists,
    /// The directory is not empty (RemoveDir).
    NotEmpty,
    /// The storage cannot do this in one step (renaming a directory on an object store).
    NotAtomic,
    /// The server was not started with what this needs (share links without `--web`).
    NotEnabled,
    /// A code this build does not know.
    Other(u16),
}

impl From<u16> for ErrorCode {
    fn from(n: u16) -> Self {
        use ErrorCode::*;
        match n {
            1 => BadRequest,
            2 => InvalidName,
            3 => NotFound,
            4 => IsADirectory,
            5 => NotADirectory,
            6 => PermissionDenied,
            7 => NoSpace,
            8 => HashMismatch,
            9 => SizeMismatch,
            10 => Unsupported,
            11 => Internal,
            12 => NotAFile,
            13 => TooLarge,
            14 => Exists,
            15 => NotEmpty,
            16 => NotAtomic,
            17 => NotEnabled,
            n => Other(n),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(c: ErrorCode) -> u16 {
        use ErrorCode::*;
        match c {
            BadRequest => 1,
            InvalidName => 2,
            NotFound => 3,
            IsADirectory => 4,
            NotADirectory => 5,
            PermissionDenied => 6,
            NoSpace => 7,
            HashMismatch => 8,
            SizeMismatch => 9,
            Unsupported => 10,
            Internal => 11,
            NotAFile => 12,
            TooLarge => 13,
            Exists => 14,
            NotEmpty => 15,
            NotAtomic => 16,
            NotEnabled => 17,
            Other(n) => n,
        }
    }
}
