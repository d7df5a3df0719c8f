//! DELETE: remove one file.

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    name: &str,
    send: &mut W,
) -> Outcome {
    storage.delete(safe_name(name)?).await?;
    write_frame(send, &Response::Deleted)
        .await
        .map_err(Failure::abort)?;
    Ok(0)
}
