//! The digest cache: the SHA-256 of files this server received or sent whole, so that sending an
//! unchanged file again does not hash it again (hashing was a third of a download's CPU on the
//! server; BENCHMARKS.md). The client verifies every download all the same: the cache saves the
//! server work, it never decides what a client accepts.
//!
//! # When a digest is used
//! Only while the file is provably the content that was hashed: its device and inode, size,
//! modification time and status-change time (ctime, nanoseconds) all as they were then. Any
//! write, truncation, rename, link or chmod moves the ctime, which no one can set back (a `touch`
//! that puts the mtime back moves the ctime); a file replaced by a rename has another inode.
//!
//! A change in the same tick of the filesystem's clock as the one before it would leave the
//! times as they were, so an entry is made only when no such change can have slipped in:
//! - **sent whole** ([`Ticket::hashed`]): the file's times are unchanged from opening to the end
//!   of the hash, and its ctime is at least [`RACY`] older than its opening, so any later change
//!   gets a later ctime;
//! - **received** ([`Digests::committed`]): after the rename into place (which sets the ctime),
//!   the file's mtime (its last write) must be older than its ctime, so a write after the rename
//!   would move the mtime. A small file written and renamed within one tick is not recorded;
//!   hashing it again costs little.
//!
//! This assumes timestamps that only move forward and ticks of at most [`RACY`]; a clock set
//! back could defeat it, and then the client's check refuses the download.
//!
//! # Bounds
//! At most [`MAX_ENTRIES`] files (about 120 bytes each), the oldest entry evicted first. The
//! cache lives in memory only: after a restart each file is hashed once more. (Kept in the
//! private area it would survive restarts, for the checksum-based sync that will use it too;
//! that needs a format and a write policy, left for then.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files remembered at most.
pub const MAX_ENTRIES: usize = 16_384;

/// A file whose ctime is this close to the moment it was opened is not remembered from a
/// download: larger than any filesystem's clock tick (FAT's is 2 s, Linux's coarse clock's a
/// few milliseconds).
pub const RACY: Duration = Duration::from_secs(3);

/// What identifies one version of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    /// (seconds, nanoseconds) since the epoch.
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a file as `statat` described it, without opening it (STAT, WALK).
    // The field types of `stat` differ between platforms: some casts are no-ops here only.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn of_stat(st: &rustix::fs::Stat) -> Stamp {
        Stamp {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// The stamp of an open file, where the platform tells inodes and ctimes.
    pub(crate) fn of(file: &std::fs::File) -> Option<Stamp> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = file.metadata().ok()?;
            Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = file;
            None
        }
    }

    /// The ctime as a duration since the epoch (`None` before it).
    fn ctime(&self) -> Option<Duration> {
        let secs = u64::try_from(self.ctime.0).ok()?;
        let nanos = u32::try_from(self.ctime.1).ok()?;
        Some(Duration::new(secs, nanos))
    }
}

/// The cache of one served directory.
#[derive(Debug, Default)]
pub(crate) struct Digests {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// By (device, inode): the stamp when hashed, the digest, and when it was recorded.
    entries: HashMap<(u64, u64), Entry>,
    /// Keys with when they were recorded, oldest first, for eviction: a place whose entry was
    /// recorded again since is stale and skipped.
    order: VecDeque<((u64, u64), u64)>,
    /// Counts records.
    next: u64,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    digest: [u8; 32],
    recorded: u64,
}

impl Digests {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic elsewhere leaves at worst a missing entry: nothing worth refusing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The digest recorded for exactly this stamp.
    pub(crate) fn get(&self, stamp: &Stamp) -> Option<[u8; 32]> {
        let table = self.table();
        match table.entries.get(&(stamp.dev, stamp.ino)) {
            Some(entry) if entry.stamp == *stamp => Some(entry.digest),
            _ => None,
        }
    }

    fn put(&self, stamp: Stamp, digest: [u8; 32]) {
        let key = (stamp.dev, stamp.ino);
        let mut table = self.table();
        let recorded = table.next;
        table.next += 1;
        let entry = Entry {
            stamp,
            digest,
            recorded,
        };
        table.entries.insert(key, entry);
        table.order.push_back((key, recorded));
        // Stale places are dropped on the way, so `order` stays within twice the bound.
        while table.entries.len() > MAX_ENTRIES || table.order.len() > 2 * MAX_ENTRIES {
            let Some((oldest, when)) = table.order.pop_front() else {
                break;
            };
            if table
                .entries
                .get(&oldest)
                .is_some_and(|e| e.recorded == when)
            {
                table.entries.remove(&oldest);
            }
        }
    }

    /// Forgets what is known of `file` (its content is about to be something else).
    fn forget(&self, stamp: &Stamp) {
        self.table().entries.remove(&(stamp.dev, stamp.ino));
    }

    /// Records `digest` for `file`, just renamed into place after it was verified, if no write
    /// after the rename could go unnoticed (see the module doc).
    pub(crate) fn committed(&self, file: &std::fs::File, digest: [u8; 32]) {
        let Some(stamp) = Stamp::of(file) else {
            return;
        };
        if stamp.mtime < stamp.ctime {
            self.put(stamp, digest);
        } else {
            self.forget(&stamp);
        }
    }

    /// What is known of `file`, opened just now to be read: its digest if recorded, and what
    /// [`Ticket::hashed`] needs to record one.
    pub(crate) fn ticket(self: &Arc<Self>, file: &Arc<std::fs::File>) -> Ticket {
        let opened = Stamp::of(file);
        Ticket {
            known: opened.as_ref().and_then(|s| self.get(s)),
            opened,
            opened_at: SystemTime::now(),
            file: file.clone(),
            digests: self.clone(),
        }
    }
}

/// One opened file's standing in the cache.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// The digest, if the file is as it was when hashed.
    pub(crate) known: Option<[u8; 32]>,
    opened: Option<Stamp>,
    opened_at: SystemTime,
    file: Arc<std::fs::File>,
    digests: Arc<Digests>,
}

impl Ticket {
    /// Records `digest`, the SHA-256 of all of this file as read since it was opened, if the
    /// file did not change meanwhile and had not changed for a while before (see the module
    /// doc).
    pub(crate) fn hashed(&self, digest: [u8; 32]) {
        let (Some(opened), Some(now)) = (self.opened, Stamp::of(&self.file)) else {
            return;
        };
        let settled = self
            .opened_at
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|at| at.checked_sub(RACY))
            .zip(opened.ctime())
            .is_some_and(|(before, ctime)| ctime < before);
        if now == opened && settled {
            self.digests.put(now, digest);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn settled_file(dir: &std::path::Path, content: &[u8]) -> std::path::PathBuf {
        let path = dir.join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        path
    }

    fn digest(n: u8) -> [u8; 32] {
        [n; 32]
    }

    /// A ticket as if the file had been opened `RACY` and more after its last change (no test
    /// waits that long).
    fn later_ticket(digests: &Arc<Digests>, file: &Arc<std::fs::File>) -> Ticket {
        let mut ticket = digests.ticket(file);
        ticket.opened_at += RACY + Duration::from_secs(1);
        ticket
    }

    #[test]
    fn a_digest_is_used_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = settled_file(dir.path(), b"hello");
        let digests = Arc::new(Digests::default());
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let ticket = later_ticket(&digests, &file);
        assert_eq!(ticket.known, None);
        ticket.hashed(digest(1));
        let again = Arc::new(std::fs::File::open(&path).unwrap());
        assert_eq!(digests.ticket(&again).known, Some(digest(1)));
    }

    #[test]
    fn a_file_changed_just_before_it_was_opened_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = settled_file(dir.path(), b"hello");
        let digests = Arc::new(Digests::default());
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        // Opened right after its last change: a change within the same clock tick could follow.
        digests.ticket(&file).hashed(digest(1));
        assert_eq!(digests.ticket(&file).known, None);
    }

    #[test]
    fn a_change_in_place_with_the_same_size_and_mtime_is_caught_by_the_ctime() {
        let dir = tempfile::tempdir().unwrap();
        let path = settled_file(dir.path(), b"hello");
        let digests = Arc::new(Digests::default());
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        later_ticket(&digests, &file).hashed(digest(1));
        let before = std::fs::metadata(&path).unwrap();
        // Same size, and the mtime put back as it was: only the ctime tells.
        std::thread::sleep(Duration::from_millis(20));
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all_at(b"jello", 0).unwrap();
        writer.set_modified(before.modified().unwrap()).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(after.len(), before.len());
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
        let reopened = Arc::new(std::fs::File::open(&path).unwrap());
        assert_eq!(digests.ticket(&reopened).known, None);
    }

    #[test]
    fn a_file_replaced_by_another_with_the_same_times_is_another_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = settled_file(dir.path(), b"hello");
        let digests = Arc::new(Digests::default());
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        later_ticket(&digests, &file).hashed(digest(1));
        let other = dir.path().join("g");
        std::fs::write(&other, b"jello").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let reopened = Arc::new(std::fs::File::open(&path).unwrap());
        assert_eq!(digests.ticket(&reopened).known, None);
        // The first file, still open, lost its name: that moved its ctime too.
        assert_eq!(digests.ticket(&file).known, None);
    }

    #[test]
    fn a_file_that_changes_while_it_is_hashed_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = settled_file(dir.path(), b"hello");
        let digests = Arc::new(Digests::default());
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let ticket = later_ticket(&digests, &file);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(b"j", 0)
            .unwrap();
        ticket.hashed(digest(1));
        assert_eq!(digests.ticket(&file).known, None);
    }

    #[test]
    fn a_commit_is_remembered_only_when_its_last_write_is_older_than_its_rename() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"hello").unwrap();
        let file = std::fs::File::open(&staged).unwrap();
        // Written and renamed long after: a later write would move the mtime.
        std::thread::sleep(Duration::from_millis(30));
        std::fs::rename(&staged, dir.path().join("final")).unwrap();
        let digests = Arc::new(Digests::default());
        digests.committed(&file, digest(2));
        let stamp = Stamp::of(&file).unwrap();
        if stamp.mtime < stamp.ctime {
            assert_eq!(digests.get(&stamp), Some(digest(2)));
        }
        // A write after the commit moves the stamp.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("final"))
            .unwrap()
            .write_all_at(b"j", 0)
            .unwrap();
        let changed = Stamp::of(&file).unwrap();
        assert_eq!(digests.get(&changed), None);
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest_first() {
        let digests = Digests::default();
        let stamp = |ino| Stamp {
            dev: 1,
            ino,
            size: 1,
            mtime: (1, 0),
            ctime: (2, 0),
        };
        // The first one recorded again early on: its first place is stale, its second counts.
        digests.put(stamp(0), digest(3));
        digests.put(stamp(0), digest(4));
        for ino in 1..(MAX_ENTRIES as u64 + 10) {
            digests.put(stamp(ino), digest(3));
        }
        let table = digests.table();
        assert_eq!(table.entries.len(), MAX_ENTRIES);
        assert!(table.order.len() <= 2 * MAX_ENTRIES);
        drop(table);
        assert_eq!(digests.get(&stamp(0)), None);
        assert_eq!(digests.get(&stamp(9)), None);
        assert_eq!(digests.get(&stamp(10)), Some(digest(3)));
        assert_eq!(digests.get(&stamp(MAX_ENTRIES as u64 + 9)), Some(digest(3)));
    }
}
