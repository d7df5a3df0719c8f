//! QUIC application error codes used to reset or close.

/// A normal end: LOGOUT, or the server shutting down.
pub const NORMAL: u32 = 0;
/// The sender abandoned a stream (a file could not be read to the end, a peer broke protocol).
pub const ABORTED: u32 = 1;
/// The client's key is not on the server's authorized-clients list; the reason says which key.
pub const NOT_AUTHORIZED: u32 = 2;
/// The server is at a connection limit; the reason says which.
pub const BUSY: u32 = 3;
/// A stream was too slow: no request in time, or a transfer block that did not move in time.
pub const TOO_SLOW: u32 = 4;

/// The reason sent with [`BUSY`]: why, and when to try again. A person reads it as one
/// sentence; a client finds the delay with [`retry_after`].
pub fn busy(why: &str, after: std::time::Duration) -> String {
    format!("{why}; try again in {} s", after.as_secs().max(1))
}

/// The delay a [`BUSY`] reason asks for, if it names one.
pub fn retry_after(reason: &str) -> Option<std::time::Duration> {
    let secs = reason
        .rsplit_once("; try again in ")?
        .1
        .strip_suffix(" s")?;
    secs.parse().ok().map(std::time::Duration::from_secs)
}
