//! SHARE at an admin's prompt: share links made, listed and revoked by the running server. The
//! name is checked through the storage, as the link will be served (a local directory or a
//! bucket), by the same rules as `qft share` ([`crate::share::plan`]); the store is this
//! server's, in its qft home. A server without `--web` answers `NotEnabled`: its links would
//! open nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWrite;
use tracing::info;

use super::exchange::{respond, safe_name, Failure, Outcome};
use super::web::Web;
use super::Context;
use crate::protocol::{ErrorCode, Response, ShareInfo, SHARE_PAGE_ENTRIES};
use crate::share::{check_name, plan, NewShare, Share};

/// A `ShareCreate` request's fields.
#[derive(Debug)]
pub(super) struct Asked {
    pub(super) name: String,
    pub(super) expires: u64,
    pub(super) upload_only: bool,
    pub(super) uses: Option<u64>,
}

/// Makes a link and answers with what the client prints it from.
pub(super) async fn create<W: AsyncWrite + Unpin>(
    ctx: &Context,
    asked: Asked,
    send: &mut W,
) -> Outcome {
    let web = enabled(ctx)?;
    let name = safe_name(&asked.name)?;
    check_name(&name).map_err(bad)?;
    let found = ctx.storage.stat(name.clone()).await?;
    let expires_in = Duration::from_secs(asked.expires);
    let (kind, access) = plan(&name, found.kind, asked.upload_only, expires_in).map_err(bad)?;
    if asked.uses == Some(0) {
        return Err(bad("a link needs at least one use"));
    }
    let new = NewShare {
        root: web.root().to_string(),
        name: name.to_string(),
        kind,
        access,
        expires_in,
        max_uses: asked.uses,
    };
    let made = blocking(web, move |web| {
        let hashes = web
            .hashes_until(SystemTime::now() + expires_in)
            .map_err(|e| store_failed(&e))?;
        let (share, token) = web.shares().create(new).map_err(|e| store_failed(&e))?;
        Ok((share, token, hashes))
    });
    let (share, token, hashes) = made.await?;
    info!(share = %share.id, access = %share.access, "share link made");
    let answer = Response::Shared {
        share: ShareInfo::from(&share),
        token,
        hashes,
        port: ctx.port,
    };
    respond(ctx, send, &answer).await?;
    Ok(0)
}

/// Lists this server's links (those of its served root), page by page.
pub(super) async fn list<W: AsyncWrite + Unpin>(ctx: &Context, send: &mut W) -> Outcome {
    let web = enabled(ctx)?;
    let shares = blocking(web, |web| {
        let all = web.shares().list().map_err(|e| store_failed(&e))?;
        Ok(all
            .iter()
            .filter(|s| s.root == web.root())
            .map(ShareInfo::from)
            .collect::<Vec<_>>())
    })
    .await?;
    let mut pages = shares.chunks(SHARE_PAGE_ENTRIES).peekable();
    if pages.peek().is_none() {
        let empty = Response::SharePage {
            shares: Vec::new(),
            last: true,
        };
        respond(ctx, send, &empty).await?;
    }
    while let Some(page) = pages.next() {
        let frame = Response::SharePage {
            shares: page.to_vec(),
            last: pages.peek().is_none(),
        };
        respond(ctx, send, &frame).await?;
    }
    Ok(0)
}

/// Revokes one of this server's links.
pub(super) async fn revoke<W: AsyncWrite + Unpin>(
    ctx: &Context,
    id: &str,
    send: &mut W,
) -> Outcome {
    let web = enabled(ctx)?;
    let id = id.to_string();
    let shown = crate::paths::sanitize(&id);
    let revoked = blocking(web, move |web| {
        let ours = |s: &Share| s.root == web.root();
        match web.shares().get(&id).map_err(|e| store_failed(&e))? {
            Some(share) if ours(&share) => web.shares().revoke(&id).map_err(|e| store_failed(&e)),
            _ => Ok(false),
        }
    });
    if !revoked.await? {
        return Err(Failure::Refuse(
            ErrorCode::NotFound,
            format!("there is no share link with the ID '{shown}'"),
        ));
    }
    info!(share = %shown, "share link revoked");
    respond(ctx, send, &Response::Revoked).await?;
    Ok(0)
}

/// The web side, or the refusal of a server without `--web`.
fn enabled(ctx: &Context) -> Result<Arc<Web>, Failure> {
    ctx.web.clone().ok_or_else(|| {
        Failure::Refuse(
            ErrorCode::NotEnabled,
            "this server was not started with --web: share links open in a browser, which only \
             a server with --web answers"
                .into(),
        )
    })
}

fn bad(why: impl std::fmt::Display) -> Failure {
    Failure::Refuse(ErrorCode::BadRequest, why.to_string())
}

fn store_failed(e: &dyn std::fmt::Display) -> Failure {
    tracing::warn!("share store: {e}");
    Failure::Refuse(
        ErrorCode::Internal,
        "the server cannot keep its share links".into(),
    )
}

/// Runs `f` on the share store (files under a lock) on the blocking pool.
async fn blocking<T: Send + 'static>(
    web: Arc<Web>,
    f: impl FnOnce(&Web) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(move || f(&web))
        .await
        .unwrap_or_else(|e| Err(store_failed(&e)))
}
