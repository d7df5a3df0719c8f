//! RENAME: give a file or directory a new name, never replacing one (see the storage contract
//! for what each backend does in one step and what it refuses).

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::Response;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    ctx: &Context,
    from: &str,
    to: &str,
    send: &mut W,
) -> Outcome {
    ctx.storage.rename(safe_name(from)?, safe_name(to)?).await?;
    respond(ctx, send, &Response::Renamed).await?;
    Ok(0)
}
