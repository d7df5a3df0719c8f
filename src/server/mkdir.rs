//! MKDIR: make a directory (with its missing parents, on request).

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::Response;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    ctx: &Context,
    name: &str,
    parents: bool,
    send: &mut W,
) -> Outcome {
    ctx.storage.make_dir(safe_name(name)?, parents).await?;
    respond(ctx, send, &Response::Made).await?;
    Ok(0)
}
