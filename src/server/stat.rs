//! STAT: one entry's kind, size, time, permission bits, and SHA-256 (known, or read now when
//! asked for: `sum`, `sync --checksum`).

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
use super::Context;
use crate::protocol::{write_frame, EntryKind, Response};

pub(super) async fn run<W: AsyncWrite + Unpin>(
    ctx: &Context,
    name: &str,
    digest: bool,
    send: &mut W,
) -> Outcome {
    let name = safe_name(name)?;
    let mut info = ctx.storage.stat(name.clone()).await?;
    let mut read = 0;
    if digest && info.kind == EntryKind::File && info.sha256.is_none() {
        // Reading a whole file is a transfer's worth of work: it takes a transfer's permit.
        let _permit = ctx.transfers.acquire().await.map_err(Failure::abort)?;
        info.sha256 = Some(ctx.storage.digest(name).await?);
        read = info.size;
    }
    write_frame(send, &Response::Info(info))
        .await
        .map_err(Failure::abort)?;
    Ok(read)
}
