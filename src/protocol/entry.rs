//! What the server says about a name: a listing's [`Entry`], a STAT or WALK line's
//! [`EntryInfo`], the [`FileMeta`] a stored file is given, and how many entries fill a page.

use serde::{Deserialize, Serialize};

use super::{Message, Response, MAX_NAME_LEN};

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's name within the listed directory (a single component).
    pub name: String,
    /// File, directory or something else.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time in seconds since the Unix epoch, when known.
    pub modified: Option<u64>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (a symlink, a device...): listed, not transferable.
    Other,
}

/// Entries per listing page: keeps each page far below [`Response::MAX_LEN`] even with long names.
pub const LIST_PAGE_ENTRIES: usize = 200;

/// What a stored file is given besides its bytes, when the client asks (`put -p`, `sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Modification time, seconds since the Unix epoch.
    pub modified: Option<u64>,
    /// Permission bits (`rwxrwxrwx`); anything above them (setuid, setgid, sticky) is dropped
    /// by the side that applies them ([`PERMISSION_BITS`]).
    pub mode: Option<u32>,
}

/// The only mode bits either side ever applies: read, write and execute for owner, group and
/// others; never setuid, setgid or sticky.
pub const PERMISSION_BITS: u32 = 0o777;

/// An entry with all a server knows of it: a STAT answer, a line of a WALK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    /// STAT: the name asked about; WALK: the path below the walked directory (`/`-separated).
    pub name: String,
    /// File, directory or something else (a link, on a WALK, is always `Other`).
    pub kind: EntryKind,
    /// Size in bytes (0 for anything but a file).
    pub size: u64,
    /// Modification time in seconds since the Unix epoch (the time kept with the file, where the
    /// storage keeps one apart from its own).
    pub modified: Option<u64>,
    /// Permission bits, where known.
    pub mode: Option<u32>,
    /// SHA-256 of the content, where the server knows it without reading the file (or was asked
    /// to read it).
    pub sha256: Option<[u8; 32]>,
}

/// Entries per WALK page: an [`EntryInfo`] is a path of up to [`MAX_NAME_LEN`] bytes and at most
/// 70 more, so a page of them stays within [`Response::MAX_LEN`].
pub const WALK_PAGE_ENTRIES: usize = 100;

const _: () = assert!(WALK_PAGE_ENTRIES * (MAX_NAME_LEN + 80) + 64 < Response::MAX_LEN);
