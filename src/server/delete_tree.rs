//! DELETE -r: remove a file, or a directory and everything in it (links removed, never
//! followed; never the private area).

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::Response;

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, name: &str, send: &mut W) -> Outcome {
    let files = ctx.storage.delete_tree(safe_name(name)?).await?;
    respond(ctx, send, &Response::Removed { files }).await?;
    Ok(0)
}
