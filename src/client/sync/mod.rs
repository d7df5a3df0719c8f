//! `sync SRC DST`: make a directory on one side hold what a directory on the other holds, as
//! rsync and rclone sync do, one side remote (`:photos`; `:` alone is the remote working
//! directory).
//!
//! The walk of a sync, in one direction: both sides are read whole first ([`tree`]: the local
//! directory walked without following links, the remote one in one WALK), compared ([`plan`]:
//! new and changed files, directories to make, with `--delete` what the destination has and the
//! source does not, excluded names ([`exclude`]) left out of everything), and only then changed
//! (`run`): what is in the way cleared, directories made, files sent `jobs` at a time, each
//! through the same verified, atomic, resumable path as `put`/`get` and keeping its time (so a
//! second sync finds it unchanged, and a broken sync run again sends only what had not
//! completed), then what is gone from the source deleted. Every action is reported as it
//! happens ([`report`]), and a summary at the end.
//!
//! Safety: every name below the destination comes from a side's own walk: the local one from
//! the directory itself, the remote one checked as plain components (no `..`, nothing absolute)
//! and each under a directory the walk listed. A link is an entry of its own, never entered:
//! `--delete` removes a link, never what it leads to. The server keeps its private area out of
//! every walk and refuses it by any spelling.

mod exclude;
mod plan;
mod report;
mod run;
mod send;
mod spec;
mod tree;

pub use exclude::Excludes;
pub use spec::{Side, SyncSpec};
