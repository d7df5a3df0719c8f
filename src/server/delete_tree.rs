//! DELETE -r: remove a file, or a directory and everything in it (links removed, never
//! followed; never the private area).

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    name: &str,
    send: &mut W,
) -> Outcome {
    let files = storage.delete_tree(safe_name(name)?).await?;
    write_frame(send, &Response::Removed { files })
        .await
        .map_err(Failure::abort)?;
    Ok(0)
}
