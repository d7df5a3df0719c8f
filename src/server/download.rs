//! DOWNLOAD and resumable DOWNLOAD: header (or the pieces the client may hold), body (compressed
//! on request, [`crate::compress`]), trailer with the SHA-256 of the whole file.

use indicatif::ProgressBar;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use super::exchange::{read_resume, respond, safe_name, Failure, Outcome};
use super::slots::Who;
use super::Context;
use crate::compress::Compressing;
use crate::pieces::Pieces;
use crate::protocol::{close, Response, Trailer};
use crate::storage::{ReadFile, StorageError};
use crate::transfer::{copy_continuing, copy_unhashed, CopyError, Sink, BLOCK, LARGE_BLOCK};

pub(super) async fn run<W: AsyncWrite + Unpin + Sink>(
    ctx: &Context,
    who: Who,
    name: &str,
    send: &mut W,
) -> Outcome {
    let name = safe_name(name)?;
    let file = ctx.storage.open_read(name).await?;
    // A copy buffer is taken only with a slot: bounds the memory all transfers hold at once.
    let _slot = ctx
        .slots
        .acquire(who, file.size)
        .await
        .map_err(Failure::abort)?;
    let header = Response::FileHeader {
        size: file.size,
        modified: file.modified,
    };
    // From here on a failure cannot be told with a frame: the client is reading body bytes.
    respond(ctx, send, &header).await?;
    send_body(ctx, &file, 0, Sha256::default(), send).await?;
    Ok(file.size)
}

/// A download that may continue a client's partial: hashes of the pieces it may hold, its
/// choice of where to start, then the rest and the whole file's hash (see [`crate::pieces`]).
pub(super) async fn run_resumable<R, W>(
    ctx: &Context,
    who: Who,
    name: &str,
    have: u64,
    compressed: bool,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Sink + Send,
{
    let name = safe_name(name)?;
    let shown = name.to_string();
    let file = ctx.storage.open_read(name).await?;
    let _slot = ctx
        .slots
        .acquire(who, file.size)
        .await
        .map_err(Failure::abort)?;
    let io = |e: std::io::Error| Failure::from(StorageError::from_io(&shown, e));
    // What the client says it holds is only a claim: what of it is hashed and then not used
    // is charged to the client (see `slots`).
    let hashing = ctx.slots.hashing(who, have.min(file.size));
    let held = hashing.bytes;
    let (pieces, covered) = Pieces::hash(&mut file.source_at(0), held)
        .await
        .map_err(io)?;
    let prefix = Response::Prefix {
        size: file.size,
        modified: file.modified,
        chunk: pieces.chunk,
        hashes: pieces.hashes.clone(),
    };
    respond(ctx, send, &prefix).await?;
    let from = read_resume(ctx, recv, held, &pieces).await?;
    hashing.used(from);
    // The trailer covers the whole file, so what the client keeps is hashed too.
    let before = covered.at(from, || file.source_at(0)).await.map_err(io)?;
    match compressed {
        true => {
            send_body(
                ctx,
                &file,
                from,
                before,
                &mut Compressing::new(send, &shown),
            )
            .await?
        }
        false => send_body(ctx, &file, from, before, send).await?,
    }
    if from > 0 {
        tracing::info!(from = from, "resumed download");
    }
    Ok(file.size - from)
}

/// Large transfers running (this one among them) up to which a download of at least a
/// [`LARGE_BLOCK`] hands on [`LARGE_BLOCK`]s: each then holds about 5 MiB instead of 1
/// (`Limits`' memory bound).
const LARGE_BLOCKS_UP_TO: usize = 4;

/// Sends the file from byte `from` to its end continuing `hasher`, then the trailer with the
/// whole file's hash. A block that does not move within the stall timeout (a client that
/// stopped reading) ends the stream as too slow. A file whose digest storage already knows is
/// not hashed (the client verifies it as always); one hashed here is told to storage.
async fn send_body<W: AsyncWrite + Unpin + Sink>(
    ctx: &Context,
    file: &ReadFile,
    from: u64,
    hasher: Sha256,
    send: &mut W,
) -> Result<(), Failure> {
    let stall = Some(ctx.limits.stall_timeout);
    // A MiB per hand-off while few large transfers run (fewer wake-ups); past that, 256 KiB per
    // download, so that a server sending to many clients holds what its limits promise.
    let len = file.size - from;
    let few = ctx.slots.large_running() <= LARGE_BLOCKS_UP_TO;
    let block = match few && len >= LARGE_BLOCK as u64 {
        true => LARGE_BLOCK,
        false => BLOCK,
    };
    let mut source = file.source_at(from).in_blocks_of(block);
    let hidden = ProgressBar::hidden();
    let copied = match file.known_sha256() {
        Some(known) => copy_unhashed(&mut source, send, len, stall, &hidden)
            .await
            .map(|()| known),
        None => copy_continuing(hasher, &mut source, send, len, stall, &hidden)
            .await
            .inspect(|&digest| file.hashed(digest)),
    };
    let sha256 = match copied {
        Ok(digest) => digest,
        Err(e @ CopyError::Stalled(_)) => {
            return Err(Failure::Abort(close::TOO_SLOW, e.to_string()))
        }
        Err(e) => return Err(Failure::abort(e)),
    };
    respond(ctx, send, &Trailer { sha256 }).await
}
