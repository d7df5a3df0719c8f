//! LIST: a directory's entries, in pages, read from storage page by page as the client takes
//! them; a client that stops reading is cut off at the stall timeout like any other.

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Failure, Outcome};
use super::Context;
use crate::protocol::{Entry, Response, LIST_PAGE_ENTRIES};

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, dir: &str, send: &mut W) -> Outcome {
    let dir = if dir.is_empty() {
        None
    } else {
        Some(safe_name(dir)?)
    };
    let mut listing = ctx.storage.list(dir).await?;
    // One page ahead, so that each page sent knows whether it is the last.
    let mut page = listing.next_page(LIST_PAGE_ENTRIES).await?;
    loop {
        let next = if page.is_empty() {
            Vec::new()
        } else {
            listing.next_page(LIST_PAGE_ENTRIES).await?
        };
        let last = next.is_empty();
        send_page(ctx, send, page, last).await?;
        if last {
            // A listing moves no file bytes; the log's byte count is for transfers.
            return Ok(0);
        }
        page = next;
    }
}

async fn send_page<W: AsyncWrite + Unpin>(
    ctx: &Context,
    send: &mut W,
    entries: Vec<Entry>,
    last: bool,
) -> Result<(), Failure> {
    respond(ctx, send, &Response::ListPage { entries, last }).await
}
