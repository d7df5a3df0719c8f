//! One client connection: decides who the client is and what it may do, then accepts its
//! streams and runs one command on each.

use std::sync::Arc;
use std::time::Instant;

use quinn::{ConnectionError, RecvStream, SendStream};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

use super::auth::Permissions;
use super::exchange::{Failure, Outcome};
use super::limits::Slot;
use super::slots::Who;
use super::{delete, download, help, list, upload, Context};
use crate::protocol::{
    close, read_frame_limited, write_frame, ErrorCode, FrameError, Request, Response,
};
use crate::tls::{peer_fingerprint, Fingerprint};

/// A connection over a limit: completes the handshake only to say why, then closes.
pub(super) async fn reject(
    incoming: quinn::Incoming,
    reason: String,
    _permit: OwnedSemaphorePermit,
) {
    let peer = incoming.remote_address();
    info!(%peer, "refusing a connection: {reason}");
    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), incoming).await;
    if let Ok(Ok(conn)) = handshake {
        conn.close(close::BUSY.into(), reason.as_bytes());
        // Wait for the close to be delivered (bounded by the timeout above's spirit).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.closed()).await;
    }
}

pub(super) async fn handle(
    incoming: quinn::Incoming,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
    mut slot: Slot,
) {
    let peer = incoming.remote_address();
    let span = info_span!("conn", %peer);
    async move {
        let conn = match incoming.await {
            Ok(conn) => conn,
            Err(e) => {
                info!("handshake failed: {e}");
                return;
            }
        };
        slot.attach(&conn);
        let client = peer_fingerprint(&conn);
        let client_text = client.map_or_else(|| "no key".to_string(), |f| f.to_string());
        let grant = match ctx.access.grant(client.as_ref()).await {
            Ok(Some(grant)) => grant,
            Ok(None) => {
                info!(client = %client_text, "refused: not an authorized client");
                let reason = format!(
                    "this client ({client_text}) is not authorized on this server; \
                     give its operator the output of 'qft id' to be added"
                );
                conn.close(close::NOT_AUTHORIZED.into(), reason.as_bytes());
                return;
            }
            Err(e) => {
                warn!("refusing every client: {e}");
                conn.close(
                    close::NOT_AUTHORIZED.into(),
                    b"the server cannot read its list of authorized clients",
                );
                return;
            }
        };
        let allowed = grant.permissions.intersection(ctx.mask);
        let who = Who::new(&ctx.access, client, peer.ip());
        info!(client = %client_text, who = %grant.comment, permissions = %allowed, "connected");
        let started = Instant::now();
        let mut streams = JoinSet::new();
        let reason = loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let id = send.id().index();
                        let stream = handle_stream(send, recv, ctx.clone(), allowed, client, who);
                        streams.spawn(stream.instrument(info_span!("stream", id)));
                    }
                    Err(e) => break describe_close(&e),
                },
                Some(_) = streams.join_next(), if !streams.is_empty() => {}
                _ = stop.changed() => break "server shutting down".to_string(),
            }
        };
        // Let running commands finish; the server bounds this with its grace period.
        while streams.join_next().await.is_some() {}
        conn.close(close::NORMAL.into(), b"bye");
        info!(duration = ?started.elapsed(), "disconnected: {reason}");
    }
    .instrument(span)
    .await
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

/// The permission each request needs; `None` for those anyone may make.
fn needs(request: &Request) -> Option<(Permissions, &'static str)> {
    match request {
        Request::List { .. } | Request::Download { .. } | Request::ResumeDownload { .. } => {
            Some((Permissions::READ, "read"))
        }
        Request::Upload { .. } | Request::ResumeUpload { .. } => {
            Some((Permissions::WRITE, "write"))
        }
        Request::Delete { .. } => Some((Permissions::DELETE, "delete")),
        Request::Shutdown => Some((Permissions::ADMIN, "admin")),
        Request::Help => None,
    }
}

async fn handle_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    ctx: Arc<Context>,
    allowed: Permissions,
    client: Option<Fingerprint>,
    who: Who,
) {
    let limits = &ctx.limits;
    let read = read_frame_limited::<Request, _>(&mut recv, limits.max_frame);
    let request = match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(request)) => request,
        Ok(Err(FrameError::UnknownVariant)) => {
            let msg = "this server does not know that command; it may be older than the client";
            return refuse(&mut send, ErrorCode::Unsupported, msg).await;
        }
        Ok(Err(e @ (FrameError::Malformed | FrameError::TooLarge { .. }))) => {
            info!("bad request: {e}");
            return refuse(&mut send, ErrorCode::BadRequest, &e.to_string()).await;
        }
        Ok(Err(e)) => {
            debug!("stream ended before a request: {e}");
            return;
        }
        Err(_) => {
            info!(
                "no request within {:?}; dropping the stream",
                limits.request_timeout
            );
            let _ = send.reset(close::TOO_SLOW.into());
            let _ = recv.stop(close::TOO_SLOW.into());
            return;
        }
    };
    let (command, name) = describe(&request);
    let span = info_span!("cmd", command, name = %crate::paths::sanitize(name));
    async {
        let started = Instant::now();
        let outcome = match needs(&request) {
            Some((permission, word)) if !allowed.contains(permission) => Err(Failure::Refuse(
                ErrorCode::PermissionDenied,
                format!("permission denied: {command} needs the '{word}' permission, which this client does not have"),
            )),
            _ => run(&ctx, request, client, who, &mut send, &mut recv).await,
        };
        let duration = started.elapsed();
        match outcome {
            Ok(bytes) => {
                let _ = send.finish();
                info!(bytes, ?duration, "ok");
            }
            Err(Failure::Refuse(code, message)) => {
                info!(?code, ?duration, "refused: {message}");
                refuse(&mut send, code, &message).await;
                // Whatever else the client was sending (an upload body) is not wanted.
                let _ = recv.stop(close::ABORTED.into());
            }
            Err(Failure::Abort(code, why)) => {
                info!(?duration, "aborted: {why}");
                let _ = send.reset(code.into());
                let _ = recv.stop(code.into());
            }
        }
    }
    .instrument(span)
    .await;
    // The stream is done only when the client has everything: closing the connection (on
    // shutdown) discards data still in flight, which would cut a finished download short.
    let _ = send.stopped().await;
}

async fn run(
    ctx: &Context,
    request: Request,
    client: Option<Fingerprint>,
    who: Who,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Outcome {
    match request {
        Request::ResumeUpload { name, size } => match client {
            Some(client) => upload::run_resumable(ctx, who, &name, size, client, recv, send).await,
            // Partials are keyed by the client's key: without one, no resuming (the client
            // falls back to a plain upload).
            None => Err(Failure::Refuse(
                ErrorCode::Unsupported,
                "resuming needs a client key; use a plain upload".into(),
            )),
        },
        Request::ResumeDownload { name, have } => {
            download::run_resumable(ctx, who, &name, have, recv, send).await
        }
        Request::List { dir } => list::run(ctx, &dir, send).await,
        Request::Download { name } => download::run(ctx, who, &name, send).await,
        Request::Upload { name, size } => upload::run(ctx, who, &name, size, recv, send).await,
        Request::Delete { name } => delete::run(ctx, &name, send).await,
        Request::Help => help::run(send).await,
        Request::Shutdown => {
            write_frame(send, &Response::ShuttingDown)
                .await
                .map_err(Failure::abort)?;
            info!("SHUTDOWN requested");
            ctx.shutdown.notify_one();
            Ok(0)
        }
    }
}

async fn refuse(send: &mut SendStream, code: ErrorCode, message: &str) {
    let response = Response::Error {
        code,
        message: message.to_owned(),
    };
    if write_frame(send, &response).await.is_ok() {
        let _ = send.finish();
    }
}

fn describe(request: &Request) -> (&'static str, &str) {
    match request {
        Request::List { dir } => ("LIST", dir),
        Request::Download { name } => ("DOWNLOAD", name),
        Request::Upload { name, .. } => ("UPLOAD", name),
        Request::Delete { name } => ("DELETE", name),
        Request::Help => ("HELP", ""),
        Request::Shutdown => ("SHUTDOWN", ""),
        Request::ResumeUpload { name, .. } => ("UPLOAD", name),
        Request::ResumeDownload { name, .. } => ("DOWNLOAD", name),
    }
}
