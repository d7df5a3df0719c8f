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
//! also writes out whatever else is dirty there (which would go within 30 s anyway); when that
//! makes a syncfs slow ([`SLOW_SYNCFS`]), rounds fsync each file and each directory once for a
//! while. Large files never join: their own fsync is their cost, and they must not wait for a
//! round of small ones.
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

/// A `syncfs` slower than this wrote out much besides our files: a round of 16 small files
/// flushed one by one takes about 20 ms on this project's test machine (1.3 ms per new file's
/// fsync), and its syncfs rounds take a few milliseconds. Seen on a disk shared with builds
/// holding 800 MB dirty: rounds of seconds.
const SLOW_SYNCFS: Duration = Duration::from_millis(50);

/// How long rounds fsync each file after a slow `syncfs`, before trying one again. The kernel
/// writes out what others left dirty within 30 s (`dirty_expire_centisecs`), so a later syncfs
/// finds less; at most one slow syncfs per period is paid.
const PRECISE_AFTER_SLOW: Duration = Duration::from_secs(10);

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
    /// Until then rounds fsync each file, not the filesystem: see [`SLOW_SYNCFS`].
    precise_until: Option<Instant>,
}

/// One upload taking part: everything the leader needs to finish it whatever its client does.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) upload: LocalUpload,
    pub(super) sha256: [u8; 32],
    /// Where its result goes; nobody may be listening any more.
    pub(super) answer: oneshot::Sender<Result<(), StorageError>>,
    /// Its file was fsynced on its own thread before it joined (rounds are fsyncing file by
    /// file after a slow syncfs: done by the members side by side, not one after another by
    /// the leader).
    pub(super) synced: bool,
}

/// A member renamed into place, with the directory that now holds it.
#[derive(Debug)]
struct Renamed {
    member: Member,
    /// The directory the rename changed (an `O_PATH` handle), for a round that fsyncs it alone.
    dir: OwnedFd,
}

impl Inner {
    /// Queues `member`, written whole, for commit; leads rounds on this (blocking) thread if no
    /// one else does, until nothing waits. The result arrives through `member.answer`.
    pub(super) fn join_commit(&self, mut member: Member) {
        if !self.commits.syncfs_pays() {
            if let Err(e) = member.upload.sync() {
                let text = member.upload.name().as_str();
                let _ = member.answer.send(Err(io_error(text, e)));
                return;
            }
            member.synced = true;
        }
        {
            let mut state = self.commits.lock();
            state.written.push(member);
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
        let whole = (count > PRECISE_MAX && self.commits.syncfs_pays())
            .then(|| self.sync_all_files().map_err(|e| (e, count)));
        let mut dirs = DirSyncs::default();
        for Renamed { member, dir } in renamed {
            let text = member.upload.name().as_str();
            let done = match &whole {
                Some(flushed) => flushed.as_ref().map_err(|e| batch_error(text, e)).copied(),
                None => dirs.sync(&dir).map_err(|e| io_error(text, e.into())),
            };
            if done.is_ok() {
                member.upload.committed(member.sha256);
            }
            let _ = member.answer.send(done);
        }
        let mut next = Vec::with_capacity(written.len());
        for mut member in written {
            let text = member.upload.name().as_str();
            let flushed = match &whole {
                _ if member.synced => Ok(()),
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
        let started = Instant::now();
        rustix::fs::syncfs(&self.staging)?;
        self.commits.timed_syncfs(started.elapsed());
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

    /// Whether a round should flush the whole filesystem: not for a while after one took long.
    fn syncfs_pays(&self) -> bool {
        let state = self.lock();
        state
            .precise_until
            .is_none_or(|until| Instant::now() >= until)
    }

    /// Notes how long a `syncfs` took: a slow one means much else is dirty on this filesystem
    /// (another program writing), which every round would have to write out too.
    fn timed_syncfs(&self, took: Duration) {
        if took > SLOW_SYNCFS {
            tracing::debug!(
                ?took,
                "syncfs was slow: commits flush their own files for a while"
            );
            self.lock().precise_until = Some(Instant::now() + PRECISE_AFTER_SLOW);
        }
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
mod tests {
    use std::sync::atomic::Ordering;

    use bytes::Bytes;
    use sha2::{Digest, Sha256};

    use crate::paths::SafeName;
    use crate::storage::local::Local;
    use crate::storage::StorageError;

    /// Begins uploads of `count` small files named by `name` (each holding its name), calls
    /// `meanwhile`, then commits them all at once; returns each one's result.
    async fn commit_at_once(
        local: &Local,
        count: usize,
        name: fn(usize) -> String,
        meanwhile: impl FnOnce(),
    ) -> Vec<Result<(), StorageError>> {
        let mut uploads = Vec::new();
        for i in 0..count {
            let safe = SafeName::new(&name(i)).unwrap();
            uploads.push(local.begin_upload(safe, 0).await.unwrap());
        }
        meanwhile();
        let tasks: Vec<_> = (uploads.into_iter().enumerate())
            .map(|(i, upload)| {
                let body = name(i).into_bytes();
                let sha256 = Sha256::digest(&body).into();
                tokio::spawn(upload.commit_whole(vec![Bytes::from(body)], sha256))
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    fn staged(local: &Local) -> usize {
        std::fs::read_dir(local.root().join(".qft/tmp"))
            .unwrap()
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_arriving_together_share_rounds_and_all_land() {
        let tmp = tempfile::tempdir().unwrap();
        let local = Local::open(tmp.path()).unwrap();
        let name = |i: usize| format!("d{}/f{i}", i % 3);
        let results = commit_at_once(&local, 64, name, || {}).await;
        for (i, result) in results.into_iter().enumerate() {
            result.unwrap();
            let got = std::fs::read(local.root().join(name(i))).unwrap();
            assert_eq!(got, name(i).into_bytes());
        }
        // Alone, each commit would take two rounds of its own.
        let rounds = local.inner.commits.rounds.load(Ordering::Relaxed);
        assert!(rounds < 64, "64 commits took {rounds} rounds: none shared");
        assert_eq!(staged(&local), 0, "no temp file left");
        assert!(
            !local.inner.commits.lock().leading,
            "the lead was handed back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_slow_syncfs_members_fsync_their_own_files_and_all_land() {
        let tmp = tempfile::tempdir().unwrap();
        let local = Local::open(tmp.path()).unwrap();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(600);
        local.inner.commits.lock().precise_until = Some(later);
        let name = |i: usize| format!("d{}/f{i}", i % 2);
        let results = commit_at_once(&local, 32, name, || {}).await;
        for (i, result) in results.into_iter().enumerate() {
            result.unwrap();
            let got = std::fs::read(local.root().join(name(i))).unwrap();
            assert_eq!(got, name(i).into_bytes());
        }
        assert_eq!(staged(&local), 0, "no temp file left");
        assert!(!local.inner.commits.syncfs_pays());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_whose_rename_fails_fails_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let local = Local::open(tmp.path()).unwrap();
        // f7's place becomes a non-empty directory after its upload began (the check at the
        // start passed): its rename, in the middle of a round, fails.
        let name = |i: usize| format!("f{i}");
        let trap = local.root().join("f7");
        let made = || std::fs::create_dir_all(trap.join("inside")).unwrap();
        let results = commit_at_once(&local, 32, name, made).await;
        for (i, result) in results.into_iter().enumerate() {
            if i == 7 {
                let e = result.expect_err("f7 is a directory now");
                assert!(e.to_string().contains("is a directory"), "{e}");
                assert!(trap.join("inside").is_dir(), "the directory is untouched");
            } else {
                result.unwrap();
                assert_eq!(
                    std::fs::read(local.root().join(name(i))).unwrap(),
                    name(i).into_bytes()
                );
            }
        }
        assert_eq!(
            staged(&local),
            0,
            "the failed member's temp file is gone too"
        );
    }
}
