//! Listing a local directory page by page, in name order, holding a bounded window of names.
//!
//! Sorting needs every name, and a directory can hold millions: holding them all, per listing,
//! is what let 64 unread listings of a 200k-entry directory take 1.9 GB. So the directory is
//! read through its open handle in passes: each keeps the next `window` names after the last one
//! handed out (a bounded heap), and pages are cut from them. The window starts at
//! [`MIN_WINDOW`] names and grows with the directory up to [`MAX_WINDOW`], so that a listing
//! reads the directory about [`PASSES`] times whatever its size, and never holds more than
//! `MAX_WINDOW` names. Each entry is looked at (`statat` on the handle) only when its page is
//! asked for.

use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::AsFd;
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::resolve::{io_error, Found, Last, Parents};
use super::{blocking, Inner, PRIVATE_DIR};
use crate::paths::SafeName;
use crate::protocol::{Entry, EntryKind};
use crate::storage::StorageError;

/// Names held at first: a directory this small is read once.
const MIN_WINDOW: usize = 8192;
/// The most names a listing holds, however large the directory (a few MB).
const MAX_WINDOW: usize = 64 * 1024;
/// Passes a large directory is read in, until the window reaches its maximum.
const PASSES: usize = 8;

/// A local directory being listed.
#[derive(Debug)]
pub struct LocalListing {
    /// Taken while a page is read on a blocking thread.
    state: Option<Box<State>>,
    /// The client's name for the directory ("" for the root), for errors.
    shown: String,
}

#[derive(Debug)]
struct State {
    inner: Arc<Inner>,
    /// The open directory.
    dir: Dir,
    /// Whether it is the root, where the private area is not listed.
    at_root: bool,
    /// Its name, to follow the symlinks in it (`None`: the root).
    base: Option<SafeName>,
    /// The next names, in order.
    ahead: VecDeque<String>,
    /// The last name handed out: the next window is the names after it.
    after: Option<String>,
    /// Names per pass.
    window: usize,
    /// The most names per pass ([`MAX_WINDOW`]).
    max_window: usize,
    /// Whether the last pass found every name left.
    complete: bool,
}

impl LocalListing {
    /// Opens the directory `dir` (`None`: the root) for listing.
    pub(super) fn open(inner: Arc<Inner>, dir: Option<SafeName>) -> Result<Self, StorageError> {
        let shown = dir.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let err = |e: Errno| io_error(&shown, e.into());
        let read = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let found = match &dir {
            None => Found::Root,
            Some(name) => inner
                .locate(name, Last::Target, Parents::Existing)?
                .expect("existing parents"),
        };
        let (fd, at_root) = match found {
            Found::Root => (
                rustix::fs::openat(&inner.root_fd, ".", read, Mode::empty()).map_err(err)?,
                true,
            ),
            Found::Entry { dir, leaf, .. } => {
                match rustix::fs::openat(&dir, &leaf, read | OFlags::NOFOLLOW, Mode::empty()) {
                    Ok(fd) => (fd, false),
                    Err(Errno::NOTDIR | Errno::LOOP) => {
                        return Err(StorageError::NotADirectory(shown))
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        };
        let state = State {
            dir: Dir::new(fd).map_err(err)?,
            at_root,
            base: if at_root { None } else { dir },
            inner,
            ahead: VecDeque::new(),
            after: None,
            window: MIN_WINDOW,
            max_window: MAX_WINDOW,
            complete: false,
        };
        Ok(LocalListing {
            state: Some(Box::new(state)),
            shown,
        })
    }

    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some(mut state) = self.state.take() else {
            // A page failed midway before: nothing more to give.
            return Ok(Vec::new());
        };
        let shown = self.shown.clone();
        let (state, page) = blocking(shown.clone(), move || {
            let page = state.page(max, &shown)?;
            Ok((state, page))
        })
        .await?;
        self.state = Some(state);
        Ok(page)
    }
}

impl State {
    /// Up to `max` more entries, reading the directory again when the window runs out.
    fn page(&mut self, max: usize, shown: &str) -> Result<Vec<Entry>, StorageError> {
        let mut page = Vec::new();
        while page.len() < max {
            let Some(name) = self.ahead.pop_front() else {
                if self.complete {
                    break;
                }
                self.read_window().map_err(|e| io_error(shown, e.into()))?;
                continue;
            };
            if let Some(entry) = self.describe(&name) {
                page.push(entry);
            }
            self.after = Some(name);
        }
        Ok(page)
    }

    /// One pass over the directory: the next `window` names after the last handed out.
    fn read_window(&mut self) -> Result<(), Errno> {
        self.dir.rewind();
        let mut heap: BinaryHeap<String> = BinaryHeap::with_capacity(self.window.min(1024));
        let mut left = 0usize;
        for item in &mut self.dir {
            let item = item?;
            let Ok(name) = std::str::from_utf8(item.file_name().to_bytes()) else {
                continue; // not UTF-8: no client could ask for it
            };
            if name == "." || name == ".." {
                continue;
            }
            if self.after.as_deref().is_some_and(|after| name <= after) {
                continue;
            }
            if self.at_root && name.eq_ignore_ascii_case(PRIVATE_DIR) {
                continue;
            }
            left += 1;
            let wanted =
                heap.len() < self.window || heap.peek().is_some_and(|top| name < top.as_str());
            if !wanted {
                continue;
            }
            if SafeName::new(name).is_err() {
                // A name no client could ask for (a newline, a backslash) is not offered either.
                tracing::debug!("not listing {:?}", crate::paths::sanitize(name));
                continue;
            }
            if heap.len() == self.window {
                heap.pop();
            }
            heap.push(name.to_owned());
        }
        // A window that did not fill holds every name left.
        self.complete = heap.len() < self.window;
        if !self.complete && self.after.is_none() {
            // Now that the size is known: few passes, within the bound.
            self.window = (left / PASSES).clamp(self.window, self.max_window);
        }
        self.ahead = heap.into_sorted_vec().into();
        Ok(())
    }

    /// The entry `name`; `None` if it was removed meanwhile. A symlink is described by its
    /// target only if that stays beneath the root and out of the private area; otherwise as
    /// "other".
    fn describe(&self, name: &str) -> Option<Entry> {
        let dir = self.dir.fd().ok()?;
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            return Some(entry(name, &st));
        }
        Some(entry(name, &self.follow(name).unwrap_or(st)))
    }

    /// What the symlink `name` here leads to, if it stays beneath the root.
    fn follow(&self, name: &str) -> Option<Stat> {
        let full = match &self.base {
            None => SafeName::new(name).ok()?,
            Some(base) => SafeName::new(&format!("{base}/{name}")).ok()?,
        };
        let inner = &self.inner;
        match inner
            .locate(&full, Last::Target, Parents::Existing)
            .ok()??
        {
            Found::Root => rustix::fs::fstat(&inner.root_fd).ok(),
            Found::Entry { dir, leaf, .. } => {
                rustix::fs::statat(dir.as_fd(), &leaf, AtFlags::SYMLINK_NOFOLLOW).ok()
            }
        }
    }
}

/// A listing entry from what `stat` said.
fn entry(name: &str, st: &Stat) -> Entry {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        _ => EntryKind::Other,
    };
    Entry {
        name: name.to_owned(),
        kind,
        size: if kind == EntryKind::File {
            st.st_size as u64
        } else {
            0
        },
        modified: u64::try_from(st.st_mtime).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::Local;

    #[tokio::test]
    async fn pages_come_in_name_order_across_windows_without_the_private_area() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut want = Vec::new();
        for i in (0..97).rev() {
            let name = format!("f{:03}", i * 7 % 97);
            std::fs::write(root.join(&name), b"x").unwrap();
            want.push(name);
        }
        want.sort();
        std::fs::create_dir(root.join(".QFT")).unwrap();
        std::fs::write(root.join("bad\\name"), b"x").unwrap();
        let local = Local::open(root).unwrap();
        let mut listing = LocalListing::open(local.inner.clone(), None).unwrap();
        // A window far smaller than the directory: many passes, as for millions of names.
        let state = listing.state.as_mut().unwrap();
        (state.window, state.max_window) = (10, 10);
        let mut got = Vec::new();
        loop {
            let page = listing.next_page(7).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 7);
            got.extend(page.into_iter().map(|e| e.name));
            assert!(listing.state.as_ref().unwrap().ahead.len() <= 10, "bounded");
        }
        assert_eq!(
            got, want,
            "every name once, in order, nothing private or unaskable"
        );
    }
}
