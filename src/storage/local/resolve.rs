//! Names to open directory handles beneath the root, without a window between checking a path and
//! using it.
//!
//! Every step is taken relative to a directory handle already held, with `O_NOFOLLOW`: a symlink
//! is never followed by the kernel on our behalf, but read with `readlinkat` and walked here,
//! where `..` pops a handle we hold (and fails at the root) and an absolute target must name a
//! place under the root. Swapping a directory for a symlink at any moment can therefore only send
//! the walk somewhere else beneath the root, never out of it: what the handles name was beneath
//! the root when it was opened, and a directory moved away later takes nothing of ours with it
//! but its own entries. The caller then acts on the entry by its handle and name (`openat`,
//! `renameat`, `unlinkat`), never by a path.
//!
//! The common case (no symlink on the way) is one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! where the kernel has it; anything else it refuses (a symlink on the way, an old kernel) takes
//! the walk, which decides.
//!
//! The private area is a name at the root: a component spelled like it (in any case, for
//! filesystems where case does not matter) is refused wherever the walk stands at the root,
//! however it got there (`self -> .`, an absolute link to the root).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Component;
use std::sync::atomic::Ordering;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Inner, PRIVATE_DIR};
use crate::paths::SafeName;
use crate::storage::StorageError;

/// The most symlinks one resolution follows (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// What a name resolved to.
#[derive(Debug)]
pub(super) enum Found {
    /// An entry (which may not exist yet) in a directory beneath the root.
    Entry {
        /// The directory that holds it (an `O_PATH` handle).
        dir: OwnedFd,
        /// Its name there: one plain component.
        leaf: OsString,
    },
    /// The root itself (a link to it, followed).
    Root,
}

/// What the last component stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Last {
    /// The entry itself: a symlink is what is deleted or replaced.
    Entry,
    /// What it names: a symlink there is followed, if it stays beneath the root.
    Target,
}

/// What to do about missing directories on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parents {
    /// They must exist.
    Existing,
    /// A missing one means the entry cannot exist yet: `Ok(None)`.
    MayBeMissing,
    /// Make them (each made durable in its parent): an upload being committed.
    Create,
}

impl Inner {
    /// Resolves `name` beneath the root. `Ok(None)` only with [`Parents::MayBeMissing`].
    pub(super) fn locate(
        &self,
        name: &SafeName,
        last: Last,
        parents: Parents,
    ) -> Result<Option<Found>, StorageError> {
        let text = name.as_str();
        let parts: Vec<&str> = name.components().collect();
        if parts.iter().any(|p| p.len() > self.name_max) {
            return Err(StorageError::NameTooLong {
                name: text.to_owned(),
                max: self.name_max,
            });
        }
        if parts[0].eq_ignore_ascii_case(PRIVATE_DIR) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        if let Some(found) = self.beneath(&parts, last, text)? {
            return Ok(Some(found));
        }
        self.walk(&parts, last, parents, text)
    }

    /// The fast path: the parent directory in one `openat2` that refuses any symlink and
    /// anything not beneath the root; `None` whenever the walk has to decide.
    fn beneath(
        &self,
        parts: &[&str],
        last: Last,
        text: &str,
    ) -> Result<Option<Found>, StorageError> {
        let (leaf, dirs) = parts.split_last().expect("a name has a component");
        let (dir, at_root) = if dirs.is_empty() {
            (self.dup_root(text)?, true)
        } else {
            if !self.openat2.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let path = dirs.join("/");
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            match rustix::fs::openat2(&self.root_fd, &path, dir_flags(), Mode::empty(), resolve) {
                Ok(fd) => (fd, false),
                Err(Errno::NOSYS) => {
                    // No openat2 here (before Linux 5.6, or filtered): the walk from now on.
                    self.openat2.store(false, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(_) => return Ok(None),
            }
        };
        if at_root && leaf.eq_ignore_ascii_case(PRIVATE_DIR) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        if last == Last::Target && is_symlink(dir.as_fd(), OsStr::new(leaf)) {
            return Ok(None);
        }
        Ok(Some(Found::Entry {
            dir,
            leaf: OsString::from(leaf),
        }))
    }

    /// The walk: one component at a time from the root, each opened relative to the handle of
    /// the one before with `O_NOFOLLOW`, symlinks expanded here.
    fn walk(
        &self,
        parts: &[&str],
        last: Last,
        parents: Parents,
        text: &str,
    ) -> Result<Option<Found>, StorageError> {
        let fail = |e: Errno| io_error(text, e.into());
        // The directories entered, each with its name in the one before; empty: at the root.
        let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
        let mut todo: VecDeque<OsString> = parts.iter().map(OsString::from).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part.is_empty() || part == "." {
                continue;
            }
            if part == ".." {
                if stack.pop().is_none() {
                    return Err(StorageError::Escapes(text.to_owned()));
                }
                continue;
            }
            let at_root = stack.is_empty();
            if at_root && is_private(&part) {
                return Err(StorageError::Reserved(text.to_owned()));
            }
            if part.len() > self.name_max {
                return Err(StorageError::NameTooLong {
                    name: text.to_owned(),
                    max: self.name_max,
                });
            }
            let here = stack
                .last()
                .map_or(self.root_fd.as_fd(), |(fd, _)| fd.as_fd());
            let is_last = todo.is_empty();
            if is_last && (last == Last::Entry || !is_symlink(here, &part)) {
                let dir = match stack.pop() {
                    Some((fd, _)) => fd,
                    None => self.dup_root(text)?,
                };
                return Ok(Some(Found::Entry { dir, leaf: part }));
            }
            if !is_last {
                match rustix::fs::openat(here, &part, dir_flags(), Mode::empty()) {
                    Ok(fd) => {
                        stack.push((fd, part));
                        continue;
                    }
                    Err(Errno::NOENT) => match parents {
                        Parents::Existing => return Err(fail(Errno::NOENT)),
                        Parents::MayBeMissing => return Ok(None),
                        Parents::Create => {
                            make_dir(here, &part).map_err(fail)?;
                            todo.push_front(part);
                            continue;
                        }
                    },
                    // A symlink (ELOOP or ENOTDIR with O_NOFOLLOW), or not a directory at all.
                    Err(Errno::LOOP | Errno::NOTDIR) if !is_symlink(here, &part) => {
                        return Err(StorageError::NotADirectory(text.to_owned()))
                    }
                    Err(Errno::LOOP | Errno::NOTDIR) => {}
                    Err(e) => return Err(fail(e)),
                }
            }
            // A symlink: its target replaces it, relative to where it is.
            links += 1;
            if links > MAX_LINKS {
                return Err(fail(Errno::LOOP));
            }
            let target = rustix::fs::readlinkat(here, &part, Vec::new()).map_err(fail)?;
            let target = OsString::from_vec(target.into_bytes());
            let rest = match self.beneath_root(&target) {
                Some(rest) => {
                    stack.clear();
                    rest
                }
                None if target.as_bytes().starts_with(b"/") => {
                    return Err(StorageError::Escapes(text.to_owned()))
                }
                None => split(&target),
            };
            for part in rest.into_iter().rev() {
                todo.push_front(part);
            }
        }
        // The walk ended on ".", ".." or a trailing "/" of a followed link: what it names is the
        // directory the walk is in.
        Ok(Some(match stack.pop() {
            None => Found::Root,
            Some((_, leaf)) => {
                let dir = match stack.pop() {
                    Some((fd, _)) => fd,
                    None => self.dup_root(text)?,
                };
                Found::Entry { dir, leaf }
            }
        }))
    }

    /// An absolute link target's components below the root, if it names a place under it.
    fn beneath_root(&self, target: &OsStr) -> Option<Vec<OsString>> {
        let path = std::path::Path::new(target);
        if !path.is_absolute() {
            return None;
        }
        let rest = path.strip_prefix(&self.root).ok()?;
        Some(
            rest.components()
                .map(|c| match c {
                    Component::ParentDir => OsString::from(".."),
                    other => other.as_os_str().to_owned(),
                })
                .collect(),
        )
    }

    /// A handle of the root of our own, for a result that outlives the borrow.
    pub(super) fn dup_root(&self, text: &str) -> Result<OwnedFd, StorageError> {
        self.root_fd
            .try_clone()
            .map_err(|e| StorageError::from_io(text, e))
    }
}

/// How directories on the way are opened: a handle to walk from, never through a symlink.
fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Whether `part` spells the private area's name (in any case).
fn is_private(part: &OsStr) -> bool {
    part.as_bytes().eq_ignore_ascii_case(PRIVATE_DIR.as_bytes())
}

/// A relative link target's components.
fn split(target: &OsStr) -> Vec<OsString> {
    target
        .as_bytes()
        .split(|b| *b == b'/')
        .map(|p| OsString::from_vec(p.to_vec()))
        .collect()
}

/// Whether the entry `name` in `dir` is a symlink (not followed).
pub(super) fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Makes the directory `name` in `dir` (already there is fine: a concurrent upload may have
/// made it a moment ago) and makes the new entry durable, or a committed file could vanish with
/// its directory in a crash.
fn make_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777)) {
        Ok(()) => sync_dir(dir),
        Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsyncs the directory `dir` (any handle to it, `O_PATH` included) so that an entry made,
/// renamed or removed in it survives a crash.
pub(super) fn sync_dir(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let open = rustix::fs::openat(dir, ".", flags, Mode::empty())?;
    rustix::fs::fsync(&open)
}

/// Classifies an io error on the client's name `text`, with what only this backend knows.
pub(super) fn io_error(text: &str, e: io::Error) -> StorageError {
    if e.raw_os_error() == Some(Errno::NAMETOOLONG.raw_os_error()) {
        return StorageError::NameTooLong {
            name: text.to_owned(),
            max: 255,
        };
    }
    StorageError::from_io(text, e)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::protocol::ErrorCode;
    use crate::storage::local::Local;

    /// A root with links of every kind, and a directory outside it.
    fn tree() -> (tempfile::TempDir, Local) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(root.join("a/b/file"), b"inside").unwrap();
        let local = Local::open(&root).unwrap();
        let root = local.root().to_path_buf();
        symlink("a/b", root.join("rel")).unwrap();
        symlink(root.join("a"), root.join("abs")).unwrap();
        symlink(tmp.path().join("outside"), root.join("out")).unwrap();
        symlink(".", root.join("self")).unwrap();
        symlink("..", root.join("a/up")).unwrap();
        symlink("../..", root.join("a/esc")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        (tmp, local)
    }

    fn locate(
        local: &Local,
        name: &str,
        last: Last,
        parents: Parents,
    ) -> Result<Option<Found>, StorageError> {
        local
            .inner
            .locate(&SafeName::new(name).unwrap(), last, parents)
    }

    /// The leaf an entry resolved to, or the error's wire code.
    fn leaf(local: &Local, name: &str, last: Last) -> Result<String, ErrorCode> {
        match locate(local, name, last, Parents::Existing) {
            Ok(Some(Found::Entry { leaf, .. })) => Ok(leaf.to_string_lossy().into_owned()),
            Ok(Some(Found::Root)) => Ok("<root>".into()),
            Ok(None) => Ok("<missing>".into()),
            Err(e) => Err(e.code()),
        }
    }

    #[test]
    fn links_are_followed_beneath_the_root_only_and_never_into_the_private_area() {
        let (_tmp, local) = tree();
        // The same answers from openat2 and from the walk alone.
        for openat2 in [true, false] {
            local.inner.openat2.store(openat2, Ordering::Relaxed);
            let target = |name| leaf(&local, name, Last::Target);
            assert_eq!(target("a/b/file"), Ok("file".into()));
            assert_eq!(target("rel/file"), Ok("file".into()), "a relative link");
            assert_eq!(
                target("abs/b/file"),
                Ok("file".into()),
                "an absolute one inside"
            );
            assert_eq!(target("abs"), Ok("a".into()));
            assert_eq!(target("self"), Ok("<root>".into()));
            assert_eq!(target("a/up"), Ok("<root>".into()));
            assert_eq!(target("out/x"), Err(ErrorCode::InvalidName), "outside");
            assert_eq!(target("out"), Err(ErrorCode::InvalidName));
            assert_eq!(
                target("a/esc/x"),
                Err(ErrorCode::InvalidName),
                ".. past the root"
            );
            for private in ["self/.qft/tmp", "self/.QFT", "a/up/.qft/x", ".Qft/tmp"] {
                assert_eq!(target(private), Err(ErrorCode::InvalidName), "{private}");
            }
            assert_eq!(target("loop1/x"), Err(ErrorCode::Internal), "a loop ends");
            assert_eq!(target("a/b/file/x"), Err(ErrorCode::NotADirectory));
            assert_eq!(target("nothing/x"), Err(ErrorCode::NotFound));
            // The entry itself: a link is what is acted on, wherever it points.
            assert_eq!(leaf(&local, "out", Last::Entry), Ok("out".into()));
            assert_eq!(leaf(&local, "rel", Last::Entry), Ok("rel".into()));
            let long = format!("a/{}", "x".repeat(300));
            assert_eq!(target(&long), Err(ErrorCode::InvalidName), "NAME_MAX");
        }
    }

    #[test]
    fn missing_directories_are_made_only_when_asked() {
        let (_tmp, local) = tree();
        let root = local.root().to_path_buf();
        let maybe = locate(&local, "new/dir/f", Last::Entry, Parents::MayBeMissing).unwrap();
        assert!(maybe.is_none());
        assert!(!root.join("new").exists(), "nothing made on a look");
        let made = locate(&local, "new/dir/f", Last::Entry, Parents::Create).unwrap();
        assert!(matches!(made, Some(Found::Entry { leaf, .. }) if leaf == "f"));
        assert!(root.join("new/dir").is_dir());
        // Through a link that stays inside, the directory is made where it leads.
        locate(&local, "rel/more/f", Last::Entry, Parents::Create).unwrap();
        assert!(root.join("a/b/more").is_dir());
        assert_eq!(
            locate(&local, "out/more/f", Last::Entry, Parents::Create)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidName
        );
        assert!(!_tmp.path().join("outside/more").exists());
    }
}
