//! DOWNLOAD: header, body, trailer with the SHA-256 of the body.

use indicatif::ProgressBar;
use tokio::io::AsyncWrite;

use super::connection::{safe_name, Failure, Outcome};
use super::Context;
use crate::protocol::{close, write_frame, Response, Trailer};
use crate::transfer::{copy_hashed, CopyError};

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, name: &str, send: &mut W) -> Outcome {
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
    let stall = Some(ctx.limits.stall_timeout);
    let sha256 = match copy_hashed(
        &mut file.file,
        send,
        file.size,
        stall,
        &ProgressBar::hidden(),
    )
    .await
    {
        Ok(digest) => digest,
        Err(e @ CopyError::Stalled(_)) => {
            return Err(Failure::Abort(close::TOO_SLOW, e.to_string()))
        }
        Err(e) => return Err(Failure::abort(e)),
    };
    write_frame(send, &Trailer { sha256 })
        .await
        .map_err(Failure::abort)?;
    Ok(file.size)
}
