//! Whether a local file already is the server's file, asked before a download would refuse to
//! replace it: re-running a copy (after Ctrl-C, or to fetch what is new) skips what is already
//! here, instead of failing on every file.
//!
//! "The same" means the same size and the same SHA-256, and the cheapest honest way to learn the
//! server's SHA-256 is the resumable download exchange ([`crate::pieces`]), with the whole
//! local file offered as the partial:
//! ```text
//!  C: ResumeDownload { name, have: local size }
//!  S: Prefix { size, chunk, hashes of its whole pieces }     (the server reads its file once)
//!  C: compares them with its file, piece by piece, as it reads it once; at the first piece that
//!     differs (or a size that differs) it resets the stream: not the same
//!  C: Resume { from: end of the last whole piece }
//!  S: the tail (less than one piece) and the trailer: the SHA-256 of its WHOLE file
//!  C: the same  <=>  the trailer equals the SHA-256 of the local file
//! ```
//! Only the tail crosses the network: less than 1 MiB for files up to 16 GiB (a small file's
//! tail is the whole file, which a plain comparison would have cost anyway). No temp file is
//! made and nothing local is written. A server without resuming cannot be asked this way; its
//! files are then reported as existing, as before.

use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;

use crate::client::stream::{expect_end, response, safe, unexpected, within};
use crate::client::{Client, ClientError};
use crate::pieces::Pieces;
use crate::protocol::{
    close, read_frame, write_frame, ErrorCode, Request, Response, Resume, Trailer,
};
use crate::transfer::{copy_continuing, CopyError, FileSource, Writer};

/// What the comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sameness {
    /// The same size and SHA-256.
    Identical,
    /// Another size, or a piece, or the whole hash, differs.
    Differs,
    /// The server cannot be asked (it does not know the resumable exchange).
    Unknown,
}

/// Compares the local file `path` with the server's file `name`.
pub(super) async fn compare(
    client: &Client,
    name: &str,
    path: &Path,
) -> Result<Sameness, ClientError> {
    let name = safe(name)?;
    let file = std::fs::File::open(path).map_err(ClientError::local(path))?;
    let have = file.metadata().map_err(ClientError::local(path))?.len();
    let file = Arc::new(file);
    let request = Request::ResumeDownload {
        name: name.to_string(),
        have,
    };
    let (mut send, mut recv) = client.open(&request).await?;
    let (size, pieces) = match response(&mut recv, client.stall).await {
        Ok(Response::Prefix {
            size,
            chunk,
            hashes,
            ..
        }) => (size, Pieces { chunk, hashes }),
        Err(ClientError::Remote {
            code: ErrorCode::Unsupported,
            ..
        }) => return Ok(Sameness::Unknown),
        Err(e) => return Err(e),
        Ok(other) => return Err(unexpected(&other)),
    };
    let abandon = |mut send: quinn::SendStream, mut recv: quinn::RecvStream| {
        let _ = send.reset(close::ABORTED.into());
        let _ = recv.stop(close::ABORTED.into());
        Ok(Sameness::Differs)
    };
    if size != have {
        return abandon(send, recv);
    }
    pieces
        .check(have)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let local = |e: std::io::Error| ClientError::Local {
        path: path.to_path_buf(),
        source: e,
    };
    let covered = pieces
        .agree(&mut FileSource::new(file.clone(), 0), have)
        .await
        .map_err(local)?;
    if covered.end < pieces.len() {
        return abandon(send, recv);
    }
    let from = covered.end;
    write_frame(&mut send, &Resume { from }).await?;
    let _ = send.finish();
    // The tail: the server's, hashed on from the agreed pieces, must match its trailer; ours,
    // hashed the same way, decides.
    let tail = size - from;
    let quiet = ProgressBar::hidden();
    let (mut nowhere, mut nowhere_too) = (Writer(tokio::io::sink()), Writer(tokio::io::sink()));
    let mut tail_here = FileSource::new(file, from);
    let theirs = copy_continuing(
        covered.state.clone(),
        &mut recv,
        &mut nowhere,
        tail,
        Some(client.stall),
        &quiet,
    );
    let ours = copy_continuing(
        covered.state,
        &mut tail_here,
        &mut nowhere_too,
        tail,
        None,
        &quiet,
    );
    let (theirs, ours) = tokio::join!(theirs, ours);
    let theirs = theirs.map_err(|e| match e {
        CopyError::Stalled(limit) => ClientError::Stalled(limit),
        other => ClientError::Interrupted(other.to_string()),
    })?;
    let ours: [u8; 32] = ours.map_err(|e| local(std::io::Error::other(e)))?;
    let trailer: Trailer = within(client.stall, async { Ok(read_frame(&mut recv).await?) }).await?;
    expect_end(&mut recv, client.stall).await?;
    if trailer.sha256 != theirs {
        return Err(ClientError::HashMismatch(name.to_string()));
    }
    Ok(match ours == trailer.sha256 {
        true => Sameness::Identical,
        false => Sameness::Differs,
    })
}
