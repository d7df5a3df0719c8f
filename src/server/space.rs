//! SPACE (`df`): how much more the server can store, as an upload sees it: the storage's free
//! space less the reserve every upload must leave (`--min-free`), and the size limit.

use tokio::io::AsyncWrite;

use super::exchange::{Failure, Outcome};
use super::Context;
use crate::protocol::{write_frame, ErrorCode, Response};

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, send: &mut W) -> Outcome {
    let available = match ctx.storage.available_space().await {
        Ok(free) => free.map(|free| free.saturating_sub(ctx.limits.min_free)),
        Err(e) => {
            tracing::warn!("cannot tell the free space: {e}");
            return Err(Failure::Refuse(
                ErrorCode::Internal,
                "the server cannot tell its free space now".into(),
            ));
        }
    };
    let space = Response::Space {
        available,
        max_upload: ctx.limits.max_upload,
    };
    write_frame(send, &space).await.map_err(Failure::abort)?;
    Ok(0)
}
