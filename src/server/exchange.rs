//! What every command handler shares: how a command fails, the name check, writing a response
//! within the stall timeout, the resume point. Handlers import this, never the dispatcher
//! ([`super::connection`]) that calls them.

use std::future::Future;

use tokio::io::AsyncWrite;
use tracing::warn;

use super::Context;
use crate::paths::SafeName;
use crate::pieces::Pieces;
use crate::protocol::{close, write_frame, ErrorCode, Message};
use crate::storage::StorageError;

/// How a command failed, which decides what the stream sees.
#[derive(Debug)]
pub(super) enum Failure {
    /// Tell the client why with an `Error` frame; the stream ends normally.
    Refuse(ErrorCode, String),
    /// The exchange is past the point where a frame can be sent (a body is half-sent), or the
    /// peer broke the protocol: reset the stream (with this code) so a partial body never looks
    /// complete.
    Abort(u32, String),
}

impl Failure {
    /// An abort for a stream error or a broken peer.
    pub(super) fn abort(why: impl std::fmt::Display) -> Self {
        Failure::Abort(close::ABORTED, why.to_string())
    }
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

/// Writes one frame of a response. Like every block of a body, it must move within the stall
/// timeout: a client that stops reading holds nothing (a listing's pages, a slot) for longer.
pub(super) async fn respond<T: Message, W: AsyncWrite + Unpin>(
    ctx: &Context,
    send: &mut W,
    frame: &T,
) -> Result<(), Failure> {
    within_stall(ctx, write_frame(send, frame))
        .await?
        .map_err(Failure::abort)
}

/// Runs one step of an exchange that waits on the client (a frame to write or to read), cut
/// off as too slow if it does not finish within the stall timeout.
pub(super) async fn within_stall<T>(
    ctx: &Context,
    step: impl Future<Output = T>,
) -> Result<T, Failure> {
    let limit = ctx.limits.stall_timeout;
    tokio::time::timeout(limit, step).await.map_err(|_| {
        Failure::Abort(
            close::TOO_SLOW,
            format!(
                "the client did not keep up: nothing moved for {} s",
                limit.as_secs()
            ),
        )
    })
}

/// Reads a client's resume point, allowing it as long as it takes to hash the `held` bytes it
/// may keep, and checks it is one the offered `pieces` allow.
pub(super) async fn read_resume<R: tokio::io::AsyncRead + Unpin>(
    ctx: &Context,
    recv: &mut R,
    held: u64,
    pieces: &Pieces,
) -> Result<u64, Failure> {
    let read = crate::protocol::read_frame::<crate::protocol::Resume, _>(recv);
    let resume = tokio::time::timeout(ctx.limits.resume_timeout(held), read)
        .await
        .map_err(|_| Failure::Abort(close::TOO_SLOW, "no resume point in time".into()))?
        .map_err(Failure::abort)?;
    if !pieces.allows(resume.from) {
        return Err(Failure::Refuse(
            ErrorCode::BadRequest,
            format!("cannot resume at byte {}", resume.from),
        ));
    }
    Ok(resume.from)
}
