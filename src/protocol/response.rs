//! What the server answers ([`Response`]), one frame at a time; which exchange each answer
//! belongs to is in the protocol's module doc.

use serde::{Deserialize, Serialize};

use super::{Entry, EntryInfo, ErrorCode, Message, ShareInfo, LIST_PAGE_ENTRIES, MAX_NAME_LEN};

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command failed; nothing was changed.
    Error {
        /// What kind of failure, for programs.
        code: ErrorCode,
        /// One sentence for a person; never contains a server-side absolute path.
        message: String,
    },
    /// Part of a directory listing.
    ListPage {
        /// At most [`LIST_PAGE_ENTRIES`] entries.
        entries: Vec<Entry>,
        /// True on the final page.
        last: bool,
    },
    /// A download's body follows.
    FileHeader {
        /// Exact number of body bytes that follow.
        size: u64,
        /// Modification time in seconds since the Unix epoch, when known.
        modified: Option<u64>,
    },
    /// The server accepts the upload: send the body.
    Ready,
    /// The upload is verified and stored under its name.
    Done {
        /// SHA-256 of what the server received and stored.
        sha256: [u8; 32],
    },
    /// The file is gone.
    Deleted,
    /// The server's command reference.
    Help {
        /// One entry per command, in display order.
        commands: Vec<CommandHelp>,
    },
    /// The server accepted SHUTDOWN and is stopping.
    ShuttingDown,
    /// What the server holds of a resumable upload.
    Held {
        /// Piece size the hashes are over.
        chunk: u64,
        /// SHA-256 of each whole piece held, in order; at most [`MAX_CHUNKS`](super::MAX_CHUNKS).
        hashes: Vec<[u8; 32]>,
    },
    /// A resumable download's file, and hashes of the pieces the client may already hold.
    Prefix {
        /// Exact length of the whole file.
        size: u64,
        /// Modification time in seconds since the Unix epoch, when known.
        modified: Option<u64>,
        /// Piece size the hashes are over.
        chunk: u64,
        /// SHA-256 of each whole piece of the file's first `min(have, size)` bytes.
        hashes: Vec<[u8; 32]>,
    },
    /// How much more the server can store: the answer to [`Request::Space`](super::Request::Space).
    Space {
        /// Bytes uploads may still use: the storage's free space less the server's reserve;
        /// `None` where the storage cannot tell (an S3 bucket has no fixed size).
        available: Option<u64>,
        /// The largest upload the server accepts, if it has a limit.
        max_upload: Option<u64>,
    },
    // Managing names, metadata and trees (see the module doc).
    /// The directory exists now.
    Made,
    /// The directory (RemoveDir) or the tree (DeleteTree) is gone.
    Removed {
        /// Files deleted (0 for RemoveDir).
        files: u64,
    },
    /// The entry has its new name.
    Renamed,
    /// A STAT answer.
    Info(EntryInfo),
    /// Part of a WALK.
    WalkPage {
        /// At most [`WALK_PAGE_ENTRIES`](super::WALK_PAGE_ENTRIES) entries.
        entries: Vec<EntryInfo>,
        /// True on the final page.
        last: bool,
    },
    // Share links (see the module doc).
    /// A new share link: what the client needs to print it.
    Shared {
        /// The share as kept.
        share: ShareInfo,
        /// The capability; the server keeps only its SHA-256.
        token: String,
        /// SHA-256 of each certificate a browser may meet until the link expires (none: the
        /// server uses its own `--cert`, which browsers check themselves).
        hashes: Vec<[u8; 32]>,
        /// The UDP port browsers reach the server on.
        port: u16,
    },
    /// Part of the share list.
    SharePage {
        /// At most [`SHARE_PAGE_ENTRIES`](super::SHARE_PAGE_ENTRIES) shares.
        shares: Vec<ShareInfo>,
        /// True on the final page.
        last: bool,
    },
    /// The share link is revoked.
    Revoked,
}

impl Message for Response {
    // A full listing page of maximum-length names (which also covers MAX_CHUNKS hashes).
    const MAX_LEN: usize = LIST_PAGE_ENTRIES * (MAX_NAME_LEN + 32) + 64;
}

/// The server's description of one command, shown by HELP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandHelp {
    /// Canonical name, e.g. "DOWNLOAD".
    pub name: String,
    /// Short names accepted too, e.g. ["get"].
    pub aliases: Vec<String>,
    /// Usage line, e.g. "DOWNLOAD <name>".
    pub usage: String,
    /// One sentence.
    pub summary: String,
}
