//! LIST: a directory's entries, in pages.

use tokio::io::AsyncWrite;

use super::connection::{safe_name, Failure, Outcome};
use crate::protocol::{write_frame, Response, LIST_PAGE_ENTRIES};
use crate::storage::Storage;

pub(super) async fn run<W: AsyncWrite + Unpin>(
    storage: &Storage,
    dir: &str,
    send: &mut W,
) -> Outcome {
    let dir = if dir.is_empty() {
        None
    } else {
        Some(safe_name(dir)?)
    };
    let entries = storage.list(dir).await?;
    tracing::debug!(entries = entries.len(), "listing");
    let mut pages = entries.chunks(LIST_PAGE_ENTRIES).peekable();
    if pages.peek().is_none() {
        return send_page(send, Vec::new(), true).await.map(|()| 0);
    }
    // A listing moves no file bytes; the log's byte count is for transfers.
    while let Some(page) = pages.next() {
        send_page(send, page.to_vec(), pages.peek().is_none()).await?;
    }
    Ok(0)
}

async fn send_page<W: AsyncWrite + Unpin>(
    send: &mut W,
    entries: Vec<crate::protocol::Entry>,
    last: bool,
) -> Result<(), Failure> {
    write_frame(send, &Response::ListPage { entries, last })
        .await
        .map_err(Failure::abort)
}
