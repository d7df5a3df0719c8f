//! RMDIR: remove an empty directory.

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::Response;

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, name: &str, send: &mut W) -> Outcome {
    ctx.storage.remove_dir(safe_name(name)?).await?;
    respond(ctx, send, &Response::Removed { files: 0 }).await?;
    Ok(0)
}
