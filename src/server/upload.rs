//! UPLOAD: accept, receive into a private temp file, verify, commit.

use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::connection::{safe_name, Failure, Outcome};
use crate::protocol::{read_frame, write_frame, ErrorCode, FrameError, Response, Trailer};
use crate::storage::{Storage, StorageError};
use crate::transfer::{copy_hashed, CopyError};

pub(super) async fn run<R, W>(
    storage: &Storage,
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
    let mut upload = storage.begin_upload(name).await?;
    write_frame(send, &Response::Ready)
        .await
        .map_err(|e| Failure::Abort(e.to_string()))?;
    let received = match copy_hashed(recv, &mut upload.file, size, &ProgressBar::hidden()).await {
        Ok(digest) => digest,
        Err(CopyError::Write(e)) => return Err(StorageError::from_io(&shown, e).into()),
        Err(e @ CopyError::Short { .. }) => {
            return Err(Failure::Refuse(
                ErrorCode::SizeMismatch,
                format!("the upload was cut short: {e}; nothing was stored"),
            ))
        }
        Err(CopyError::Read(e)) => return Err(Failure::Abort(e.to_string())),
    };
    let trailer = match read_frame::<Trailer, _>(recv).await {
        Ok(trailer) => trailer,
        // Bytes where the trailer should be: the body was longer than announced.
        Err(FrameError::Malformed | FrameError::TooLarge { .. } | FrameError::Truncated) => {
            return Err(Failure::Refuse(
                ErrorCode::SizeMismatch,
                "the upload was longer than announced; nothing was stored".into(),
            ))
        }
        Err(e) => return Err(Failure::Abort(e.to_string())),
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
        Err(e) => return Err(Failure::Abort(e.to_string())),
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
        .map_err(|e| Failure::Abort(e.to_string()))?;
    Ok(size)
}
