//! UPLOAD: check size and space, accept, receive into a private temp file, verify, commit.

use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::connection::{safe_name, Failure, Outcome};
use super::Context;
use crate::protocol::{
    close, read_frame_limited, write_frame, ErrorCode, FrameError, Response, Trailer,
};
use crate::storage::StorageError;
use crate::transfer::{copy_hashed, CopyError};

pub(super) async fn run<R, W>(
    ctx: &Context,
    name: &str,
    size: u64,
    recv: &mut R,
    send: &mut W,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let name = safe_name(name)?;
    let shown = name.to_string();
    check_room(ctx, size).await?;
    let _permit = ctx.transfers.acquire().await.map_err(Failure::abort)?;
    let mut upload = ctx.storage.begin_upload(name).await?;
    write_frame(send, &Response::Ready)
        .await
        .map_err(Failure::abort)?;
    let stall = Some(ctx.limits.stall_timeout);
    let received =
        match copy_hashed(recv, &mut upload.file, size, stall, &ProgressBar::hidden()).await {
            Ok(digest) => digest,
            Err(CopyError::Write(e)) => return Err(StorageError::from_io(&shown, e).into()),
            Err(e @ CopyError::Short { .. }) => {
                return Err(Failure::Refuse(
                    ErrorCode::SizeMismatch,
                    format!("the upload was cut short: {e}; nothing was stored"),
                ))
            }
            Err(e @ CopyError::Stalled(_)) => {
                return Err(Failure::Abort(close::TOO_SLOW, e.to_string()))
            }
            Err(CopyError::Read(e)) => return Err(Failure::abort(e)),
        };
    let trailer = match read_frame_limited::<Trailer, _>(recv, ctx.limits.max_frame).await {
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
    match recv.read(&mut extra).await {
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
    upload.commit().await?;
    write_frame(send, &Response::Done { sha256: received })
        .await
        .map_err(Failure::abort)?;
    Ok(size)
}

/// Refuses, before any data moves, an upload over the size limit or one that would leave the
/// disk with less than the reserve.
async fn check_room(ctx: &Context, size: u64) -> Result<(), Failure> {
    use indicatif::HumanBytes;
    if let Some(max) = ctx.limits.max_upload {
        if size > max {
            return Err(Failure::Refuse(
                ErrorCode::TooLarge,
                format!(
                    "the upload ({}) is larger than this server accepts ({})",
                    HumanBytes(size),
                    HumanBytes(max)
                ),
            ));
        }
    }
    match ctx.storage.available_space().await {
        Ok(Some(free)) if size.saturating_add(ctx.limits.min_free) > free => Err(Failure::Refuse(
            ErrorCode::NoSpace,
            format!(
                "no space left on the server for {}: it has {} free and keeps {} in reserve",
                HumanBytes(size),
                HumanBytes(free),
                HumanBytes(ctx.limits.min_free)
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            // Not knowing is not a reason to refuse: a full disk still fails the write cleanly.
            tracing::warn!("cannot tell the free space: {e}");
            Ok(())
        }
    }
}
