//! WALK: every entry below a directory, with its metadata, in pages (what `sync` compares
//! against). The walk is streamed: the server holds one page and the directories still to read.

use tokio::io::AsyncWrite;

use super::exchange::{respond, safe_name, Outcome};
use super::Context;
use crate::protocol::{Response, WALK_PAGE_ENTRIES};

pub(super) async fn run<W: AsyncWrite + Unpin>(ctx: &Context, dir: &str, send: &mut W) -> Outcome {
    let dir = if dir.is_empty() {
        None
    } else {
        Some(safe_name(dir)?)
    };
    let mut walk = ctx.storage.walk(dir).await?;
    // One page ahead, so that each page sent knows whether it is the last.
    let mut page = walk.next_page(WALK_PAGE_ENTRIES).await?;
    loop {
        let next = if page.is_empty() {
            Vec::new()
        } else {
            // A failure later on is an Error frame among the pages, as a refusal at the start.
            walk.next_page(WALK_PAGE_ENTRIES).await?
        };
        let last = next.is_empty();
        let frame = Response::WalkPage {
            entries: page,
            last,
        };
        // Within the stall timeout: a client that stops reading holds nothing for longer.
        respond(ctx, send, &frame).await?;
        if last {
            return Ok(0);
        }
        page = next;
    }
}
