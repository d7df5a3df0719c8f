//! UPLOAD of many small files on one stream (`Request::UploadBundle`): one slot and one space
//! reservation for all of them, each file's name, size and hash checked as it arrives, then
//! all of them stored together ([`crate::storage::Storage::store_whole`]) and answered one by
//! one, in order. One file's failure is that file's answer; a peer that breaks the bundle's
//! framing (sizes that do not add up, bytes after the end) loses the whole stream.

use std::time::Instant;

use indicatif::HumanBytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tracing::info;

use super::exchange::{respond, safe_name, within_stall, Failure, Outcome};
use super::metrics::Ended;
use super::slots::Who;
use super::upload::{check_size, copy_failure, reserve};
use super::Context;
use crate::protocol::{
    close, read_frame_limited, BundleItem, ErrorCode, FrameError, Response, Trailer,
    MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, SMALL_FILE,
};
use crate::storage::Whole;
use crate::transfer::{read_whole, Source};

/// What one file of the bundle comes to before the storage has its say.
enum Verdict {
    /// Received whole and verified: stored as the next of the storage's results.
    Stored { size: u64, sha256: [u8; 32] },
    /// Refused alone: this answer.
    Refused(ErrorCode, String),
}

pub(super) async fn run<R, W>(
    ctx: &Context,
    who: Who,
    files: u32,
    bytes: u64,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin + Source,
    W: AsyncWrite + Unpin,
{
    if files == 0 || files > MAX_BUNDLE_FILES || bytes > MAX_BUNDLE_BYTES {
        return Err(Failure::Refuse(
            ErrorCode::BadRequest,
            format!(
                "a bundle holds 1 to {MAX_BUNDLE_FILES} files of {} together at most",
                HumanBytes(MAX_BUNDLE_BYTES)
            ),
        ));
    }
    let started = Instant::now();
    let _slot = ctx
        .slots
        .acquire(who, bytes)
        .await
        .map_err(Failure::abort)?;
    // Held until the files are stored: bodies go straight to the disk, uncounted, as a single
    // small upload's do.
    let _space = reserve(ctx, bytes).await?;
    respond(ctx, send, &Response::Ready).await?;

    let mut left = bytes;
    let mut verdicts = Vec::with_capacity(files as usize);
    let mut store = Vec::with_capacity(files as usize);
    for _ in 0..files {
        let read = read_frame_limited::<BundleItem, _>(recv, ctx.limits.max_frame);
        let item = within_stall(ctx, read).await?.map_err(broken)?;
        if item.size > left || item.size >= SMALL_FILE {
            return Err(Failure::Abort(
                close::ABORTED,
                "the bundle's files are larger than it announced".into(),
            ));
        }
        left -= item.size;
        let stall = Some(ctx.limits.stall_timeout);
        let (body, received) = read_whole(recv, item.size as usize, stall)
            .await
            .map_err(|e| copy_failure(&item.name, e))
            .map_err(fatal)?;
        let read = read_frame_limited::<Trailer, _>(recv, ctx.limits.max_frame);
        let trailer = within_stall(ctx, read).await?.map_err(broken)?;
        let checked = safe_name(&item.name).and_then(|name| {
            check_size(ctx, item.size)?;
            match trailer.sha256 == received {
                true => Ok(name),
                false => Err(Failure::Refuse(
                    ErrorCode::HashMismatch,
                    "the received data does not match the sender's SHA-256; nothing was stored"
                        .into(),
                )),
            }
        });
        match checked {
            Ok(name) => {
                verdicts.push(Verdict::Stored {
                    size: item.size,
                    sha256: received,
                });
                store.push(Whole {
                    name,
                    meta: item.meta,
                    body,
                    sha256: received,
                });
            }
            Err(refused) => {
                let (code, message) = refusal(refused)?;
                verdicts.push(Verdict::Refused(code, message));
            }
        }
    }
    if left != 0 {
        return Err(Failure::Abort(
            close::ABORTED,
            "the bundle's files are smaller than it announced".into(),
        ));
    }
    // The last trailer must end the stream.
    let mut extra = [0u8; 1];
    match within_stall(ctx, recv.read(&mut extra)).await? {
        Ok(0) => {}
        Ok(_) => return Err(broken(FrameError::Malformed)),
        Err(e) => return Err(Failure::abort(e)),
    }

    let names: Vec<String> = store.iter().map(|w| w.name.to_string()).collect();
    let mut stored = ctx.storage.store_whole(store).await.into_iter().zip(names);
    let mut moved = 0;
    for verdict in verdicts {
        let took = started.elapsed();
        let (answer, ended) = match verdict {
            Verdict::Stored { size, sha256 } => match stored.next() {
                Some((Ok(()), name)) => {
                    info!(name = %crate::paths::sanitize(&name), bytes = size, "stored");
                    moved += size;
                    (Response::Done { sha256 }, Ended::Ok(size))
                }
                Some((Err(e), _)) => {
                    let (code, message) = refusal(e.into())?;
                    (Response::Error { code, message }, Ended::Refused(code))
                }
                None => return Err(Failure::abort("the storage lost a file of the bundle")),
            },
            Verdict::Refused(code, message) => {
                (Response::Error { code, message }, Ended::Refused(code))
            }
        };
        if let Response::Error { message, .. } = &answer {
            info!("a file refused: {message}");
        }
        // Each file counts as an upload, as it would alone; the bundle itself moves no bytes.
        ctx.metrics
            .command("UPLOAD", ended, took, Some(true), false);
        respond(ctx, send, &answer).await?;
    }
    Ok(moved)
}

/// A frame of the bundle that is not one: the stream is no longer in step.
fn broken(e: FrameError) -> Failure {
    Failure::Abort(close::ABORTED, format!("a broken bundle: {e}"))
}

/// A failure reading one body ends the bundle: the bytes after it cannot be told apart.
fn fatal(failure: Failure) -> Failure {
    match failure {
        Failure::Refuse(_, why) => Failure::Abort(close::ABORTED, why),
        abort => abort,
    }
}

/// One file's refusal as its answer; an abort stays the whole stream's.
fn refusal(failure: Failure) -> Result<(ErrorCode, String), Failure> {
    match failure {
        Failure::Refuse(code, message) => Ok((code, message)),
        abort => Err(abort),
    }
}
