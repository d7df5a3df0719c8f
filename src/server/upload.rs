//! UPLOAD and resumable UPLOAD: check the size, take a slot and reserve the space, accept,
//! receive into a private file, verify the whole file's SHA-256, commit. An upload that fails
//! for space frees what it holds.

use indicatif::ProgressBar;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::exchange::{read_resume, respond, safe_name, within_stall, Failure, Outcome};
use super::slots::Who;
use super::Context;
use crate::compress::Decompressing;
use crate::pieces::hash_prefix;
use crate::pieces::Pieces;
use crate::protocol::{
    close, read_frame_limited, ErrorCode, FileMeta, FrameError, Response, Trailer, SMALL_FILE,
};
use crate::storage::{Partial, Reservation, StorageError};
use crate::tls::Fingerprint;
use crate::transfer::{copy_continuing, copy_unhashed, read_whole, CopyError, Sink, Source};

/// A plain upload: nothing is kept if it breaks.
pub(super) async fn run<R, W>(
    ctx: &Context,
    who: Who,
    name: &str,
    size: u64,
    meta: Option<FileMeta>,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin + Source,
    W: AsyncWrite + Unpin,
{
    let name = safe_name(name)?;
    let shown = name.to_string();
    check_size(ctx, size)?;
    let _slot = ctx.slots.acquire(who, size).await.map_err(Failure::abort)?;
    let space = reserve(ctx, size).await?;
    let mut upload = ctx.storage.begin_upload(name, size).await?;
    if let Some(meta) = meta {
        upload.set_meta(meta);
    }
    respond(ctx, send, &Response::Ready).await?;
    let received = if size < SMALL_FILE {
        // Most of a small file's cost is per file: it is received whole and written in one go.
        let stall = Some(ctx.limits.stall_timeout);
        let (body, digest) = read_whole(recv, size as usize, stall)
            .await
            .map_err(|e| copy_failure(&shown, e))?;
        finish(ctx, recv, digest).await?;
        upload.commit_whole(body, digest).await?;
        digest
    } else {
        let mut sink = space.counting(upload.sink());
        let hashing = Hashing::Here(Sha256::default());
        let received = receive(ctx, &shown, hashing, size, recv, &mut sink).await?;
        upload.commit(received).await?;
        received
    };
    respond(ctx, send, &Response::Done { sha256: received }).await?;
    Ok(size)
}

/// What a resumable upload's request says of its body besides its size.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Body {
    /// What the stored file gets (its time, its permission bits), if anything.
    pub(super) meta: Option<FileMeta>,
    /// The body comes compressed ([`crate::compress`]).
    pub(super) compressed: bool,
}

/// An upload that continues what this client left: the pieces held, the client's choice of
/// where to start, then the rest; verified against the whole file's hash.
// The exchange's own inputs, each from the request or the connection: a struct of them would be
// built at each call only to be taken apart here.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_resumable<R, W>(
    ctx: &Context,
    who: Who,
    name: &str,
    size: u64,
    body: Body,
    client: Fingerprint,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin + Source + Send,
    W: AsyncWrite + Unpin,
{
    let name = safe_name(name)?;
    let shown = name.to_string();
    check_size(ctx, size)?;
    let _slot = ctx.slots.acquire(who, size).await.map_err(Failure::abort)?;
    let begun = ctx
        .storage
        .begin_partial(name, client.0, size, ctx.limits.partials());
    let Some(mut partial) = begun.await? else {
        return Err(Failure::Refuse(
            ErrorCode::Unsupported,
            "this server cannot resume uploads; use a plain upload".into(),
        ));
    };
    if let Some(meta) = body.meta {
        partial.set_meta(meta);
    }
    // What is held is on the disk already: only the rest needs room.
    let space = match reserve(ctx, size - partial.held).await {
        Ok(space) => space,
        Err(refused) => {
            if partial.held == 0 {
                partial.discard().await;
            }
            return Err(refused);
        }
    };
    let io = |e: std::io::Error| Failure::from(StorageError::from_io(&shown, e));
    // What is held, as pieces: known to the backend, or hashed again at every attempt (what
    // the client does not use of that is charged to it).
    let (pieces, covered) = match partial.pieces() {
        Some(pieces) => (pieces, None),
        None => {
            let hashing = ctx.slots.hashing(who, partial.held);
            let (pieces, covered) = Pieces::hash(&mut partial.source(), hashing.bytes)
                .await
                .map_err(io)?;
            (pieces, Some((hashing, covered)))
        }
    };
    let held = Response::Held {
        chunk: pieces.chunk,
        hashes: pieces.hashes.clone(),
    };
    respond(ctx, send, &held).await?;
    let from = read_resume(ctx, recv, pieces.len(), &pieces).await?;
    let before = match (partial.state_at(from), covered) {
        (Some(state), _) => state,
        (None, Some((hashing, covered))) => {
            hashing.used(from);
            covered.at(from, || partial.source()).await.map_err(io)?
        }
        (None, None) => hash_prefix(&mut partial.source(), from).await.map_err(io)?,
    };
    // Cutting back to `from` frees what the rest will take again.
    let dropped = partial.held - from;
    partial.keep(from).await?;
    space.grow(dropped);
    let rest = size - from;
    let claim = partial.superseded();
    // The backend may hash the rest itself, in the pass it makes anyway (see `take_hashing`).
    let hasher = partial.take_hashing(before);
    let mut sink = space.counting(partial.sink());
    let mut unpacked = Decompressing::new(&mut *recv);
    let receiving = async {
        let hashing = match hasher {
            Some(hasher) => Hashing::Here(hasher),
            None => Hashing::Backend(&partial),
        };
        match body.compressed {
            true => receive(ctx, &shown, hashing, rest, &mut unpacked, &mut sink).await,
            false => receive(ctx, &shown, hashing, rest, unpacked.inner, &mut sink).await,
        }
    };
    let outcome = tokio::select! {
        outcome = receiving => outcome,
        () = claim.notified() => Err(Failure::Abort(
            close::ABORTED,
            "a newer attempt of the same client took over".into(),
        )),
    };
    let received = match outcome {
        Ok(digest) => digest,
        Err(Failure::Refuse(code @ (ErrorCode::HashMismatch | ErrorCode::NoSpace), message)) => {
            // What is held is wrong, or the client's file changed mid-way: start over next
            // time. Or the disk is full: what the partial holds must not keep it full.
            partial.discard().await;
            return Err(Failure::Refuse(code, message));
        }
        // Anything else (a broken connection above all) keeps the partial for the next attempt.
        Err(other) => return Err(other),
    };
    partial.commit(received).await?;
    respond(ctx, send, &Response::Done { sha256: received }).await?;
    if from > 0 {
        tracing::info!(from = from, "resumed upload");
    }
    Ok(rest)
}

/// Who hashes an upload's body.
enum Hashing<'a> {
    /// The copy, continuing this state.
    Here(Sha256),
    /// The backend, as it stores it ([`crate::storage::Partial::take_hashing`]).
    Backend(&'a Partial),
}

/// Receives `len` body bytes into `sink`, hashed as `hashing` says, then the trailer and the
/// end of the stream, and checks the whole file's hash against the trailer. Returns that hash.
async fn receive<R: AsyncRead + Unpin + Source, S: Sink>(
    ctx: &Context,
    shown: &str,
    hashing: Hashing<'_>,
    len: u64,
    recv: &mut R,
    sink: &mut S,
) -> Result<[u8; 32], Failure> {
    let stall = Some(ctx.limits.stall_timeout);
    let hidden = ProgressBar::hidden();
    let received = match hashing {
        Hashing::Here(hasher) => copy_continuing(hasher, recv, sink, len, stall, &hidden)
            .await
            .map_err(|e| copy_failure(shown, e))?,
        Hashing::Backend(partial) => {
            copy_unhashed(recv, sink, len, stall, &hidden)
                .await
                .map_err(|e| copy_failure(shown, e))?;
            partial.digest().await?
        }
    };
    finish(ctx, recv, received).await?;
    Ok(received)
}

/// What a failed copy of an upload's body tells the client.
pub(super) fn copy_failure(shown: &str, e: CopyError) -> Failure {
    match e {
        CopyError::Write(e) => StorageError::from_io(shown, e).into(),
        e @ CopyError::Short { .. } => Failure::Refuse(
            ErrorCode::SizeMismatch,
            format!("the upload was cut short: {e}; nothing was stored"),
        ),
        e @ CopyError::Stalled(_) => Failure::Abort(close::TOO_SLOW, e.to_string()),
        CopyError::Read(e) => Failure::abort(e),
    }
}

/// After a body whose SHA-256 was `received`: reads the trailer and the end of the stream, and
/// checks the sender's hash against what arrived. Each must come within the stall timeout, as
/// every block of the body had to: a client cannot hold its slot by never sending them.
async fn finish<R: AsyncRead + Unpin>(
    ctx: &Context,
    recv: &mut R,
    received: [u8; 32],
) -> Result<(), Failure> {
    let read = read_frame_limited::<Trailer, _>(recv, ctx.limits.max_frame);
    let trailer = match within_stall(ctx, read).await? {
        Ok(trailer) => trailer,
        // Bytes where the trailer should be: the body was longer than announced.
        Err(FrameError::Malformed | FrameError::TooLarge { .. } | FrameError::Truncated) => {
            return Err(Failure::Refuse(
                ErrorCode::SizeMismatch,
                "the upload was longer than announced; nothing was stored".into(),
            ))
        }
        Err(e) => return Err(Failure::abort(e)),
    };
    // The trailer must end the stream; anything after it is a broken peer.
    let mut extra = [0u8; 1];
    match within_stall(ctx, recv.read(&mut extra)).await? {
        Ok(0) => {}
        Ok(_) => {
            return Err(Failure::Refuse(
                ErrorCode::BadRequest,
                "unexpected data after the upload; nothing was stored".into(),
            ))
        }
        Err(e) => return Err(Failure::abort(e)),
    }
    if trailer.sha256 != received {
        return Err(Failure::Refuse(
            ErrorCode::HashMismatch,
            "the received data does not match the sender's SHA-256; nothing was stored".into(),
        ));
    }
    Ok(())
}

/// Refuses, before any data moves, an upload over the size limit.
pub(super) fn check_size(ctx: &Context, size: u64) -> Result<(), Failure> {
    use indicatif::HumanBytes;
    match ctx.limits.max_upload {
        Some(max) if size > max => Err(Failure::Refuse(
            ErrorCode::TooLarge,
            format!(
                "the upload ({}) is larger than this server accepts ({})",
                HumanBytes(size),
                HumanBytes(max)
            ),
        )),
        _ => Ok(()),
    }
}

/// Sets the space for `size` more bytes aside, or refuses (before any data moves) an upload
/// that would leave the disk with less than the reserve, counting what running uploads still
/// need.
pub(super) async fn reserve(ctx: &Context, size: u64) -> Result<Reservation, Failure> {
    Ok(ctx.storage.reserve(size, ctx.limits.min_free).await?)
}
