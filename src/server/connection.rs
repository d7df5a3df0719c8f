//! One client connection: decides who the client is and what it may do, then accepts its
//! streams and runs one command on each ([`super::dispatch`], the path browsers' streams take
//! too).

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::ConnectionError;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::field::Empty;
use tracing::{debug, info, info_span, warn, Instrument};

use super::admission::BUSY_RETRY_AFTER;
use super::dispatch::{serve_stream, Peer};
use super::metrics::Attempt;
use super::{Context, Gate};
use crate::protocol::close;
use crate::tls::peer_fingerprint;

/// One connection, from its handshake to its close: the handshake within its deadline (its
/// place among the handshakes in progress held meanwhile), the client's grant, a connection
/// slot (or a close with [`close::BUSY`] saying when to try again), and only then streams.
pub(super) async fn handle(
    incoming: quinn::Incoming,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
    gate: Gate,
) {
    let peer = incoming.remote_address();
    let span = info_span!("conn", %peer, client = Empty, who = Empty);
    async move {
        let Gate { place, admitted } = gate;
        let timer = ctx.metrics.handshake();
        let connecting = match ctx.config_for(peer) {
            Some(config) => incoming.accept_with(config),
            None => incoming.accept(),
        };
        let connecting = match connecting {
            Ok(connecting) => connecting,
            Err(e) => {
                debug!("handshake failed: {e}");
                ctx.metrics.attempt(Attempt::HandshakeFailed);
                return;
            }
        };
        let handshake = tokio::time::timeout(ctx.limits.handshake_timeout, connecting);
        let conn = match handshake.await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                debug!("handshake failed: {e}");
                ctx.metrics.attempt(Attempt::HandshakeFailed);
                return;
            }
            Err(_) => {
                // Dropping the handshake abandons it; the client (if any) times out.
                debug!(
                    "handshake not finished within {:?}",
                    ctx.limits.handshake_timeout
                );
                ctx.metrics.attempt(Attempt::HandshakeTimeout);
                return;
            }
        };
        timer.done();
        drop(place);
        if let Some(web) = ctx.web.clone().filter(|_| super::web::is_browser(&conn)) {
            // A browser has no key: what it may do is decided per session (`web`), which
            // holds it to the same connection limits (`admitted`) as any client.
            return super::web::serve(conn, ctx, web, stop, admitted).await;
        }
        let client = peer_fingerprint(&conn);
        let client_text = client.map_or_else(|| "no key".to_string(), |f| f.to_string());
        tracing::Span::current().record("client", client_text.as_str());
        let grant = match ctx.grants.grant(client.as_ref()).await {
            Ok(Some(grant)) => grant,
            Ok(None) => {
                info!("refused: not an authorized client");
                ctx.metrics.attempt(Attempt::NotAuthorized);
                let reason = format!(
                    "this client ({client_text}) is not authorized on this server; \
                     give its operator the output of 'qft id' to be added"
                );
                conn.close(close::NOT_AUTHORIZED.into(), reason.as_bytes());
                return;
            }
            Err(e) => {
                warn!("refusing every client: {e}");
                ctx.metrics.attempt(Attempt::NotAuthorized);
                conn.close(
                    close::NOT_AUTHORIZED.into(),
                    b"the server cannot read its list of authorized clients",
                );
                return;
            }
        };
        tracing::Span::current().record("who", grant.comment.as_str());
        let mut slot = match admitted.admit(peer.ip(), &ctx.limits) {
            Ok(slot) => slot,
            Err(why) => {
                info!("refused: {why}");
                ctx.metrics.attempt(Attempt::Busy);
                let reason = close::busy(&why, BUSY_RETRY_AFTER);
                conn.close(close::BUSY.into(), reason.as_bytes());
                // Let the close reach the client, briefly: the reason is what it acts on.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                return;
            }
        };
        slot.attach(&conn);
        if let Some((_, tuning)) = &ctx.quic {
            crate::tuning::fit_receive_window(&conn, ctx.limits.connection_window(tuning));
        }
        let _open = ctx.metrics.open();
        conn.set_max_concurrent_bi_streams(ctx.limits.max_streams.into());
        info!(permissions = %grant.permissions.intersection(ctx.mask), "connected");
        let who = ctx.slots.who(client, peer.ip());
        let paced = ctx.paced();
        let started = Instant::now();
        let mut streams = JoinSet::new();
        let reason = loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let id = send.id().index();
                        let peer = Peer::Client { conn: conn.clone(), key: client };
                        let stream = serve_stream(send, recv, ctx.clone(), peer, who, paced.clone());
                        streams.spawn(stream.instrument(info_span!("stream", id)));
                    }
                    Err(e) => break describe_close(&e),
                },
                Some(_) = streams.join_next(), if !streams.is_empty() => {}
                _ = stop.changed() => break SHUTTING_DOWN.to_string(),
            }
        };
        // Let running commands finish; the server bounds this with its grace period.
        while streams.join_next().await.is_some() {}
        conn.close(close::NORMAL.into(), goodbye(&reason));
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        // What the path did to what this end sent (downloads' data): an operator's first look
        // at a lossy client, and bench/run's count of packets lost on the wan.
        let path = conn.stats().path;
        info!(
            duration_ms,
            rtt_ms = path.rtt.as_secs_f64() * 1000.0,
            sent_packets = path.sent_packets,
            lost_packets = path.lost_packets,
            "disconnected: {reason}"
        );
    }
    .instrument(span)
    .await
}

/// Why a connection ended when the server is stopping (the log line's reason).
pub(super) const SHUTTING_DOWN: &str = "server shutting down";

/// The reason a connection (or a browser's session) is closed with, which the peer shows: a
/// shutdown says so ("bye" alone told a person nothing).
pub(super) fn goodbye(reason: &str) -> &'static [u8] {
    match reason == SHUTTING_DOWN {
        true => b"it is shutting down",
        false => b"bye",
    }
}

fn describe_close(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(c) if c.error_code == close::NORMAL.into() => {
            "logout".into()
        }
        ConnectionError::TimedOut => "idle timeout".into(),
        other => other.to_string(),
    }
}
