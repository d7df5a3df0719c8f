//! DOWNLOAD: header, body, trailer with the SHA-256 of the body.

use indicatif::ProgressBar;
use tokio::io::AsyncWrite;

use super::connection::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response, Trailer};
use crate::storage::Storage;
use crate::transfer::copy_hashed;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    name: &str,
    send: &mut W,
) -> Outcome {
    let name = safe_name(name)?;
    let mut file = storage.open_read(name).await?;
    let header = Response::FileHeader {
        size: file.size,
        modified: file.modified,
    };
    // From here on a failure cannot be told with a frame: the client is reading body bytes.
    let abort = |e: &dyn std::fmt::Display| Failure::Abort(e.to_string());
    write_frame(send, &header).await.map_err(|e| abort(&e))?;
    let sha256 = copy_hashed(&mut file.file, send, file.size, &ProgressBar::hidden())
        .await
        .map_err(|e| abort(&e))?;
    write_frame(send, &Trailer { sha256 })
        .await
        .map_err(|e| abort(&e))?;
    Ok(file.size)
}
