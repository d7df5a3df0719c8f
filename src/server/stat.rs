//! STAT: one entry's kind, size, time, permission bits, and SHA-256 (known, or read now when
//! asked for: `sum`, `sync --checksum`).

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Failure, Outcome};
use super::slots::Who;
use super::Context;
use crate::protocol::{EntryKind, Response};

pub(super) async fn run<W: AsyncWrite + Unpin>(
    ctx: &Context,
    who: Who,
    name: &str,
    digest: bool,
    send: &mut W,
) -> Outcome {
    let name = safe_name(name)?;
    let mut info = ctx.storage.stat(name.clone()).await?;
    let mut read = 0;
    if digest && info.kind == EntryKind::File && info.sha256.is_none() {
        // Reading a whole file is a transfer's worth of work: it takes a transfer's slot.
        let _slot = ctx
            .slots
            .acquire(who, info.size)
            .await
            .map_err(Failure::abort)?;
        info.sha256 = Some(ctx.storage.digest(name).await?);
        read = info.size;
    }
    respond(ctx, send, &Response::Info(info)).await?;
    Ok(read)
}
