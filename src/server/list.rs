//! LIST: a directory's entries, in pages.

use tokio::io::AsyncWrite;

use super::exchange::{safe_name, Failure, Outcome};
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
    let mut listing = storage.list(dir).await?;
    // One page ahead, so that each page sent knows whether it is the last.
    let mut page = listing.next_page(LIST_PAGE_ENTRIES).await?;
    loop {
        let next = if page.is_empty() {
            Vec::new()
        } else {
            listing.next_page(LIST_PAGE_ENTRIES).await?
        };
        let last = next.is_empty();
        send_page(send, page, last).await?;
        if last {
            // A listing moves no file bytes; the log's byte count is for transfers.
            return Ok(0);
        }
        page = next;
    }
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
