//! Exit statuses, one table for the whole program: [`super::main`] returns them, and the mode
//! runners ([`super::connect`]) choose among them without importing `main`'s module.

/// Everything asked for was done.
pub const SUCCESS: u8 = 0;
/// An operation failed: not found, refused, verification failed, trust refused, no connection.
pub const FAILURE: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// Stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;
