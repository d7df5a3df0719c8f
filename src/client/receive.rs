//! The receiving half every download ends in: a body into a local file, hashed as it lands,
//! then the trailer and the end of the stream checked, then the fsync ([`receive_verified`]);
//! and for a plain download, the hidden temp file beside the target that a failure removes and
//! a success renames into place ([`receive_into_temp`]). Generic over the stream: `get` reads a
//! QUIC stream, `qft get LINK` a WebTransport one ([`receive_file`]).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use sha2::Sha256;
use tokio::io::AsyncRead;

use super::progress;
use super::resume::commit_partial;
use super::stream::{expect_end, within};
use super::{ClientError, Keep};
use crate::compress::Decompressing;
use crate::fsutil::{is_full, new_file_permissions, parent_dir};
use crate::paths::SafeName;
use crate::protocol::{read_frame, FileMeta, Trailer};
use crate::rate::{Limited, Limiter};
use crate::transfer::{copy_continuing, CopyError, FileSink, Source};

/// A plain download's file, as its `FileHeader` announced it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) size: u64,
    pub(super) modified: Option<u64>,
}

/// How a body is received: how long each block may take, and the bandwidth limits.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    pub(super) stall: Duration,
    pub(super) limits: Arc<[Limiter]>,
}

/// A plain download's body, once its header has come: into a hidden temp file beside the
/// target (removed by any failure), verified against the trailer, given what is kept, and only
/// then renamed into place. `get` from a server that cannot resume ends here, and so does
/// `qft get LINK` over a browser's WebTransport stream ([`receive_file`]).
pub(super) async fn receive_into_temp<R>(
    recv: &mut R,
    header: Header,
    name: &SafeName,
    into: Target<'_>,
    pace: Pace,
    progress: &ProgressBar,
) -> Result<[u8; 32], ClientError>
where
    R: Source + AsyncRead + Unpin + Send,
{
    let dir = parent_dir(into.dest);
    // Hidden, marked as partial, and short enough that a long name still fits the limit.
    let stem: String = name.file_name().chars().take(32).collect();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".qft-part")
        .permissions(new_file_permissions(into.dest))
        .tempfile_in(dir)
        .map_err(ClientError::local(dir))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(ClientError::local(dir))?;
    let body = Body {
        file: Arc::new(file),
        from: 0,
        size: header.size,
        hasher: Sha256::default(),
        stall: pace.stall,
        limits: pace.limits,
        compressed: false,
    };
    // Removed on drop: by any failure before the commit.
    let temp = temp.into_temp_path();
    let received = receive_verified(recv, &body, name, into.dest, progress).await?;
    into.apply(&body.file, header.modified, &temp)?;
    commit_partial(&temp, into.dest, into.overwrite)?;
    // Renamed into place: nothing is left for the drop to remove.
    let _ = temp.keep();
    Ok(received)
}

/// Receives a plain download of `size` bytes from `recv` (its `FileHeader` already read) into
/// `dest`, the way `get` does ([`receive_into_temp`]): for `qft get LINK`, whose stream is a
/// WebTransport one. Waits at most `stall` for each block; replaces `dest` only with
/// `overwrite`. Returns the verified SHA-256.
pub(crate) async fn receive_file<R>(
    recv: &mut R,
    size: u64,
    name: &SafeName,
    dest: &Path,
    overwrite: bool,
    stall: Duration,
    progress: &ProgressBar,
) -> Result<[u8; 32], ClientError>
where
    R: Source + AsyncRead + Unpin + Send,
{
    let into = Target {
        dest,
        overwrite,
        keep: Keep::default(),
        mode: None,
    };
    let header = Header {
        size,
        modified: None,
    };
    let pace = Pace {
        stall,
        limits: Arc::from([]),
    };
    receive_into_temp(recv, header, name, into, pace, progress).await
}

/// Where a download goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) dest: &'a Path,
    /// Replace an existing `dest`.
    pub(super) overwrite: bool,
    /// What the local file keeps of the server's.
    pub(super) keep: Keep,
    /// The server's permission bits, when they are kept.
    pub(super) mode: Option<u32>,
}

impl Target<'_> {
    /// Gives the verified local file (at `path`, not yet renamed) what is kept: the server's
    /// time `modified` and the permission bits.
    pub(super) fn apply(
        &self,
        file: &std::fs::File,
        modified: Option<u64>,
        path: &Path,
    ) -> Result<(), ClientError> {
        let meta = FileMeta {
            modified: modified.filter(|_| self.keep.time),
            mode: self.mode.filter(|_| self.keep.perms),
        };
        super::keep::apply(file, &meta).map_err(ClientError::local(path))
    }
}

/// A body to receive into a local file.
pub(super) struct Body {
    pub(super) file: Arc<std::fs::File>,
    /// Where in the file (and the whole file) the body starts.
    pub(super) from: u64,
    /// The whole file's size.
    pub(super) size: u64,
    /// The SHA-256 state of the file before `from`.
    pub(super) hasher: Sha256,
    /// How long each block, the trailer and the end may take to arrive.
    pub(super) stall: Duration,
    /// Bandwidth limits the blocks are paced by.
    pub(super) limits: Arc<[Limiter]>,
    /// The body comes compressed ([`crate::compress`]).
    pub(super) compressed: bool,
}

/// The body, the trailer and the end of the stream, then the fsync: the verified hash.
pub(super) async fn receive_verified<R>(
    recv: &mut R,
    body: &Body,
    name: &SafeName,
    dest: &Path,
    progress: &ProgressBar,
) -> Result<[u8; 32], ClientError>
where
    R: Source + AsyncRead + Unpin + Send,
{
    let full = |e: io::Error| match is_full(&e) {
        true => ClientError::NoSpace(dest.to_path_buf()),
        false => ClientError::Local {
            path: dest.to_path_buf(),
            source: e,
        },
    };
    progress::transferring(progress, body.size, body.from);
    let mut sink = FileSink::new(body.file.clone(), body.from);
    let len = body.size - body.from;
    let hasher = body.hasher.clone();
    // Every block received before a failure is written when this returns: what arrived stays.
    let stall = Some(body.stall);
    let mut paced = Limited::new(recv, &body.limits);
    let copied = match body.compressed {
        true => {
            let mut unpacked = Decompressing::new(&mut paced);
            copy_continuing(hasher, &mut unpacked, &mut sink, len, stall, progress).await
        }
        false => copy_continuing(hasher, &mut paced, &mut sink, len, stall, progress).await,
    };
    let received = match copied {
        Ok(digest) => digest,
        Err(CopyError::Write(e)) => return Err(full(e)),
        Err(CopyError::Stalled(limit)) => return Err(ClientError::Stalled(limit)),
        Err(other) => return Err(ClientError::Interrupted(other.to_string())),
    };
    let trailer: Trailer = within(body.stall, async { Ok(read_frame(recv).await?) }).await?;
    expect_end(recv, body.stall).await?;
    if trailer.sha256 != received {
        return Err(ClientError::HashMismatch(name.to_string()));
    }
    let file = body.file.clone();
    blocking(move || file.sync_all()).await.map_err(full)?;
    Ok(received)
}

/// Runs a local file operation on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}
