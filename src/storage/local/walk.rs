//! Walking a local tree for WALK: one directory read (and sorted) at a time, through handles
//! (each directory opened relative to its parent's, never through a link), its entries handed
//! out before anything below them, links listed as what they are and never entered. What is
//! held is the directories still to read (each a name and its parent's handle, shared: one open
//! handle per level) and one directory's entries, whatever the tree's size.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::digests::Digests;
use super::manage::info;
use super::resolve::{io_error, Found, Last, Parents};
use super::{blocking, Local, PRIVATE_DIR};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, EntryKind};
use crate::storage::StorageError;

/// Deeper directories are not entered: the walk fails instead (as a client's own walk does).
pub const MAX_DEPTH: usize = 64;

/// A directory still to read: its parent's handle and its name there, its path below the walked
/// directory, and its depth.
#[derive(Debug)]
struct Pending {
    parent: Arc<OwnedFd>,
    leaf: String,
    rel: String,
    depth: usize,
}

/// A local tree being walked.
#[derive(Debug)]
pub struct LocalWalk {
    /// The digest cache, for the SHA-256 of files it knows.
    digests: Arc<Digests>,
    /// The walked directory's name ("" for the top), for errors.
    shown: String,
    /// The walked directory itself, until it is read, and whether it is the root (where the
    /// private area is never listed, however the root was reached).
    start: Option<(OwnedFd, bool)>,
    /// Directories still to read, the next last.
    pending: Vec<Pending>,
    /// Entries read and not handed out yet.
    ready: VecDeque<EntryInfo>,
}

fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Local {
    pub(in crate::storage) async fn walk(
        &self,
        dir: Option<SafeName>,
    ) -> Result<LocalWalk, StorageError> {
        let inner = self.inner.clone();
        let shown = dir.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let start = {
            let shown = shown.clone();
            blocking(shown.clone(), move || {
                let err = |e: Errno| io_error(&shown, e.into());
                let found = match &dir {
                    None => Found::Root,
                    Some(name) => inner
                        .locate(name, Last::Target, Parents::Existing)?
                        .expect("existing parents"),
                };
                match found {
                    Found::Root => {
                        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                        rustix::fs::openat(&inner.root_fd, ".", flags, Mode::empty())
                            .map(|fd| (fd, true))
                            .map_err(err)
                    }
                    Found::Entry { dir, leaf } => {
                        match rustix::fs::openat(&dir, &leaf, read_flags(), Mode::empty()) {
                            Ok(fd) => Ok((fd, false)),
                            Err(Errno::NOTDIR | Errno::LOOP) => {
                                Err(StorageError::NotADirectory(shown.clone()))
                            }
                            Err(e) => Err(err(e)),
                        }
                    }
                }
            })
            .await?
        };
        Ok(LocalWalk {
            digests: self.inner.digests.clone(),
            shown,
            start: Some(start),
            pending: Vec::new(),
            ready: VecDeque::new(),
        })
    }
}

impl LocalWalk {
    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<EntryInfo>, StorageError> {
        while self.ready.len() < max {
            let (fd, rel, depth, at_root) = match self.start.take() {
                Some((fd, at_root)) => (Some(fd), String::new(), 0, at_root),
                None => match self.pending.pop() {
                    None => break,
                    Some(p) => {
                        let shown = join(&self.shown, &p.rel);
                        if p.depth > MAX_DEPTH {
                            return Err(StorageError::Io {
                                name: shown,
                                source: std::io::Error::other(format!(
                                    "nested more than {MAX_DEPTH} directories deep"
                                )),
                            });
                        }
                        let opened = blocking(shown.clone(), move || {
                            match rustix::fs::openat(
                                &*p.parent,
                                &p.leaf,
                                read_flags(),
                                Mode::empty(),
                            ) {
                                Ok(fd) => Ok((Some(fd), p)),
                                // Removed, or swapped for a link, since it was listed: not entered.
                                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok((None, p)),
                                Err(e) => Err(io_error(&shown, e.into())),
                            }
                        })
                        .await?;
                        let (fd, p) = opened;
                        (fd, p.rel, p.depth, false)
                    }
                },
            };
            let Some(fd) = fd else { continue };
            let shown = join(&self.shown, &rel);
            let digests = self.digests.clone();
            let (entries, dirs) = blocking(shown.clone(), move || {
                read(fd, &rel, depth, at_root, &digests).map_err(|e| io_error(&shown, e.into()))
            })
            .await?;
            self.ready.extend(entries);
            // Reversed, so that they are popped in name order.
            self.pending.extend(dirs.into_iter().rev());
        }
        let take = self.ready.len().min(max);
        Ok(self.ready.drain(..take).collect())
    }
}

/// Reads the open directory `fd` (`rel` below the walked one): its entries, sorted, and the
/// directories among them to read later.
fn read(
    fd: OwnedFd,
    rel: &str,
    depth: usize,
    at_root: bool,
    digests: &Digests,
) -> Result<(Vec<EntryInfo>, Vec<Pending>), Errno> {
    let mut names = Vec::new();
    for item in Dir::read_from(&fd)? {
        let item = item?;
        let Ok(name) = std::str::from_utf8(item.file_name().to_bytes()) else {
            continue; // not UTF-8: no client could ask for it
        };
        if name == "." || name == ".." {
            continue;
        }
        if at_root && name.eq_ignore_ascii_case(PRIVATE_DIR) {
            continue;
        }
        if SafeName::new(name).is_err() {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort_unstable();
    let fd = Arc::new(fd);
    let mut entries = Vec::with_capacity(names.len());
    let mut dirs = Vec::new();
    for name in names {
        // Removed meanwhile: not listed.
        let Ok(st) = rustix::fs::statat(fd.as_fd(), name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let below = join(rel, &name);
        let mut entry = info(below.clone(), &st, digests);
        match FileType::from_raw_mode(st.st_mode) {
            // Never entered, and never taken for what it names: `sync --delete` removes a
            // link, not what is behind it.
            FileType::Symlink => entry.kind = EntryKind::Other,
            FileType::Directory => dirs.push(Pending {
                parent: fd.clone(),
                leaf: name,
                rel: below,
                depth: depth + 1,
            }),
            _ => {}
        }
        entries.push(entry);
    }
    Ok((entries, dirs))
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{name}"),
    }
}
