//! RMDIR: remove an empty directory.

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    name: &str,
    send: &mut W,
) -> Outcome {
    storage.remove_dir(safe_name(name)?).await?;
    write_frame(send, &Response::Removed { files: 0 })
        .await
        .map_err(Failure::abort)?;
    Ok(0)
}
