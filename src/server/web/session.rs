//! One browser's WebTransport session: a connection slot as for any client, the HTTP/3
//! handshake (by `web-transport-quinn`), what the session may do ([`Scope`]), then a task per
//! bidirectional stream, each one qft request run by the same dispatcher as a QUIC client's
//! ([`crate::server::dispatch`]): the same handlers, limits and bandwidth limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, info_span, warn, Instrument};

use super::fault::Corrupting;
use super::{Scope, Web};
use crate::protocol::close;
use crate::server::admission::{Connections, BUSY_RETRY_AFTER};
use crate::server::connection::{goodbye, SHUTTING_DOWN};
use crate::server::dispatch::{serve_stream, Peer};
use crate::server::metrics::Attempt;
use crate::server::Context;

/// Serves a connection that negotiated `h3` until the browser leaves or the server stops: a
/// slot among the connections first, as for any client (or a close saying when to try again).
pub(crate) async fn serve(
    conn: quinn::Connection,
    ctx: Arc<Context>,
    web: Arc<Web>,
    mut stop: watch::Receiver<bool>,
    admitted: Connections,
) {
    let admission = admitted.admit(conn.remote_address().ip(), &ctx.limits);
    // Only the CONNECT request's stream until the browser is admitted.
    let streams = if admission.is_ok() {
        ctx.limits.max_streams
    } else {
        1
    };
    conn.set_max_concurrent_bi_streams(streams.into());
    let _slot = match admission {
        Ok(mut slot) => {
            slot.attach(&conn);
            slot
        }
        Err(why) => {
            info!("browser refused: {why}");
            ctx.metrics.attempt(Attempt::Busy);
            let reason = close::busy(&why, BUSY_RETRY_AFTER);
            if let Some(request) = session_request(&conn, Duration::from_secs(2)).await {
                refuse_session(request, close::BUSY, &reason).await;
            }
            return;
        }
    };
    let _open = ctx.metrics.open();
    let Some(request) = session_request(&conn, ctx.limits.request_timeout).await else {
        return;
    };
    let path = request.url.path().to_string();
    let scope = match scope(&ctx, &web, &path).await {
        Ok(scope) => scope,
        Err(reason) => {
            info!("browser refused: {reason}");
            return refuse_session(request, close::NOT_AUTHORIZED, &reason).await;
        }
    };
    let session = match request.ok().await {
        Ok(session) => session,
        Err(e) => {
            info!("WebTransport handshake failed: {e}");
            return;
        }
    };
    match &scope {
        Scope::Whole(allowed) => info!(permissions = %allowed, "browser connected"),
        Scope::Share(share) => {
            info!(share = %share.id, access = %share.access, "browser connected with a share link")
        }
    }
    let peer = Peer::Browser {
        scope: Arc::new(scope),
        web: web.clone(),
    };
    // A browser has no key: its fair share of transfer slots is its address's.
    let who = ctx.slots.who(None, conn.remote_address().ip());
    // The same bandwidth limits as a QUIC client's connection.
    let paced = ctx.paced();
    let started = Instant::now();
    let mut streams = JoinSet::new();
    let reason = loop {
        tokio::select! {
            accepted = session.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let id = send.quic_id().index();
                    let send = Corrupting::new(send, web.corrupt_at);
                    let stream = serve_stream(send, recv, ctx.clone(), peer.clone(), who, paced.clone());
                    streams.spawn(stream.instrument(info_span!("stream", id)));
                }
                Err(e) => break e.to_string(),
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            _ = stop.changed() => break SHUTTING_DOWN.to_string(),
        }
    };
    // Let running commands finish; the server bounds this with its grace period.
    while streams.join_next().await.is_some() {}
    // The page shows this reason, as a qft client shows a connection's; it goes in a capsule on
    // the session's stream, so wait (briefly) for it to arrive before the connection goes.
    session.close(close::NORMAL, goodbye(&reason));
    let _ = tokio::time::timeout(Duration::from_secs(2), session.closed()).await;
    info!(duration = ?started.elapsed(), "browser disconnected: {reason}");
}

/// The browser's WebTransport request (HTTP/3 SETTINGS, then CONNECT), within `deadline`.
async fn session_request(
    conn: &quinn::Connection,
    deadline: Duration,
) -> Option<web_transport_quinn::Request> {
    let accept = web_transport_quinn::Request::accept(conn.clone());
    match tokio::time::timeout(deadline, accept).await {
        Ok(Ok(request)) => Some(request),
        Ok(Err(e)) => {
            info!("not a WebTransport session: {e}");
            conn.close(close::ABORTED.into(), b"not a WebTransport session");
            None
        }
        Err(_) => {
            info!("no WebTransport request in time");
            conn.close(close::TOO_SLOW.into(), b"no request in time");
            None
        }
    }
}

/// Accepts the session only to close it with `reason`: browsers do not show a refused
/// CONNECT's status, but they do show the reason a session was closed with.
async fn refuse_session(request: web_transport_quinn::Request, code: u32, reason: &str) {
    if let Ok(session) = request.ok().await {
        session.close(code, reason.as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(2), session.closed()).await;
    }
}

/// What the session at `path` may do: `/` is the whole server as a client without a key would
/// have it; `/s/TOKEN` is that share link. `Err`: a sentence for the page.
async fn scope(ctx: &Context, web: &Arc<Web>, path: &str) -> Result<Scope, String> {
    if let Some(token) = path.strip_prefix("/s/") {
        let (web, token) = (web.clone(), token.to_string());
        let opened = tokio::task::spawn_blocking(move || web.shares.open(&token, &web.root));
        return match opened.await {
            Ok(Ok(share)) => Ok(Scope::Share(share)),
            Ok(Err(refusal)) => Err(refusal.to_string()),
            Err(_) => Err("the server cannot check this link; try again later".into()),
        };
    }
    match ctx.grants.grant(None).await {
        Ok(Some(grant)) => Ok(Scope::Whole(grant.permissions.intersection(ctx.mask))),
        Ok(None) => Err(
            "this server admits only the clients on its list; ask its operator for a share link"
                .into(),
        ),
        Err(e) => {
            warn!("refusing a browser: {e}");
            Err("the server cannot read its list of authorized clients".into())
        }
    }
}
