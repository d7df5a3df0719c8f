//! Early writeback: the disk starts taking a file that is being received while the transfer
//! goes on, so the fsync that makes it durable at the end (before its rename, before `Done`)
//! waits for the last few MiB instead of the whole file.
//!
//! Why: Linux keeps a new file's pages in memory until something asks for them to be written
//! (here not before 10% of RAM, 2.4 GB, is dirty), so without this the final fsync wrote the
//! whole file at once, after its last byte had arrived: 0.30 s for 1 GiB on this machine, on
//! the critical path of every large transfer (scp and rsync never fsync, so they never pay it).
//!
//! How: a thread of its own asks for the file's data to be made durable (fdatasync) each time
//! [`EVERY`] more bytes were written, through a *second* open file of the same inode. A second
//! one because the kernel reports a writeback error once to each open file (errseq, Linux 4.13
//! and later): an error this thread's fdatasync sees is still reported to the commit's own
//! fsync on the transfer's file, and the commit decides. So this thread ignores its outcomes:
//! it only moves work earlier. Where no second file can be opened (no /proc, another system),
//! nothing changes but the wait at the end.

use std::fs::File;
use std::sync::mpsc::{sync_channel, SyncSender};

/// Bytes written between two requests for writeback. A request that finds the last one still
/// running is dropped: one runs at a time, back to back at most.
pub const EVERY: u64 = 16 << 20;

/// Starts writeback of a file being written, every [`EVERY`] bytes.
#[derive(Debug)]
pub struct EarlyWriteback {
    /// Wakes the thread; `None` where there is none.
    wake: Option<SyncSender<()>>,
    /// Where the file was when writeback was last asked for.
    asked_at: u64,
}

impl EarlyWriteback {
    /// For a file being written from `pos`. The thread starts only once [`EVERY`] bytes were
    /// written: a small file never starts one.
    pub fn new(pos: u64) -> Self {
        EarlyWriteback {
            wake: None,
            asked_at: pos,
        }
    }

    /// Notes that `file` now holds bytes up to `pos`, and asks for writeback every [`EVERY`].
    pub fn written(&mut self, file: &File, pos: u64) {
        if pos < self.asked_at.saturating_add(EVERY) {
            return;
        }
        self.asked_at = pos;
        if self.wake.is_none() {
            self.wake = start(file);
        }
        if let Some(wake) = &self.wake {
            // Full: a writeback is running and one is queued after it; this one adds nothing.
            let _ = wake.try_send(());
        }
    }
}

/// The thread that runs fdatasync on its own open file of `file`'s inode when woken, until
/// the [`EarlyWriteback`] is dropped.
fn start(file: &File) -> Option<SyncSender<()>> {
    let own = reopen(file)?;
    let (wake, woken) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("qft-writeback".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                // Ignored on purpose: see the module's doc (errseq).
                let _ = own.sync_data();
            }
        })
        .ok()?;
    Some(wake)
}

/// A second open file of `file`'s inode.
#[cfg(target_os = "linux")]
fn reopen(file: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(not(target_os = "linux"))]
fn reopen(_: &File) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_small_file_starts_no_thread_and_a_large_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("f")).unwrap();
        let mut early = EarlyWriteback::new(0);
        file.write_all(&[7; 4096]).unwrap();
        early.written(&file, 4096);
        assert!(early.wake.is_none(), "a thread for 4 KiB");
        early.written(&file, EVERY);
        #[cfg(target_os = "linux")]
        assert!(early.wake.is_some(), "no thread after {EVERY} bytes");
        assert_eq!(early.asked_at, EVERY);
    }

    /// The second file is the same inode, so what it syncs is the transfer's file.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_second_file_is_the_same_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let own = reopen(&file).expect("/proc/self/fd");
        let (a, b) = (file.metadata().unwrap(), own.metadata().unwrap());
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
    }
}
