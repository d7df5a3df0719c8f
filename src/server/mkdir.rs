//! MKDIR: make a directory (with its missing parents, on request).

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    name: &str,
    parents: bool,
    send: &mut W,
) -> Outcome {
    storage.make_dir(safe_name(name)?, parents).await?;
    write_frame(send, &Response::Made)
        .await
        .map_err(Failure::abort)?;
    Ok(0)
}
