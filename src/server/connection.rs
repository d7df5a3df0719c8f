//! One client connection: decides who the client is and what it may do, then accepts its
//! streams and runs one command on each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{ConnectionError, RecvStream, SendStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::field::Empty;
use tracing::{debug, info, info_span, warn, Instrument};

use super::auth::Permissions;
use super::exchange::{Failure, Outcome};
use super::limits::BUSY_RETRY_AFTER;
use super::metrics::{Attempt, Ended};
use super::slots::Who;
use super::{delete, download, help, list, space, upload, Context, Gate};
use super::{delete_tree, mkdir, rename, rmdir, stat, walk};
use crate::protocol::{
    close, read_frame_limited, write_frame, ErrorCode, FrameError, Request, Response,
};
use crate::rate::{Limited, Limiter};
use crate::tls::{peer_fingerprint, Fingerprint};

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
        let handshake = tokio::time::timeout(ctx.limits.handshake_timeout, incoming);
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
        let _open = ctx.metrics.open();
        conn.set_max_concurrent_bi_streams(ctx.limits.max_streams.into());
        info!(permissions = %grant.permissions.intersection(ctx.mask), "connected");
        let who = ctx.slots.who(client, peer.ip());
        // Bandwidth limits for this connection's file bodies: the server's, shared by all, and
        // one of its own.
        let paced: Arc<[Limiter]> = ctx
            .rate
            .iter()
            .cloned()
            .chain(ctx.limits.bwlimit_per_connection.map(Limiter::new))
            .collect();
        let started = Instant::now();
        let mut streams = JoinSet::new();
        let reason = loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let id = send.id().index();
                        let stream = handle_stream(send, recv, ctx.clone(), conn.clone(), client, who, paced.clone());
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
        // The client shows this reason: a shutdown says so ("bye" alone told a person nothing).
        let said: &[u8] = match reason == SHUTTING_DOWN {
            true => b"it is shutting down",
            false => b"bye",
        };
        conn.close(close::NORMAL.into(), said);
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        info!(duration_ms, "disconnected: {reason}");
    }
    .instrument(span)
    .await
}

/// Why a connection ended when the server is stopping (the log line's reason).
const SHUTTING_DOWN: &str = "server shutting down";

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
pub(super) fn needs(request: &Request) -> Option<(Permissions, &'static str)> {
    match request {
        Request::List { .. } | Request::Download { .. } | Request::ResumeDownload { .. } => {
            Some((Permissions::READ, "read"))
        }
        // What the server's disk has left is the server's business, told to its readers.
        Request::Space => Some((Permissions::READ, "read")),
        Request::Upload { .. } | Request::ResumeUpload { .. } => {
            Some((Permissions::WRITE, "write"))
        }
        Request::Delete { .. } => Some((Permissions::DELETE, "delete")),
        Request::Shutdown => Some((Permissions::ADMIN, "admin")),
        Request::Help => None,
        // Managing names, metadata and trees.
        Request::Stat { .. } | Request::Walk { .. } => Some((Permissions::READ, "read")),
        Request::MakeDir { .. }
        | Request::Rename { .. }
        | Request::UploadMeta { .. }
        | Request::ResumeUploadMeta { .. }
        | Request::ResumeUploadCompressed { .. } => Some((Permissions::WRITE, "write")),
        Request::ResumeDownloadCompressed { .. } => Some((Permissions::READ, "read")),
        Request::RemoveDir { .. } | Request::DeleteTree { .. } => {
            Some((Permissions::DELETE, "delete"))
        }
    }
}

/// What `client` may do now, asked of the authorized-clients file as it is now: a client
/// removed from it since it connected has its connection closed.
async fn allowed(
    ctx: &Context,
    conn: &quinn::Connection,
    client: Option<&Fingerprint>,
) -> Result<Permissions, Failure> {
    match ctx.grants.grant(client).await {
        Ok(Some(grant)) => Ok(grant.permissions.intersection(ctx.mask)),
        Ok(None) => {
            let why = "this client is no longer authorized on this server";
            info!("refused and disconnected: {why}");
            conn.close(close::NOT_AUTHORIZED.into(), why.as_bytes());
            Err(Failure::Refuse(ErrorCode::PermissionDenied, why.into()))
        }
        Err(e) => {
            warn!("refusing every command: {e}");
            let why = "the server cannot read its list of authorized clients";
            Err(Failure::Refuse(ErrorCode::PermissionDenied, why.into()))
        }
    }
}

async fn handle_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    ctx: Arc<Context>,
    conn: quinn::Connection,
    client: Option<Fingerprint>,
    who: Who,
    paced: Arc<[Limiter]>,
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
    let (inward, resumable) = traffic(&request);
    let span = info_span!("cmd", command, name = %crate::paths::sanitize(name));
    async {
        let started = Instant::now();
        let outcome = match (needs(&request), allowed(&ctx, &conn, client.as_ref()).await) {
            (_, Err(refused)) => Err(refused),
            (Some((permission, word)), Ok(allowed)) if !allowed.contains(permission) => Err(Failure::Refuse(
                ErrorCode::PermissionDenied,
                format!("permission denied: {command} needs the '{word}' permission, which this client does not have"),
            )),
            _ => {
                let mut send = Limited::new(&mut send, &paced);
                let mut recv = Limited::new(&mut recv, &paced);
                run(&ctx, request, client, who, &mut send, &mut recv).await
            }
        };
        let duration = started.elapsed();
        let duration_ms = duration.as_secs_f64() * 1000.0;
        let ended = match outcome {
            Ok(bytes) => {
                let _ = send.finish();
                info!(result = "ok", bytes, duration_ms, "ok");
                Ended::Ok(bytes)
            }
            Err(Failure::Refuse(code, message)) => {
                let result = Ended::Refused(code).label();
                info!(result, duration_ms, "refused: {message}");
                refuse(&mut send, code, &message).await;
                // Whatever else the client was sending (an upload body) is not wanted.
                let _ = recv.stop(close::ABORTED.into());
                Ended::Refused(code)
            }
            Err(Failure::Abort(code, why)) => {
                info!(result = "aborted", duration_ms, "aborted: {why}");
                let _ = send.reset(code.into());
                let _ = recv.stop(code.into());
                Ended::Aborted
            }
        };
        let resumed = matches!(ended, Ended::Ok(bytes) if resumable.resumed(bytes));
        ctx.metrics.command(command, ended, duration, inward, resumed);
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
    send: &mut Limited<'_, SendStream>,
    recv: &mut Limited<'_, RecvStream>,
) -> Outcome {
    match request {
        Request::ResumeUpload { name, size } => match client {
            Some(client) => {
                let body = upload::Body::default();
                upload::run_resumable(ctx, who, &name, size, body, client, recv, send).await
            }
            // Partials are keyed by the client's key: without one, no resuming (the client
            // falls back to a plain upload).
            None => Err(Failure::Refuse(
                ErrorCode::Unsupported,
                "resuming needs a client key; use a plain upload".into(),
            )),
        },
        Request::ResumeDownload { name, have } => {
            download::run_resumable(ctx, who, &name, have, false, recv, send).await
        }
        Request::List { dir } => list::run(ctx, &dir, send).await,
        Request::Download { name } => download::run(ctx, who, &name, send).await,
        Request::Upload { name, size } => {
            upload::run(ctx, who, &name, size, None, recv, send).await
        }
        Request::Delete { name } => delete::run(ctx, &name, send).await,
        Request::Help => help::run(send).await,
        Request::Space => space::run(ctx, send).await,
        Request::Shutdown => {
            write_frame(send, &Response::ShuttingDown)
                .await
                .map_err(Failure::abort)?;
            info!("SHUTDOWN requested");
            ctx.shutdown.notify_one();
            Ok(0)
        }
        // Managing names, metadata and trees.
        Request::MakeDir { name, parents } => mkdir::run(ctx, &name, parents, send).await,
        Request::RemoveDir { name } => rmdir::run(ctx, &name, send).await,
        Request::Rename { from, to } => rename::run(ctx, &from, &to, send).await,
        Request::Stat { name, digest } => stat::run(ctx, who, &name, digest, send).await,
        Request::DeleteTree { name } => delete_tree::run(ctx, &name, send).await,
        Request::Walk { dir } => walk::run(ctx, &dir, send).await,
        Request::UploadMeta { name, size, meta } => {
            upload::run(ctx, who, &name, size, Some(meta), recv, send).await
        }
        Request::ResumeUploadMeta { name, size, meta } => match client {
            Some(client) => {
                let body = upload::Body {
                    meta: Some(meta),
                    compressed: false,
                };
                upload::run_resumable(ctx, who, &name, size, body, client, recv, send).await
            }
            None => Err(Failure::Refuse(
                ErrorCode::Unsupported,
                "resuming needs a client key; use a plain upload".into(),
            )),
        },
        // Compressed bodies.
        Request::ResumeUploadCompressed { name, size, meta } => match client {
            Some(client) => {
                let body = upload::Body {
                    meta,
                    compressed: true,
                };
                upload::run_resumable(ctx, who, &name, size, body, client, recv, send).await
            }
            None => Err(Failure::Refuse(
                ErrorCode::Unsupported,
                "resuming needs a client key; use a plain upload".into(),
            )),
        },
        Request::ResumeDownloadCompressed { name, have } => {
            download::run_resumable(ctx, who, &name, have, true, recv, send).await
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

/// Whether a finished command continued a partial.
#[derive(Debug, Clone, Copy)]
enum Resumable {
    No,
    /// Resumed if fewer than `size` bytes had to come.
    Upload {
        size: u64,
    },
    /// The client offered a partial (how much of it was used is the handler's to know).
    Download {
        offered: bool,
    },
}

impl Resumable {
    fn resumed(self, moved: u64) -> bool {
        match self {
            Resumable::No => false,
            Resumable::Upload { size } => moved < size,
            Resumable::Download { offered } => offered,
        }
    }
}

/// Which way a command's file bytes go (`Some(true)`: in), and whether it may resume.
fn traffic(request: &Request) -> (Option<bool>, Resumable) {
    match request {
        Request::Upload { .. } | Request::UploadMeta { .. } => (Some(true), Resumable::No),
        Request::ResumeUpload { size, .. }
        | Request::ResumeUploadMeta { size, .. }
        | Request::ResumeUploadCompressed { size, .. } => {
            (Some(true), Resumable::Upload { size: *size })
        }
        Request::ResumeDownloadCompressed { have, .. } => {
            (Some(false), Resumable::Download { offered: *have > 0 })
        }
        Request::Download { .. } => (Some(false), Resumable::No),
        Request::ResumeDownload { have, .. } => {
            (Some(false), Resumable::Download { offered: *have > 0 })
        }
        _ => (None, Resumable::No),
    }
}

pub(super) fn describe(request: &Request) -> (&'static str, &str) {
    match request {
        Request::List { dir } => ("LIST", dir),
        Request::Download { name } => ("DOWNLOAD", name),
        Request::Upload { name, .. } => ("UPLOAD", name),
        Request::Delete { name } => ("DELETE", name),
        Request::Help => ("HELP", ""),
        Request::Shutdown => ("SHUTDOWN", ""),
        Request::ResumeUpload { name, .. } => ("UPLOAD", name),
        Request::ResumeDownload { name, .. } => ("DOWNLOAD", name),
        Request::Space => ("DF", ""),
        Request::MakeDir { name, .. } => ("MKDIR", name),
        Request::RemoveDir { name } => ("RMDIR", name),
        Request::Rename { from, .. } => ("RENAME", from),
        Request::Stat { name, .. } => ("STAT", name),
        Request::DeleteTree { name } => ("DELETE", name),
        Request::Walk { dir } => ("WALK", dir),
        Request::UploadMeta { name, .. } => ("UPLOAD", name),
        Request::ResumeUploadMeta { name, .. } => ("UPLOAD", name),
        Request::ResumeUploadCompressed { name, .. } => ("UPLOAD", name),
        Request::ResumeDownloadCompressed { name, .. } => ("DOWNLOAD", name),
    }
}
