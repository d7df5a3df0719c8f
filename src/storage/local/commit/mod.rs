//! Group commit: small uploads that are committed at about the same time share their flushes to
//! disk.
//!
//! A small file's commit is mostly waiting for the disk: its temp file made durable before the
//! rename, and the rename made durable after it, each an fsync that ends in a flush of the disk's
//! cache (a quarter of the server's samples over a 10,000-file upload; BENCHMARKS.md, issue #12).
//! The promise stays the same: nothing partial under a real name (the data is durable before the
//! rename), and a commit succeeds only once the data and the rename are durable.
//!
//! Commits go through rounds, run by one leader at a time. Each round makes durable, with one
//! flush, everything that waits for it:
//! - files written since the last round, which the round then renames into place;
//! - files renamed by the last round, which are then answered.
//!
//! So each file takes two rounds, as it took two fsyncs, and each round serves two cohorts.
//! Whoever arrives while a round flushes waits for the next one; the first to arrive while no
//! leader runs leads, on its own blocking thread, until nothing waits. There is no timer: a
//! commit that arrives alone is flushed at once, with its own fsyncs as before.
//!
//! A round with more than [`PRECISE_MAX`] things to make durable flushes the whole filesystem
//! (`syncfs`): its writes go out together and the disk's cache is flushed once, where each new
//! file's fsync waits for its data, its inode and its directory in turn. The price is that it
//! also writes out whatever else is dirty there; beside a program that writes a lot, that is
//! slower than fsyncs of our own files side by side, so the way is chosen by what each took
//! lately ([`Choice`]). Large files never join: their own fsync is their cost, and they must
//! not wait for a round of small ones.
//!
//! Failures: one file's failure (its rename) fails that file only; a failed flush fails every
//! member of that round, and says so. A member whose client went away is still finished (its
//! file was received whole and verified), and nobody else notices.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use tokio::sync::oneshot;

use super::resolve::{io_error, sync_dir};
use super::upload::LocalUpload;
use super::Inner;
use crate::storage::StorageError;

/// Up to this many things to make durable (files written, plus files renamed) a round fsyncs
/// each of them: that is no more flushes than `syncfs` and the fsync after it, and writes out
/// nothing but our own files.
const PRECISE_MAX: usize = 2;

/// How long one way of flushing is kept before the choice is made again.
const EPOCH: Duration = Duration::from_millis(200);

/// A way's measure older than this is measured again (for one epoch), whatever it said: what
/// else is dirty on the filesystem changes.
const EXPLORE: Duration = Duration::from_secs(2);

/// How a round makes files durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// One `syncfs` (and an fsync) for everything in the round.
    Syncfs,
    /// Each file fsynced by its own thread before it joins, each directory once by the round.
    EachFile,
}

/// Which [`Way`] rounds take: the one whose commits took less time from joining to their
/// answer, lately. A syncfs writes out everything dirty on the filesystem; beside a program
/// writing a lot (a build on the same disk) it waits for that, and fsyncs of our own files,
/// side by side, are quicker. Measured on this project's test machine: 1.7 s against 2.0 s for
/// 10,000 files on a quiet disk, 5-7 s against 2.5 s beside a build.
#[derive(Debug)]
struct Choice {
    now: Way,
    /// When `now` was chosen.
    since: Instant,
    /// The mean time from joining to the answer of each way (a moving average), and when it
    /// was last measured: [syncfs, each file].
    took: [Option<(Duration, Instant)>; 2],
}

impl Default for Choice {
    fn default() -> Self {
        Choice {
            now: Way::Syncfs,
            since: Instant::now(),
            took: [None, None],
        }
    }
}

impl Choice {
    fn way(&mut self) -> Way {
        let at = Instant::now();
        if at.duration_since(self.since) < EPOCH {
            return self.now;
        }
        let other = match self.now {
            Way::Syncfs => Way::EachFile,
            Way::EachFile => Way::Syncfs,
        };
        self.now = match (self.took[self.now as usize], self.took[other as usize]) {
            (_, None) => other,
            (_, Some((_, measured))) if at.duration_since(measured) > EXPLORE => other,
            (Some((mine, _)), Some((theirs, _))) if theirs < mine => other,
            _ => self.now,
        };
        self.since = at;
        self.now
    }

    fn record(&mut self, way: Way, took: Duration) {
        let slot = &mut self.took[way as usize];
        let mean = match *slot {
            Some((mean, _)) => (mean * 7 + took) / 8,
            None => took,
        };
        *slot = Some((mean, Instant::now()));
    }
}

/// The commits waiting for a round, and whether a leader runs them.
#[derive(Debug, Default)]
pub(super) struct Group {
    state: Mutex<State>,
    /// Rounds run so far: the unit tests' evidence that commits share them.
    #[cfg(test)]
    rounds: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    /// Written whole (data and meta), waiting for a flush before their rename.
    written: Vec<Member>,
    /// Renamed into place, waiting for a flush before their answer.
    renamed: Vec<Renamed>,
    /// A leader is running rounds: newcomers only queue.
    leading: bool,
    /// How rounds make files durable.
    choice: Choice,
}

/// One upload taking part: everything the leader needs to finish it whatever its client does.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) upload: LocalUpload,
    pub(super) sha256: [u8; 32],
    /// Where its result goes; nobody may be listening any more.
    pub(super) answer: oneshot::Sender<Result<(), StorageError>>,
    /// How it is made durable, chosen as it joins (its file fsynced on its own thread then,
    /// for [`Way::EachFile`]: side by side with the others', not one after another by the
    /// leader).
    way: Way,
    /// When it joined, for [`Choice`].
    joined: Instant,
}

impl Member {
    pub(super) fn new(
        upload: LocalUpload,
        sha256: [u8; 32],
        answer: oneshot::Sender<Result<(), StorageError>>,
    ) -> Self {
        Member {
            upload,
            sha256,
            answer,
            way: Way::Syncfs,
            joined: Instant::now(),
        }
    }
}

/// A member renamed into place, with the directory that now holds it.
#[derive(Debug)]
struct Renamed {
    member: Member,
    /// The directory the rename changed (an `O_PATH` handle), for a round that fsyncs it alone.
    dir: OwnedFd,
}

impl Inner {
    /// Queues `members`, each written whole, for commit; leads rounds on this (blocking)
    /// thread if no one else does, until nothing waits. Each result arrives through its
    /// member's `answer`, as soon as it is known, whoever leads.
    pub(super) fn join_commits(&self, members: Vec<Member>) {
        let joined = Instant::now();
        // Many together (a bundle) always share a syncfs: their own fsyncs would run one after
        // another on this one thread, a disk wait each.
        let way = match members.len() > PRECISE_MAX {
            true => Way::Syncfs,
            false => self.commits.lock().choice.way(),
        };
        let mut ready = Vec::with_capacity(members.len());
        for mut member in members {
            member.joined = joined;
            member.way = way;
            if way == Way::EachFile {
                if let Err(e) = member.upload.sync() {
                    let text = member.upload.name().as_str();
                    let _ = member.answer.send(Err(io_error(text, e)));
                    continue;
                }
            }
            ready.push(member);
        }
        {
            let mut state = self.commits.lock();
            state.written.extend(ready);
            if state.leading {
                return;
            }
            state.leading = true;
        }
        let _leader = Leader(self);
        loop {
            let (written, renamed) = {
                let mut state = self.commits.lock();
                if state.written.is_empty() && state.renamed.is_empty() {
                    state.leading = false;
                    return;
                }
                (
                    std::mem::take(&mut state.written),
                    std::mem::take(&mut state.renamed),
                )
            };
            #[cfg(test)]
            self.commits
                .rounds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let next = self.round(written, renamed);
            self.commits.lock().renamed.extend(next);
        }
    }

    /// One round: one flush for all of them; answers the renamed, renames the written, and
    /// returns those renamed now, for the next round.
    fn round(&self, written: Vec<Member>, renamed: Vec<Renamed>) -> Vec<Renamed> {
        let count = written.len() + renamed.len();
        // None: each is flushed alone, below.
        let syncfs = written.iter().any(|m| m.way == Way::Syncfs);
        let whole =
            (count > PRECISE_MAX && syncfs).then(|| self.sync_all_files().map_err(|e| (e, count)));
        let mut dirs = DirSyncs::default();
        for Renamed { member, dir } in renamed {
            let text = member.upload.name().as_str();
            let done = match &whole {
                Some(flushed) => flushed.as_ref().map_err(|e| batch_error(text, e)).copied(),
                None => dirs.sync(&dir).map_err(|e| io_error(text, e.into())),
            };
            if done.is_ok() {
                member.upload.committed(member.sha256);
                let took = member.joined.elapsed();
                self.commits.lock().choice.record(member.way, took);
            }
            let _ = member.answer.send(done);
        }
        let mut next = Vec::with_capacity(written.len());
        for mut member in written {
            let text = member.upload.name().as_str();
            let flushed = match &whole {
                _ if member.way == Way::EachFile => Ok(()),
                Some(flushed) => flushed.as_ref().map_err(|e| batch_error(text, e)).copied(),
                None => member.upload.sync().map_err(|e| io_error(text, e)),
            };
            // On any failure the member (and its temp file) goes here; the others go on.
            match flushed.and_then(|()| member.upload.rename()) {
                Ok(dir) => next.push(Renamed { member, dir }),
                Err(e) => {
                    let _ = member.answer.send(Err(e));
                }
            }
        }
        next
    }

    /// Makes every file and directory of the served filesystem durable.
    fn sync_all_files(&self) -> rustix::io::Result<()> {
        rustix::fs::syncfs(&self.staging)?;
        // ext4 without a journal (this project's test machine) flushes the disk's cache inside
        // syncfs before it writes the last metadata blocks; an fsync issues one more flush, which
        // covers them. Elsewhere it costs one flush with little to write.
        rustix::fs::fsync(&self.staging)?;
        Ok(())
    }
}

/// The directories a round fsynced, by identity, with the outcome: each is fsynced once for all
/// the renames into it.
#[derive(Default)]
struct DirSyncs(Vec<((u64, u64), Result<(), Errno>)>);

impl DirSyncs {
    fn sync(&mut self, dir: &OwnedFd) -> Result<(), Errno> {
        // Not told apart (fstat failed): fsynced alone.
        #[allow(clippy::unnecessary_cast)]
        let Ok(key) = rustix::fs::fstat(dir).map(|st| (st.st_dev as u64, st.st_ino as u64)) else {
            return sync_dir(dir.as_fd());
        };
        if let Some((_, synced)) = self.0.iter().find(|(k, _)| *k == key) {
            return *synced;
        }
        let synced = sync_dir(dir.as_fd());
        self.0.push((key, synced));
        synced
    }
}

/// What each member of a round is told when the round's flush failed: the cause, and that it
/// was the batch's, so that one bad file is not suspected.
fn batch_error(text: &str, (e, count): &(Errno, usize)) -> StorageError {
    let e = io::Error::from(*e);
    let source = io::Error::new(
        e.kind(),
        format!("flushing a batch of {count} uploads to disk failed: {e}"),
    );
    io_error(text, source)
}

impl Group {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Hands the lead back should the leader panic: whatever waits is dropped, which its members
/// hear as a lost commit, rather than waiting for a leader that never comes. (A leader that
/// ends normally hands it back itself, under the same lock as its last look at the queue.)
struct Leader<'a>(&'a Inner);

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.commits.lock();
            state.written.clear();
            state.renamed.clear();
            state.leading = false;
        }
    }
}

#[cfg(test)]
mod tests;
