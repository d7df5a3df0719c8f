//! RENAME: give a file or directory a new name, never replacing one (see the storage contract
//! for what each backend does in one step and what it refuses).

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    from: &str,
    to: &str,
    send: &mut W,
) -> Outcome {
    storage.rename(safe_name(from)?, safe_name(to)?).await?;
    write_frame(send, &Response::Renamed)
        .await
        .map_err(Failure::abort)?;
    Ok(0)
}
