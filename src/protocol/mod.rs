//! The qft wire protocol: every type that crosses the network, and (in [`frame`]) the only code
//! that turns bytes into those types.
//!
//! This file is the spec and the two message enums, [`Request`] and [`Response`]; what they
//! carry has files of its own (`entry`, `share`, `body`, `error`, and the [`close`] codes), all
//! re-exported here so that every wire type is named `protocol::X`.
//!
//! # Connection
//! QUIC with TLS 1.3, ALPN [`ALPN`] (`qft/1`). The client verifies the server's certificate by the
//! SHA-256 of its public key (see [`crate::tls`]) before it sends anything. Each command runs on its
//! own bidirectional stream, opened by the client, so any number of commands share one connection
//! without blocking each other. LOGOUT is not a message: the client closes the connection with
//! application code 0.
//!
//! # Frames
//! A frame is a 4-byte big-endian length followed by that many bytes of one postcard-encoded
//! message. Every message type has its own size limit ([`Message::MAX_LEN`]), checked before
//! any buffer is allocated; a frame that is not exactly the canonical postcard encoding of one
//! message (trailing bytes, overlong varints) is malformed. File bodies are not framed: they are
//! raw bytes whose count was announced first.
//!
//! # Exchanges, one per stream (C = client, S = server)
//! - **List**: C→S `Request::List`; S→C one or more `Response::ListPage`, the last with
//!   `last = true`; or one `Response::Error`.
//! - **Download**: C→S `Request::Download`; S→C `Response::FileHeader { size }`, then exactly
//!   `size` body bytes, then a [`Trailer`] with the SHA-256 of those bytes; or one
//!   `Response::Error`. The client writes to a temporary file and keeps it only if its own hash of
//!   the bytes matches the trailer. A server that cannot finish the body (the file shrank, a read
//!   failed) resets the stream, so a short body never looks complete.
//! - **Upload**: C→S `Request::Upload { name, size }`; S→C `Response::Ready` or `Response::Error`
//!   (so a refused upload costs no data); C→S exactly `size` body bytes, then a [`Trailer`], then
//!   finishes its side; S→C `Response::Done { sha256 }` once the file is durable under its name,
//!   or `Response::Error` (nothing was changed). A body smaller than [`SMALL_FILE`] may follow the
//!   request at once, without waiting for `Ready`: it saves a round trip per small file and
//!   wastes less than a piece on a refusal, after which the server stops reading the stream.
//! - **Delete**: C→S `Request::Delete`; S→C `Response::Deleted` or `Response::Error`.
//! - **Help**: C→S `Request::Help`; S→C `Response::Help`.
//! - **Shutdown** (clients with the `admin` permission): C→S `Request::Shutdown`; S→C
//!   `Response::ShuttingDown`, after which the server stops as on Ctrl-C: no new connections,
//!   running commands finish within its grace period, then every connection is closed.
//!
//! - **ResumeUpload** (an upload that continues what this client left earlier): C→S
//!   `Request::ResumeUpload { name, size }`; S→C `Response::Held { chunk, hashes }`, the SHA-256
//!   of each whole `chunk`-sized piece of the partial the server keeps for this client, name and
//!   size (none: empty); C→S [`Resume`] `{ from }`, the start of the first piece that differs
//!   from the local file (a multiple of `chunk`, at most what is held); C→S the body from `from`
//!   to `size`, then a [`Trailer`] with the SHA-256 of the *whole* file; S→C `Done` or `Error`.
//!   A source that changed since is thus resent from its first changed piece, never mixed.
//!   `chunk` is the server's choice: [`chunk_for`] of what it holds where it hashes the partial
//!   again (a directory), the part size where it kept each part's hash as it stored it (S3:
//!   8 MiB or more); a client takes any `chunk` whose pieces fit in `size`.
//! - **ResumeDownload**: C→S `Request::ResumeDownload { name, have }` (bytes of a local partial);
//!   S→C `Response::Prefix { size, modified, chunk, hashes }` covering the file's first
//!   `min(have, size)` bytes in whole pieces; C→S [`Resume`] `{ from }`; S→C the body from `from`,
//!   then a [`Trailer`] with the SHA-256 of the whole file.
//! - **Space** (`df`): C→S `Request::Space`; S→C `Response::Space { available, max_upload }`:
//!   the bytes uploads may still use (the storage's free space less the server's reserve;
//!   `None` where the storage cannot tell, as for an S3 bucket) and the server's largest
//!   upload, if it has a limit. An older server answers `Error { code: Unsupported }`.
//!
//! ## Managing names, metadata and trees (added for sync; an older server answers each with
//! `Error { code: Unsupported }`, and the client names the command it lacks)
//! - **MakeDir**: C→S `Request::MakeDir { name, parents }`; S→C `Response::Made`, or `Error`
//!   (`Exists` if it is there and `parents` is false, `NotFound` for a missing parent without
//!   `parents`). On an object store a directory is a marker object `name/`.
//! - **RemoveDir**: C→S `Request::RemoveDir { name }` (an empty directory); S→C
//!   `Response::Removed { files: 0 }`, or `Error` (`NotEmpty`, `NotADirectory`...).
//! - **Rename**: C→S `Request::Rename { from, to }`; S→C `Response::Renamed`, or `Error`. Never
//!   replaces: an existing `to` is refused (`Exists`). Atomic on a filesystem (one rename); on an
//!   object store a file is copied then the original deleted, and a directory is refused
//!   (`NotAtomic`): it would be one copy per file, visible half done.
//! - **Stat**: C→S `Request::Stat { name, digest }`; S→C `Response::Info(EntryInfo)`: kind,
//!   size, time, permission bits, and the SHA-256 when the server knows it without reading the
//!   file, or (`digest = true`) after reading it.
//! - **DeleteTree**: C→S `Request::DeleteTree { name }`; S→C `Response::Removed { files }` once
//!   `name` and everything below it is gone (links removed, never followed), or `Error`.
//! - **Walk**: C→S `Request::Walk { dir }`; S→C one or more `Response::WalkPage`, the last with
//!   `last = true`: every entry below `dir` ("" the top), parents before children, names relative
//!   to `dir`, with [`EntryInfo`]'s metadata. Links are listed as `Other` and never entered. What
//!   `sync` compares against.
//! - **UploadMeta** / **ResumeUploadMeta**: as Upload / ResumeUpload, with a [`FileMeta`] the
//!   server gives the file as it commits it (the time, and the permission bits when sent), so
//!   it appears under its name whole and with its time in one step.
//!
//! ## Compressed bodies (`-C`)
//! - **ResumeUploadCompressed** / **ResumeDownloadCompressed**: as ResumeUpload (with an
//!   optional [`FileMeta`]) / ResumeDownload, except that the body between the resume point and
//!   the trailer is a run of chunks ([`crate::compress`]: a 4-byte header, compressed or not,
//!   then the payload). The trailer's SHA-256 is still that of the file's own bytes, and `from`
//!   counts them. A server without compression answers `Unsupported`, and the client runs the
//!   uncompressed exchange instead: compression is asked for per transfer, never assumed.
//!
//! ## Share links (`share` at the prompt; clients with the `admin` permission)
//! A server started with `--web` keeps share links (see [`crate::share`]); an admin makes, lists
//! and revokes them from a client. An older server answers each with `Error { code:
//! Unsupported }`, and the client says the server lacks `share`; a server without `--web`
//! answers `Error { code: NotEnabled }`, since its links would open nothing.
//! - **ShareCreate**: C→S `Request::ShareCreate { name, expires, upload_only, uses }`; the
//!   server checks the name through its storage (a file, or a directory; upload-only only for a
//!   directory; at most [`crate::share::MAX_EXPIRY`]) and answers S→C `Response::Shared`: the
//!   share ([`ShareInfo`]), its token (never kept by the server, only its hash), the certificate
//!   hashes a browser pins until the link expires, and the UDP port browsers reach. The client
//!   prints the link as `qft share` does.
//! - **ShareList**: C→S `Request::ShareList`; S→C one or more `Response::SharePage`, the last
//!   with `last = true`.
//! - **ShareRevoke**: C→S `Request::ShareRevoke { id }`; S→C `Response::Revoked`, or `Error`
//!   (`NotFound`).
//!
//! ## Many small uploads on one stream
//! - **UploadBundle**: C→S `Request::UploadBundle { files, bytes }`, then at once, for each
//!   file, a [`BundleItem`] `{ name, size, meta }`, exactly `size` body bytes and a [`Trailer`];
//!   then the client finishes its side. S→C `Response::Ready` (the bundle is accepted: a slot
//!   and the space for `bytes` are held) or one `Response::Error` for the whole bundle (nothing
//!   was stored); after Ready, one answer per file, in order: `Done { sha256 }` once that file
//!   is durable under its name, or `Error` for that file alone (a bad name, a wrong hash: the
//!   others are stored). Items whose sizes do not add up to `bytes`, more than `files` items,
//!   or anything after the last trailer make the server abort the stream. A bundle is at most
//!   [`MAX_BUNDLE_FILES`] files and [`MAX_BUNDLE_BYTES`] bytes; the client puts in it files
//!   under [`BUNDLE_FILE`]. An older server answers `Error { code: Unsupported }`, and the
//!   client sends the files one by one.
//!
//! # Who may do what
//! Clients present their own certificate (mutual TLS) and are known by its fingerprint. A server
//! with an authorized-clients list closes the connection of a client not on it with
//! [`close::NOT_AUTHORIZED`] and a reason, before accepting any stream; a command the client lacks
//! the permission for gets `Error { code: PermissionDenied }`. A server over its connection limits
//! closes new connections with [`close::BUSY`] and a reason that says when to try again
//! ([`close::busy`]). A server grants a connection streams only once it is admitted, so a
//! client's first stream opens only on a connection that will serve it.
//!
//! # Browsers
//! A server started with `--web` also offers ALPN `h3`. A browser's connection negotiates it,
//! opens a WebTransport session (HTTP/3 extended CONNECT to `/`, or `/s/TOKEN` for a share link),
//! and then speaks exactly this protocol on the session's bidirectional streams: the same frames,
//! requests and exchanges. A session the server refuses (an expired link, a client list) is
//! accepted and closed at once with the reason, since browsers show that but not a status.
//!
//! # Growing the protocol without breaking it
//! postcard is not self-describing, so an existing variant or struct never changes. New
//! capabilities (resuming from an offset with a verified prefix, client identities and
//! permissions, richer listings) arrive as new variants appended to [`Request`] and [`Response`].
//! A server that does not know a variant answers `Error { code: Unsupported }` and keeps the
//! connection, so a newer client can fall back. Error codes travel as numbers, and an unknown one
//! decodes as [`ErrorCode::Other`]. A change that cannot follow these rules gets a new ALPN.

mod body;
mod bundle;
pub mod close;
mod entry;
mod error;
pub mod frame;
#[cfg(test)]
mod properties;
mod response;
mod share;

use serde::{Deserialize, Serialize};

pub use body::{chunk_for, Resume, Trailer, MAX_CHUNKS, MIN_CHUNK, SMALL_FILE};
pub use bundle::{BundleItem, BUNDLE_FILE, MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES};
pub use entry::{
    Entry, EntryInfo, EntryKind, FileMeta, LIST_PAGE_ENTRIES, PERMISSION_BITS, WALK_PAGE_ENTRIES,
};
pub use error::ErrorCode;
pub use frame::{encode as encode_frame, read_frame, read_frame_limited, write_frame, FrameError};
pub use response::{CommandHelp, Response};
pub use share::{ShareInfo, SHARE_PAGE_ENTRIES};

/// The ALPN protocol name; a new incompatible protocol would get a new name.
pub const ALPN: &[u8] = b"qft/1";

/// Longest accepted name in bytes: enough for deep trees, small enough to bound every request.
pub const MAX_NAME_LEN: usize = 4096;

/// A message type with its own frame size limit.
pub trait Message: Serialize + for<'de> Deserialize<'de> {
    /// The largest encoded size accepted for this type; checked before allocating.
    const MAX_LEN: usize;
    /// For an enum: how many variants this build knows, so that a newer peer's variant is told
    /// apart from garbage.
    const VARIANTS: Option<u32> = None;
}

/// What a client asks of the server: the first frame on every stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// List the directory `dir` ("" is the served root).
    List {
        /// A relative name as accepted by [`crate::paths::SafeName::new`], or "" for the root.
        dir: String,
    },
    /// Send the file `name`.
    Download {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
    },
    /// Receive a file of `size` bytes and store it as `name`, replacing an existing file.
    Upload {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Exact body length; the server refuses a body that is longer or shorter.
        size: u64,
    },
    /// Delete the file `name`.
    Delete {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
    },
    /// Describe every command.
    Help,
    /// Stop the server gracefully (admin only).
    Shutdown,
    /// An upload that may continue a partial this client left (see the module doc).
    ResumeUpload {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Exact length of the whole file.
        size: u64,
    },
    /// A download that may continue a local partial of `have` bytes.
    ResumeDownload {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Bytes the client already holds.
        have: u64,
    },
    /// How much more the server can store (`df`); answered with [`Response::Space`].
    Space,
    // Managing names, metadata and trees (see the module doc).
    /// Make the directory `name` (with its missing parents if `parents`).
    MakeDir {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Make missing parents, and accept a directory already there (`mkdir -p`).
        parents: bool,
    },
    /// Remove the empty directory `name`.
    RemoveDir {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
    },
    /// Give the file or directory `from` the name `to`, which must not exist.
    Rename {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        from: String,
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        to: String,
    },
    /// Describe `name`; with `digest`, its SHA-256 too, read if the server does not know it.
    Stat {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Compute the SHA-256 if it is not known.
        digest: bool,
    },
    /// Delete `name` and, if it is a directory, everything in it.
    DeleteTree {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
    },
    /// Every entry below `dir` ("" for the top), with its metadata.
    Walk {
        /// A relative name as accepted by [`crate::paths::SafeName::new`], or "".
        dir: String,
    },
    /// [`Request::Upload`], committed with `meta`.
    UploadMeta {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Exact body length.
        size: u64,
        /// What the stored file gets.
        meta: FileMeta,
    },
    /// [`Request::ResumeUpload`], committed with `meta`.
    ResumeUploadMeta {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Exact length of the whole file.
        size: u64,
        /// What the stored file gets.
        meta: FileMeta,
    },
    // Compressed bodies (see the module doc).
    /// [`Request::ResumeUpload`] whose body comes compressed ([`crate::compress`]), committed
    /// with `meta` if given.
    ResumeUploadCompressed {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Exact length of the whole file (uncompressed).
        size: u64,
        /// What the stored file gets, if anything.
        meta: Option<FileMeta>,
    },
    /// [`Request::ResumeDownload`] whose body goes compressed ([`crate::compress`]).
    ResumeDownloadCompressed {
        /// A relative name as accepted by [`crate::paths::SafeName::new`].
        name: String,
        /// Bytes the client already holds.
        have: u64,
    },
    // Share links (see the module doc; admin only).
    /// Make a share link for `name`.
    ShareCreate {
        /// A relative name as accepted by [`crate::paths::SafeName::new`]: a file, or a
        /// directory.
        name: String,
        /// Seconds from now until the link stops working.
        expires: u64,
        /// A drop box: uploads of new files into the directory, nothing else.
        upload_only: bool,
        /// Transfers the link allows in all; `None`: any number until it expires.
        uses: Option<u64>,
    },
    /// The server's share links.
    ShareList,
    /// Revoke the share link `id` (as [`ShareInfo::id`] names it).
    ShareRevoke {
        /// The share's ID.
        id: String,
    },
    // Many small uploads on one stream (see the module doc).
    /// `files` uploads follow, each a [`BundleItem`], its body and its [`Trailer`]; `bytes` is
    /// the sum of their sizes.
    UploadBundle {
        /// How many files; at most [`MAX_BUNDLE_FILES`].
        files: u32,
        /// Their bodies' bytes together; at most [`MAX_BUNDLE_BYTES`].
        bytes: u64,
    },
}

impl Message for Request {
    // Room for the longest two names (a rename) plus encoding overhead, and no more. (Before
    // rename it was one name; an older server takes a rename of two very long names for an
    // oversized message rather than an unknown one.)
    const MAX_LEN: usize = 2 * MAX_NAME_LEN + 64;
    const VARIANTS: Option<u32> = Some(23);
}
