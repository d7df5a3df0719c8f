//! DELETE: remove one file.

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::Response;

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, name: &str, send: &mut W) -> Outcome {
    ctx.storage.delete(safe_name(name)?).await?;
    respond(ctx, send, &Response::Deleted).await?;
    Ok(0)
}
