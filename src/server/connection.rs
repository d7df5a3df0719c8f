//! One client connection: accepts its streams and runs one command on each.

use std::time::Instant;

use quinn::{ConnectionError, RecvStream, SendStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

use super::{delete, download, help, list, upload, REQUEST_DEADLINE};
use crate::paths::SafeName;
use crate::protocol::{close, read_frame, write_frame, ErrorCode, FrameError, Request, Response};
use crate::storage::{Storage, StorageError};

/// How a command failed, which decides what the stream sees.
#[derive(Debug)]
pub(super) enum Failure {
    /// Tell the client why with an `Error` frame; the stream ends normally.
    Refuse(ErrorCode, String),
    /// The exchange is past the point where a frame can be sent (a body is half-sent), or the
    /// peer broke the protocol: reset the stream so a partial body never looks complete.
    Abort(String),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        if let StorageError::Io { source, .. } = &e {
            warn!("storage error: {source}");
        }
        Failure::Refuse(e.code(), e.to_string())
    }
}

/// What a finished command did, for the log line.
pub(super) type Outcome = Result<u64, Failure>;

/// Validates a name from the network, as a refusal the client can read.
pub(super) fn safe_name(name: &str) -> Result<SafeName, Failure> {
    SafeName::new(name).map_err(|e| {
        Failure::Refuse(
            ErrorCode::InvalidName,
            format!("invalid name '{}': {e}", crate::paths::sanitize(name)),
        )
    })
}

pub(super) async fn handle(
    incoming: quinn::Incoming,
    storage: Storage,
    mut stop: watch::Receiver<bool>,
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
        info!("connected");
        let started = Instant::now();
        let mut streams = JoinSet::new();
        let reason = loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let storage = storage.clone();
                        let id = send.id().index();
                        streams.spawn(handle_stream(send, recv, storage).instrument(info_span!("stream", id)));
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

async fn handle_stream(mut send: SendStream, mut recv: RecvStream, storage: Storage) {
    let request =
        match tokio::time::timeout(REQUEST_DEADLINE, read_frame::<Request, _>(&mut recv)).await {
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
                info!("no request within {REQUEST_DEADLINE:?}; dropping the stream");
                let _ = send.reset(close::ABORTED.into());
                let _ = recv.stop(close::ABORTED.into());
                return;
            }
        };
    let (command, name) = describe(&request);
    let span = info_span!("cmd", command, name = %crate::paths::sanitize(name));
    async {
        let started = Instant::now();
        let outcome = match request {
            Request::List { dir } => list::run(&storage, &dir, &mut send).await,
            Request::Download { name } => download::run(&storage, &name, &mut send).await,
            Request::Upload { name, size } => {
                upload::run(&storage, &name, size, &mut recv, &mut send).await
            }
            Request::Delete { name } => delete::run(&storage, &name, &mut send).await,
            Request::Help => help::run(&mut send).await,
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
            Err(Failure::Abort(why)) => {
                info!(?duration, "aborted: {why}");
                let _ = send.reset(close::ABORTED.into());
                let _ = recv.stop(close::ABORTED.into());
            }
        }
    }
    .instrument(span)
    .await;
    // The stream is done only when the client has everything: closing the connection (on
    // shutdown) discards data still in flight, which would cut a finished download short.
    let _ = send.stopped().await;
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
    }
}
