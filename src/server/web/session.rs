//! One browser's WebTransport session: the HTTP/3 handshake (by `web-transport-quinn`), what
//! the session may do (the whole server as a keyless client, or one share link), then a task per
//! bidirectional stream, each one qft request answered by the same handlers as a QUIC client's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};
use web_transport_quinn::{RecvStream, SendStream};

use super::fault::Corrupting;
use super::Web;
use crate::paths::SafeName;
use crate::protocol::{
    close, read_frame_limited, write_frame, ErrorCode, FrameError, Request, Response,
};
use crate::server::auth::Permissions;
use crate::server::connection::{describe, needs};
use crate::server::exchange::{safe_name, Failure, Outcome};
use crate::server::limits::{Connections, BUSY_RETRY_AFTER};
use crate::server::metrics::{Attempt, Ended};
use crate::server::slots::Who;
use crate::server::{delete, download, help, list, space, upload, Context};
use crate::share::{Share, ShareAccess, ShareKind};

/// What a session may do.
#[derive(Debug)]
enum Scope {
    /// The whole server, with these permissions (a keyless client's, within the server's mask).
    Whole(Permissions),
    /// One share link.
    Share(Share),
}

/// A request the scope allows: the name to hand the handler, and what to do first.
struct Admitted {
    name: String,
    /// The share whose use this transfer takes.
    takes_use: Option<String>,
    /// An upload that must not replace a file (a drop box cannot see what it would destroy).
    new_only: bool,
}

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
    let scope = Arc::new(scope);
    // A browser has no key: its fair share of transfer slots is its address's.
    let who = ctx.slots.who(None, conn.remote_address().ip());
    let started = Instant::now();
    let mut streams = JoinSet::new();
    let reason = loop {
        tokio::select! {
            accepted = session.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let id = send.quic_id().index();
                    let stream = handle_stream(send, recv, ctx.clone(), web.clone(), scope.clone(), who);
                    streams.spawn(stream.instrument(info_span!("stream", id)));
                }
                Err(e) => break e.to_string(),
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            _ = stop.changed() => break "server shutting down".to_string(),
        }
    };
    while streams.join_next().await.is_some() {}
    session.close(close::NORMAL, b"bye");
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

async fn handle_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    ctx: Arc<Context>,
    web: Arc<Web>,
    scope: Arc<Scope>,
    who: Who,
) {
    let limits = &ctx.limits;
    let read = read_frame_limited::<Request, _>(&mut recv, limits.max_frame);
    let request = match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(request)) => request,
        Ok(Err(FrameError::UnknownVariant)) => {
            let msg = "this server does not know that command";
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
            let _ = send.reset(close::TOO_SLOW);
            let _ = recv.stop(close::TOO_SLOW);
            return;
        }
    };
    let (command, name) = describe(&request);
    // Which way file bytes go, for the metrics (uploads in, downloads out).
    let inward = match &request {
        Request::Upload { .. } | Request::ResumeUpload { .. } => Some(true),
        Request::Download { .. } | Request::ResumeDownload { .. } => Some(false),
        _ => None,
    };
    let span = info_span!("cmd", command, name = %crate::paths::sanitize(name));
    async {
        let started = Instant::now();
        let outcome = run(&ctx, &web, &scope, who, request, &mut send, &mut recv).await;
        let duration = started.elapsed();
        let duration_ms = duration.as_secs_f64() * 1000.0;
        let ended = match outcome {
            Ok(bytes) => {
                let _ = send.finish();
                info!(result = "ok", bytes, duration_ms, "ok");
                Ended::Ok(bytes)
            }
            Err(Failure::Refuse(code, message)) => {
                info!(
                    result = Ended::Refused(code).label(),
                    duration_ms, "refused: {message}"
                );
                refuse(&mut send, code, &message).await;
                let _ = recv.stop(close::ABORTED);
                Ended::Refused(code)
            }
            Err(Failure::Abort(code, why)) => {
                info!(result = "aborted", duration_ms, "aborted: {why}");
                let _ = send.reset(code);
                let _ = recv.stop(code);
                Ended::Aborted
            }
        };
        // Browsers never resume: partials are kept per client key.
        ctx.metrics.command(command, ended, duration, inward, false);
    }
    .instrument(span)
    .await;
    // Done only when the browser has everything (see the same wait for QUIC clients).
    let _ = send.stopped().await;
}

async fn run(
    ctx: &Context,
    web: &Arc<Web>,
    scope: &Scope,
    who: Who,
    request: Request,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Outcome {
    let admitted = admit(ctx, scope, &request)?;
    if admitted.new_only {
        match ctx.storage.open_read(safe_name(&admitted.name)?).await {
            Ok(_) => {
                return Err(Failure::Refuse(
                    ErrorCode::PermissionDenied,
                    "a file of that name is already there, and this link does not replace files"
                        .into(),
                ))
            }
            Err(crate::storage::StorageError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(id) = admitted.takes_use {
        let web = web.clone();
        let taken = tokio::task::spawn_blocking(move || web.shares.take_use(&id));
        match taken.await {
            Ok(Ok(_)) => {}
            Ok(Err(refusal)) => {
                return Err(Failure::Refuse(
                    ErrorCode::PermissionDenied,
                    refusal.to_string(),
                ))
            }
            Err(e) => return Err(Failure::Refuse(ErrorCode::Internal, e.to_string())),
        }
    }
    let name = admitted.name.as_str();
    match request {
        Request::List { .. } => list::run(ctx, name, send).await,
        Request::Download { .. } => match web.corrupt_at {
            Some(at) => download::run(ctx, who, name, &mut corrupting(send, at)).await,
            None => download::run(ctx, who, name, send).await,
        },
        Request::ResumeDownload { have, .. } => match web.corrupt_at {
            Some(at) => {
                let send = &mut corrupting(send, at);
                download::run_resumable(ctx, who, name, have, false, recv, send).await
            }
            None => download::run_resumable(ctx, who, name, have, false, recv, send).await,
        },
        Request::Upload { size, .. } => upload::run(ctx, who, name, size, None, recv, send).await,
        Request::Delete { .. } => delete::run(ctx, name, send).await,
        Request::Help => help::run(send).await,
        // As for a QUIC client with the read permission (a share's link has none: refused in
        // `admit`).
        Request::Space => space::run(ctx, send).await,
        // Partials are kept per client key, and a browser has none.
        Request::ResumeUpload { .. } => Err(Failure::Refuse(
            ErrorCode::Unsupported,
            "resuming needs a client key; use a plain upload".into(),
        )),
        Request::Shutdown => Err(Failure::Refuse(
            ErrorCode::PermissionDenied,
            "permission denied: a browser cannot stop the server".into(),
        )),
        // Managing names, metadata and trees: the qft client's, not the page's (yet).
        Request::MakeDir { .. }
        | Request::RemoveDir { .. }
        | Request::Rename { .. }
        | Request::Stat { .. }
        | Request::DeleteTree { .. }
        | Request::Walk { .. }
        | Request::UploadMeta { .. }
        | Request::ResumeUploadMeta { .. }
        | Request::ResumeUploadCompressed { .. }
        | Request::ResumeDownloadCompressed { .. } => Err(Failure::Refuse(
            ErrorCode::Unsupported,
            "this is not offered to a browser".into(),
        )),
    }
}

fn corrupting(send: &mut SendStream, at: u64) -> Corrupting<'_, SendStream> {
    Corrupting {
        inner: send,
        at,
        pos: 0,
    }
}

/// Whether `scope` allows `request`, and on which name.
fn admit(ctx: &Context, scope: &Scope, request: &Request) -> Result<Admitted, Failure> {
    let (_, asked) = describe(request);
    let share = match scope {
        Scope::Whole(allowed) => {
            if let Some((permission, word)) = needs(request) {
                if !allowed.contains(permission) {
                    let (command, _) = describe(request);
                    return Err(Failure::Refuse(
                        ErrorCode::PermissionDenied,
                        format!("permission denied: {command} needs the '{word}' permission, which a browser does not have here"),
                    ));
                }
            }
            return Ok(Admitted {
                name: asked.to_string(),
                takes_use: None,
                new_only: false,
            });
        }
        Scope::Share(share) => share,
    };
    let denied = |what: &str| {
        Failure::Refuse(
            ErrorCode::PermissionDenied,
            format!("permission denied: this link does not allow {what}"),
        )
    };
    let read = share.access == ShareAccess::Read;
    let dir = share.kind == ShareKind::Dir;
    let (name, takes_use, new_only) = match request {
        Request::List { .. } if read && dir => (within(share, asked, true)?, false, false),
        Request::List { .. } => return Err(denied("listing")),
        Request::Download { .. } | Request::ResumeDownload { .. } if read => {
            (within(share, asked, !dir)?, true, false)
        }
        Request::Download { .. } | Request::ResumeDownload { .. } => {
            return Err(denied("downloading"))
        }
        Request::Upload { .. } if !read && dir => {
            if !ctx.mask.contains(Permissions::WRITE) {
                return Err(denied("uploading to a read-only server"));
            }
            (within(share, asked, false)?, true, true)
        }
        Request::Upload { .. } => return Err(denied("uploading")),
        Request::Help => (String::new(), false, false),
        _ => return Err(denied("that")),
    };
    Ok(Admitted {
        name,
        takes_use: takes_use.then(|| share.id.clone()),
        new_only,
    })
}

/// `asked` (relative to the share) as a name under the served root. `""` names the share
/// itself, when `itself` allows that (a file share, or listing a directory share's top).
fn within(share: &Share, asked: &str, itself: bool) -> Result<String, Failure> {
    if asked.is_empty() {
        return match itself {
            true => Ok(share.name.clone()),
            false => Err(Failure::Refuse(
                ErrorCode::InvalidName,
                "a name inside the shared directory is needed".into(),
            )),
        };
    }
    if share.kind == ShareKind::File {
        return Err(Failure::Refuse(
            ErrorCode::PermissionDenied,
            "permission denied: this link is for one file only".into(),
        ));
    }
    let rel: SafeName = safe_name(asked)?;
    Ok(format!("{}/{}", share.name, rel.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Access, Limits, Storage};

    fn share(name: &str, kind: ShareKind, access: ShareAccess) -> Scope {
        Scope::Share(Share {
            id: "0123456789ab".into(),
            token_sha256: String::new(),
            root: String::new(),
            name: name.into(),
            kind,
            access,
            created: 0,
            expires: u64::MAX,
            max_uses: None,
            used: 0,
        })
    }

    fn context(mask: Permissions) -> (Context, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        (
            Context::new(storage, Access::Open, mask, Limits::default()),
            dir,
        )
    }

    fn name(
        ctx: &Context,
        scope: &Scope,
        request: Request,
    ) -> Result<(String, bool, bool), String> {
        match admit(ctx, scope, &request) {
            Ok(a) => Ok((a.name, a.takes_use.is_some(), a.new_only)),
            Err(Failure::Refuse(_, message) | Failure::Abort(_, message)) => Err(message),
        }
    }

    #[test]
    fn a_link_grants_what_it_says_and_nothing_more() {
        let (ctx, _dir) = context(Permissions::ALL);
        let list = |dir: &str| Request::List { dir: dir.into() };
        let get = |name: &str| Request::ResumeDownload {
            name: name.into(),
            have: 0,
        };
        let put = |name: &str| Request::Upload {
            name: name.into(),
            size: 1,
        };
        let del = |name: &str| Request::Delete { name: name.into() };

        let file = share("docs/report.pdf", ShareKind::File, ShareAccess::Read);
        assert_eq!(
            name(&ctx, &file, get("")),
            Ok(("docs/report.pdf".into(), true, false))
        );
        for request in [get("other.pdf"), get("../x"), list(""), put("x"), del("")] {
            assert!(name(&ctx, &file, request.clone()).is_err(), "{request:?}");
        }

        let dir = share("photos", ShareKind::Dir, ShareAccess::Read);
        assert_eq!(
            name(&ctx, &dir, list("")),
            Ok(("photos".into(), false, false))
        );
        assert_eq!(
            name(&ctx, &dir, list("2026")),
            Ok(("photos/2026".into(), false, false))
        );
        assert_eq!(
            name(&ctx, &dir, get("a.jpg")),
            Ok(("photos/a.jpg".into(), true, false))
        );
        for request in [
            get(""),
            get("../secret"),
            get("a/../../b"),
            list(".."),
            put("a.jpg"),
            del("a.jpg"),
        ] {
            assert!(name(&ctx, &dir, request.clone()).is_err(), "{request:?}");
        }

        let drop = share("uploads", ShareKind::Dir, ShareAccess::UploadOnly);
        assert_eq!(
            name(&ctx, &drop, put("new.txt")),
            Ok(("uploads/new.txt".into(), true, true))
        );
        for request in [
            put(""),
            put("../x"),
            list(""),
            get("new.txt"),
            del("new.txt"),
        ] {
            assert!(name(&ctx, &drop, request.clone()).is_err(), "{request:?}");
        }
        // A read-only server refuses a drop box's uploads too.
        let (read_only, _dir) = context(Permissions::READ);
        assert!(name(&read_only, &drop, put("new.txt")).is_err());
    }

    #[test]
    fn a_whole_server_session_has_the_keyless_permissions() {
        let (ctx, _dir) = context(Permissions::ALL);
        let reader = Scope::Whole(Permissions::READ);
        let upload = Request::Upload {
            name: "a".into(),
            size: 1,
        };
        let refused = name(&ctx, &reader, upload).unwrap_err();
        assert!(
            refused.contains("needs the 'write' permission"),
            "{refused}"
        );
        let list = Request::List { dir: "a".into() };
        assert_eq!(name(&ctx, &reader, list), Ok(("a".into(), false, false)));
    }
}
