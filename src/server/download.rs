//! DOWNLOAD: header, body, trailer with the SHA-256 of the body.

use indicatif::ProgressBar;
use sha2::Sha256;
use tokio::io::AsyncWrite;

use tokio::io::{AsyncRead, AsyncSeekExt};

use super::connection::{read_resume, safe_name, Failure, Outcome};
use super::Context;
use crate::protocol::{chunk_for, close, write_frame, Response, Trailer};
use crate::transfer::{hash_prefix, piece_hashes, send_file, CopyError, Sink};

pub(super) async fn run<W: AsyncWrite + Unpin + Sink>(
    ctx: &Context,
    name: &str,
    send: &mut W,
) -> Outcome {
    let name = safe_name(name)?;
    let mut file = ctx.storage.open_read(name).await?;
    // A copy buffer is taken only with a permit: bounds the memory all transfers hold at once.
    let _permit = ctx.transfers.acquire().await.map_err(Failure::abort)?;
    let header = Response::FileHeader {
        size: file.size,
        modified: file.modified,
    };
    // From here on a failure cannot be told with a frame: the client is reading body bytes.
    write_frame(send, &header).await.map_err(Failure::abort)?;
    send_body(ctx, &mut file.file, send, Sha256::default(), file.size).await?;
    Ok(file.size)
}

/// A download that may continue a client's partial: hashes of the pieces it may hold, its
/// choice of where to start, then the rest and the whole file's hash.
pub(super) async fn run_resumable<R, W>(
    ctx: &Context,
    name: &str,
    have: u64,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Sink,
{
    let name = safe_name(name)?;
    let shown = name.to_string();
    let mut file = ctx.storage.open_read(name).await?;
    let _permit = ctx.transfers.acquire().await.map_err(Failure::abort)?;
    let io = |e: std::io::Error| Failure::from(crate::storage::StorageError::from_io(&shown, e));
    let held = have.min(file.size);
    let chunk = chunk_for(held);
    let (hashes, covered) = piece_hashes(&mut file.file, held, chunk)
        .await
        .map_err(io)?;
    let pieces = hashes.len() as u64;
    let prefix = Response::Prefix {
        size: file.size,
        modified: file.modified,
        chunk,
        hashes,
    };
    write_frame(send, &prefix).await.map_err(Failure::abort)?;
    let from = read_resume(ctx, recv, held, chunk, pieces).await?;
    // The trailer covers the whole file, so what the client keeps is hashed too: already done
    // if it resumes after the last piece offered (the file then stands right there).
    let before = if from == pieces * chunk {
        covered
    } else {
        file.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(io)?;
        hash_prefix(&mut file.file, from).await.map_err(io)?
    };
    let rest = file.size - from;
    send_body(ctx, &mut file.file, send, before, rest).await?;
    if from > 0 {
        tracing::info!(from = from, "resumed download");
    }
    Ok(rest)
}

/// Sends `len` body bytes of `file` (from where it stands) continuing `hasher`, then the
/// trailer with the whole file's hash. A block that does not move within the stall timeout
/// (a client that stopped reading) ends the stream as too slow.
async fn send_body<W: AsyncWrite + Unpin + Sink>(
    ctx: &Context,
    file: &mut tokio::fs::File,
    send: &mut W,
    hasher: Sha256,
    len: u64,
) -> Result<(), Failure> {
    let stall = Some(ctx.limits.stall_timeout);
    let sha256 = match send_file(hasher, file, send, len, stall, &ProgressBar::hidden()).await {
        Ok(digest) => digest,
        Err(e @ CopyError::Stalled(_)) => {
            return Err(Failure::Abort(close::TOO_SLOW, e.to_string()))
        }
        Err(e) => return Err(Failure::abort(e)),
    };
    write_frame(send, &Trailer { sha256 })
        .await
        .map_err(Failure::abort)
}
