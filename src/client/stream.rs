//! The client's half of an exchange on one stream: reading responses (a refusal becomes
//! [`ClientError::Remote`]), expecting the stream's end, and naming what came out of place.
//! Every read waits at most the stall timeout ([`within`]): a server that stops half way through
//! an answer fails the command instead of holding it forever.

use std::future::Future;
use std::time::Duration;

use quinn::RecvStream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::ClientError;
use crate::paths::SafeName;
use crate::protocol::{read_frame, Response};

/// Runs `step`, failing it as [`ClientError::Stalled`] if it takes longer than `stall`.
pub(super) async fn within<T>(
    stall: Duration,
    step: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(stall, step)
        .await
        .unwrap_or(Err(ClientError::Stalled(stall)))
}

/// The reason a server that stopped reading gave on the other half of the stream, or `fallback`.
pub(super) async fn server_reason(
    recv: &mut RecvStream,
    fallback: ClientError,
    stall: Duration,
) -> ClientError {
    match response(recv, stall).await {
        Err(remote @ ClientError::Remote { .. }) => remote,
        _ => fallback,
    }
}

pub(super) fn safe(name: &str) -> Result<SafeName, ClientError> {
    SafeName::new(name).map_err(|reason| ClientError::InvalidName {
        name: crate::paths::sanitize(name),
        reason,
    })
}

/// Reads one response, turning an `Error` frame into [`ClientError::Remote`].
pub(super) async fn response(
    recv: &mut RecvStream,
    stall: Duration,
) -> Result<Response, ClientError> {
    let read = async { Ok(read_frame::<Response, _>(recv).await?) };
    match within(stall, read).await? {
        Response::Error { code, message } => Err(ClientError::Remote {
            code,
            message: crate::paths::sanitize(&message),
        }),
        other => Ok(other),
    }
}

/// The server's go-ahead for an upload body, or its refusal.
pub(super) async fn ready(recv: &mut RecvStream, stall: Duration) -> Result<(), ClientError> {
    match response(recv, stall).await? {
        Response::Ready => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// The stream must end after the trailer.
pub(super) async fn expect_end<R: AsyncRead + Unpin>(
    recv: &mut R,
    stall: Duration,
) -> Result<(), ClientError> {
    let mut extra = [0u8; 1];
    // Through AsyncRead: quinn's inherent `read` has a different signature.
    let read = async {
        match AsyncReadExt::read(recv, &mut extra).await {
            Ok(0) => Ok(()),
            Ok(_) => Err(ClientError::Protocol(
                "data after the end of the file".into(),
            )),
            Err(e) => Err(ClientError::Interrupted(e.to_string())),
        }
    };
    within(stall, read).await
}

pub(super) fn unexpected(response: &Response) -> ClientError {
    let kind = match response {
        Response::Error { .. } => "an error",
        Response::ListPage { .. } => "a listing",
        Response::FileHeader { .. } => "a file header",
        Response::Ready => "a ready signal",
        Response::Done { .. } => "an upload confirmation",
        Response::Deleted => "a delete confirmation",
        Response::Help { .. } => "a help text",
        Response::ShuttingDown => "a shutdown notice",
        Response::Held { .. } => "an upload's held pieces",
        Response::Prefix { .. } => "a download's prefix",
        Response::Space { .. } => "a free-space report",
        Response::Made => "a directory confirmation",
        Response::Removed { .. } => "a removal confirmation",
        Response::Renamed => "a rename confirmation",
        Response::Info(_) => "a description of a file",
        Response::WalkPage { .. } => "a tree's listing",
        Response::Shared { .. } => "a new share link",
        Response::SharePage { .. } => "a list of share links",
        Response::Revoked => "a revocation",
    };
    ClientError::Protocol(format!("{kind} out of place"))
}
