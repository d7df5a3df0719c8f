//! One request on one stream, for every kind of peer: the request read with a cap and a
//! deadline, the peer's say on whether it may make it ([`Peer::admit`]), the command's handler,
//! and the stream ended as the outcome says (finished, an `Error` frame, or a reset), logged in
//! the command's span and counted. A qft client over QUIC ([`super::connection`]) and a browser
//! over WebTransport ([`super::web`]) differ only in who they are ([`Peer`]) and in the type of
//! their streams ([`SendEnd`], [`RecvEnd`]); everything else, bandwidth limits included, is this
//! one path.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, info_span, Instrument};

use super::auth::Permissions;
use super::exchange::{Failure, Outcome};
use super::metrics::Ended;
use super::requests::{describe, needs, traffic};
use super::slots::Who;
use super::web::Scope;
use super::{bundle, delete, download, help, list, share, space, upload, Context};
use super::{delete_tree, mkdir, rename, rmdir, stat, walk};
use crate::protocol::{
    close, read_frame_limited, write_frame, ErrorCode, FrameError, Request, Response,
};
use crate::rate::{Limited, Limiter};
use crate::tls::Fingerprint;
use crate::transfer::{Sink, Source};

/// The sending half of a stream, whichever transport carries it.
pub(crate) trait SendEnd: Sink + AsyncWrite + Unpin + Send {
    /// Ends the stream normally: what was written is delivered.
    fn end(&mut self);
    /// Abandons the stream with `code`, so that a body cut short never looks complete.
    fn abandon(&mut self, code: u32);
    /// Waits until the peer has everything (or stopped reading).
    fn delivered(&mut self) -> impl Future<Output = ()> + Send;
}

/// The receiving half of a stream, whichever transport carries it.
pub(crate) trait RecvEnd: Source + AsyncRead + Unpin + Send {
    /// Tells the peer to stop sending (an upload body nobody will read), with `code`.
    fn refuse_rest(&mut self, code: u32);
}

impl SendEnd for quinn::SendStream {
    fn end(&mut self) {
        let _ = self.finish();
    }

    fn abandon(&mut self, code: u32) {
        let _ = self.reset(code.into());
    }

    fn delivered(&mut self) -> impl Future<Output = ()> + Send {
        let stopped = self.stopped();
        async move {
            let _ = stopped.await;
        }
    }
}

impl RecvEnd for quinn::RecvStream {
    fn refuse_rest(&mut self, code: u32) {
        let _ = self.stop(code.into());
    }
}

/// Who sent a request: what decides whether it may run, and on which name.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// A qft client over QUIC, asked of the authorized-clients file for every command.
    Client {
        /// Its connection: closed if the client was taken off the list since it connected.
        conn: quinn::Connection,
        /// Its key, if it showed one (partials are kept per key).
        key: Option<Fingerprint>,
    },
    /// A browser's WebTransport session: the whole server as a keyless client, or one link.
    Browser {
        /// What the session may do.
        scope: Arc<Scope>,
        /// The web side's state (the share store, for the uses a link's transfers take).
        web: Arc<super::web::Web>,
    },
}

impl Peer {
    /// The request as it may run (a link's names are rewritten under the shared name), or why
    /// not.
    async fn admit(&self, ctx: &Context, request: Request) -> Result<Request, Failure> {
        match self {
            Peer::Client { conn, key } => {
                let allowed = allowed(ctx, conn, key.as_ref()).await?;
                match needs(&request) {
                    Some((permission, word)) if !allowed.contains(permission) => {
                        let (command, _) = describe(&request);
                        Err(Failure::Refuse(
                            ErrorCode::PermissionDenied,
                            format!("permission denied: {command} needs the '{word}' permission, which this client does not have"),
                        ))
                    }
                    _ => Ok(request),
                }
            }
            Peer::Browser { scope, web } => super::web::admit(ctx, web, scope, request).await,
        }
    }

    /// The key partials are kept under (a browser has none: it never resumes an upload).
    fn key(&self) -> Option<Fingerprint> {
        match self {
            Peer::Client { key, .. } => *key,
            Peer::Browser { .. } => None,
        }
    }

    /// Whether its transfers can continue partials (a browser's never do).
    fn resumes(&self) -> bool {
        matches!(self, Peer::Client { .. })
    }

    /// What the peer is told when it sends a request this server does not know.
    fn unknown_request(&self) -> &'static str {
        match self {
            Peer::Client { .. } => {
                "this server does not know that command; it may be older than the client"
            }
            Peer::Browser { .. } => "this server does not know that command",
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
            tracing::warn!("refusing every command: {e}");
            let why = "the server cannot read its list of authorized clients";
            Err(Failure::Refuse(ErrorCode::PermissionDenied, why.into()))
        }
    }
}

/// Runs the one request of a stream to its end. `paced`: the bandwidth limits its file bodies
/// draw from (the server's, and the connection's own).
pub(crate) async fn serve_stream<S: SendEnd, R: RecvEnd>(
    mut send: S,
    mut recv: R,
    ctx: Arc<Context>,
    peer: Peer,
    who: Who,
    paced: Arc<[Limiter]>,
) {
    let limits = &ctx.limits;
    let read = read_frame_limited::<Request, _>(&mut recv, limits.max_frame);
    let request = match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(request)) => request,
        Ok(Err(FrameError::UnknownVariant)) => {
            let msg = peer.unknown_request();
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
            send.abandon(close::TOO_SLOW);
            recv.refuse_rest(close::TOO_SLOW);
            return;
        }
    };
    let (command, name) = describe(&request);
    let (inward, resumable) = traffic(&request);
    let span = info_span!("cmd", command, name = %crate::paths::sanitize(name));
    async {
        let started = Instant::now();
        let outcome = match peer.admit(&ctx, request).await {
            Err(refused) => Err(refused),
            Ok(request) => {
                let mut send = Limited::new(&mut send, &paced);
                let mut recv = Limited::new(&mut recv, &paced);
                run(&ctx, request, peer.key(), who, &mut send, &mut recv).await
            }
        };
        let duration = started.elapsed();
        let duration_ms = duration.as_secs_f64() * 1000.0;
        let ended = match outcome {
            Ok(bytes) => {
                send.end();
                info!(result = "ok", bytes, duration_ms, "ok");
                Ended::Ok(bytes)
            }
            Err(Failure::Refuse(code, message)) => {
                let result = Ended::Refused(code).label();
                info!(result, duration_ms, "refused: {message}");
                refuse(&mut send, code, &message).await;
                // Whatever else the client was sending (an upload body) is not wanted.
                recv.refuse_rest(close::ABORTED);
                Ended::Refused(code)
            }
            Err(Failure::Abort(code, why)) => {
                info!(result = "aborted", duration_ms, "aborted: {why}");
                send.abandon(code);
                recv.refuse_rest(code);
                Ended::Aborted
            }
        };
        // A browser asks for every piece's hash as if it held the whole file (to check each
        // piece): that is no resume.
        let resumed =
            peer.resumes() && matches!(ended, Ended::Ok(bytes) if resumable.resumed(bytes));
        ctx.metrics
            .command(command, ended, duration, inward, resumed);
    }
    .instrument(span)
    .await;
    // The stream is done only when the client has everything: closing the connection (on
    // shutdown) discards data still in flight, which would cut a finished download short.
    send.delivered().await;
}

/// Runs an admitted request's handler.
async fn run<S, R>(
    ctx: &Context,
    request: Request,
    client: Option<Fingerprint>,
    who: Who,
    send: &mut Limited<'_, S>,
    recv: &mut Limited<'_, R>,
) -> Outcome
where
    S: SendEnd,
    R: RecvEnd,
{
    // Partials are keyed by the client's key: without one, no resuming (the client falls back
    // to a plain upload).
    let keyed = || {
        client.ok_or_else(|| {
            Failure::Refuse(
                ErrorCode::Unsupported,
                "resuming needs a client key; use a plain upload".into(),
            )
        })
    };
    match request {
        Request::ResumeUpload { name, size } => {
            let body = upload::Body::default();
            upload::run_resumable(ctx, who, &name, size, body, keyed()?, recv, send).await
        }
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
        Request::ResumeUploadMeta { name, size, meta } => {
            let body = upload::Body {
                meta: Some(meta),
                compressed: false,
            };
            upload::run_resumable(ctx, who, &name, size, body, keyed()?, recv, send).await
        }
        // Compressed bodies.
        Request::ResumeUploadCompressed { name, size, meta } => {
            let body = upload::Body {
                meta,
                compressed: true,
            };
            upload::run_resumable(ctx, who, &name, size, body, keyed()?, recv, send).await
        }
        Request::ResumeDownloadCompressed { name, have } => {
            download::run_resumable(ctx, who, &name, have, true, recv, send).await
        }
        Request::UploadBundle { files, bytes } => {
            bundle::run(ctx, who, files, bytes, recv, send).await
        }
        // Share links.
        Request::ShareCreate {
            name,
            expires,
            upload_only,
            uses,
        } => {
            let new = share::Asked {
                name,
                expires,
                upload_only,
                uses,
            };
            share::create(ctx, new, send).await
        }
        Request::ShareList => share::list(ctx, send).await,
        Request::ShareRevoke { id } => share::revoke(ctx, &id, send).await,
    }
}

async fn refuse<S: SendEnd>(send: &mut S, code: ErrorCode, message: &str) {
    let response = Response::Error {
        code,
        message: message.to_owned(),
    };
    if write_frame(send, &response).await.is_ok() {
        send.end();
    }
}
