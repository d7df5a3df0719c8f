//! qft: secure file transfer over QUIC.
//!
//! A map of the crate, from the wire up:
//! - [`protocol`]: the wire types and framing (the only place bytes become messages); its module
//!   doc is the protocol specification.
//! - [`paths`]: validation of every name that crosses the network, on both sides.
//! - [`tls`]: identities (rcgen, kept on disk), fingerprints, known hosts, quinn configs.
//! - [`tuning`]: congestion control, windows and packet size, the same on both ends.
//! - [`transfer`]: the one copy loop that moves a file body from a source to a sink and hashes
//!   it with SHA-256; its `adapters` are the ends (QUIC streams, files at an offset).
//! - [`compress`]: zstd-compressed bodies (`-C`), as the transfer layer's source and sink.
//! - [`rate`]: bandwidth limits (`--bwlimit`), paced on the transfer layer's blocks.
//! - [`pieces`]: resume pieces, the one place either side hashes a held prefix; its doc draws
//!   the resume exchange.
//! - [`fsutil`]: file helpers both sides use (atomic write, directory fsync, locked open).
//! - [`storage`]: the storage contract the server serves from (list, read a snapshot, upload and
//!   commit after verification with the time a client asked it to keep, partials, delete, manage
//!   names, walk a tree), and its backends (`storage::local`, and `storage::object` for an S3
//!   bucket).
//! - [`server`]: accept loop, a task per connection and per stream (`connection`), one path
//!   that runs every stream's request, a QUIC client's or a browser's (`dispatch`: permissions,
//!   bandwidth limits, the handler, the stream's end), one file per command; the commands share
//!   `exchange` (failures, the name check, the resume point). `server::web` answers browsers
//!   (`--web`): WebTransport on the same port, what a session may do (`scope`), the page, and
//!   the short-lived certificates browsers pin.
//! - [`share`]: share links, capabilities for one file or directory kept hashed in the qft home,
//!   made by `qft share` on the server's machine or by an admin's `share` through the server.
//! - [`client`]: [`client::Client`] (the operations: `download`, `upload`, over `stream`
//!   helpers) and the prompt and one-shot front ends.
//! - [`cli`]: the command line (clap types and their conversion into configs, `serve`, `connect`
//!   with the first-use trust question, `share`) and the exit-code table; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod client;
pub mod compress;
pub mod congestion;
pub mod fsutil;
pub mod home;
pub mod paths;
pub mod pieces;
pub mod protocol;
pub mod rate;
pub mod server;
pub mod share;
pub mod storage;
pub mod tls;
pub mod transfer;
pub mod tuning;
