//! Managing names in the local directory: make and remove directories, rename, describe, delete
//! a tree. Every name is resolved as uploads and deletes resolve theirs (`resolve`: beneath the
//! root, relative to directory handles, out of the private area), then acted on by its
//! directory handle and leaf (`mkdirat`, `unlinkat`, `renameat2`): a link is acted on, never
//! followed, and a directory swapped for a link meanwhile cannot lead outside.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use super::digests::{Digests, Stamp};
use super::resolve::{io_error, sync_dir, Found, Last, Parents};
use super::{blocking, Inner, Local};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, EntryKind, FileMeta, PERMISSION_BITS};
use crate::storage::StorageError;

impl Local {
    pub(in crate::storage) async fn make_dir(
        &self,
        name: SafeName,
        parents: bool,
    ) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.make_dir(&name, parents)).await
    }

    pub(in crate::storage) async fn remove_dir(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.remove_dir(&name)).await
    }

    pub(in crate::storage) async fn rename(
        &self,
        from: SafeName,
        to: SafeName,
    ) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        blocking(from.to_string(), move || inner.rename(&from, &to)).await
    }

    pub(in crate::storage) async fn stat(&self, name: SafeName) -> Result<EntryInfo, StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.stat(&name)).await
    }

    pub(in crate::storage) async fn delete_tree(
        &self,
        name: SafeName,
    ) -> Result<u64, StorageError> {
        let inner = self.inner.clone();
        blocking(name.to_string(), move || inner.delete_tree(&name)).await
    }
}

impl Inner {
    /// The entry `name` itself (a link is not followed), in its directory, which must exist.
    fn entry(&self, name: &SafeName) -> Result<(OwnedFd, std::ffi::OsString), StorageError> {
        match self.locate(name, Last::Entry, Parents::Existing)? {
            Some(Found::Entry { dir, leaf }) => Ok((dir, leaf)),
            _ => Err(StorageError::Reserved(name.to_string())),
        }
    }

    fn make_dir(&self, name: &SafeName, parents: bool) -> Result<(), StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let how = if parents {
            Parents::Create
        } else {
            Parents::Existing
        };
        let (dir, leaf) = match self.locate(name, Last::Entry, how)? {
            Some(Found::Entry { dir, leaf }) => (dir, leaf),
            _ if parents => return Ok(()),
            _ => return Err(StorageError::Exists(text.to_owned())),
        };
        match rustix::fs::mkdirat(&dir, &leaf, Mode::from_raw_mode(0o777)) {
            Ok(()) => sync_dir(dir.as_fd()).map_err(err),
            Err(Errno::EXIST) => {
                let st = rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
                match (parents, FileType::from_raw_mode(st.st_mode)) {
                    (true, FileType::Directory) => Ok(()),
                    (true, _) => Err(StorageError::NotADirectory(text.to_owned())),
                    (false, _) => Err(StorageError::Exists(text.to_owned())),
                }
            }
            Err(e) => Err(err(e)),
        }
    }

    fn remove_dir(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let (dir, leaf) = self.entry(name)?;
        let st = rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(StorageError::NotADirectory(text.to_owned()));
        }
        match rustix::fs::unlinkat(&dir, &leaf, AtFlags::REMOVEDIR) {
            Ok(()) => sync_dir(dir.as_fd()).map_err(err),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(StorageError::NotEmpty(text.to_owned())),
            Err(e) => Err(err(e)),
        }
    }

    fn rename(&self, from: &SafeName, to: &SafeName) -> Result<(), StorageError> {
        let text = from.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let (source, source_leaf) = self.entry(from)?;
        rustix::fs::statat(&source, &source_leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        let (target, target_leaf) = match self.locate(to, Last::Entry, Parents::Existing) {
            Ok(Some(Found::Entry { dir, leaf })) => (dir, leaf),
            Ok(_) => return Err(StorageError::Exists(to.to_string())),
            // What is missing is the directory the new name goes in.
            Err(StorageError::NotFound(_)) => return Err(StorageError::NotFound(parent(to))),
            Err(e) => return Err(e),
        };
        let into_itself =
            || StorageError::BadRename(text.to_owned(), "a directory cannot move into itself");
        let flags = RenameFlags::NOREPLACE;
        match rustix::fs::renameat_with(&source, &source_leaf, &target, &target_leaf, flags) {
            Ok(()) => {}
            Err(Errno::EXIST | Errno::NOTEMPTY) => {
                return Err(StorageError::Exists(to.to_string()))
            }
            Err(Errno::INVAL) if to.as_str().starts_with(&format!("{text}/")) => {
                return Err(into_itself())
            }
            // A filesystem without RENAME_NOREPLACE: look, then rename (a replace is possible
            // only in the moment between the two).
            Err(Errno::INVAL | Errno::NOSYS) => {
                let flags = AtFlags::SYMLINK_NOFOLLOW;
                if rustix::fs::statat(&target, &target_leaf, flags).is_ok() {
                    return Err(StorageError::Exists(to.to_string()));
                }
                match rustix::fs::renameat(&source, &source_leaf, &target, &target_leaf) {
                    Ok(()) => {}
                    Err(Errno::INVAL) => return Err(into_itself()),
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
        sync_dir(target.as_fd()).map_err(err)?;
        sync_dir(source.as_fd()).map_err(err)
    }

    fn stat(&self, name: &SafeName) -> Result<EntryInfo, StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        // A link is described by what it names, as a listing does, if that stays inside;
        // otherwise as what it is.
        let st = match self.locate(name, Last::Target, Parents::Existing) {
            Ok(Some(Found::Root)) => rustix::fs::fstat(&self.root_fd).map_err(err)?,
            Ok(Some(Found::Entry { dir, leaf })) => {
                rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?
            }
            Ok(None) => return Err(StorageError::NotFound(text.to_owned())),
            Err(StorageError::Escapes(_)) => {
                let (dir, leaf) = self.entry(name)?;
                rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?
            }
            Err(e) => return Err(e),
        };
        Ok(info(text.to_owned(), &st, &self.digests))
    }

    /// Removes `name` and everything below it, counting files; a link is removed as itself.
    fn delete_tree(&self, name: &SafeName) -> Result<u64, StorageError> {
        let text = name.as_str();
        let err = |e: Errno| io_error(text, e.into());
        let (dir, leaf) = self.entry(name)?;
        let st = rustix::fs::statat(&dir, &leaf, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
        let files = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let files = remove_below(dir.as_fd(), &leaf, 0).map_err(err)?;
            rustix::fs::unlinkat(&dir, &leaf, AtFlags::REMOVEDIR).map_err(err)?;
            files
        } else {
            rustix::fs::unlinkat(&dir, &leaf, AtFlags::empty()).map_err(err)?;
            1
        };
        sync_dir(dir.as_fd()).map_err(err)?;
        Ok(files)
    }
}

/// Deepest a deleted tree goes: a deeper one fails before its deepest part goes.
const MAX_DEPTH: usize = 256;

/// Removes everything in the directory `name` of `parent` (opened without following a link),
/// each entry by its handle: a link is unlinked, never followed. Returns the files removed.
fn remove_below(parent: BorrowedFd<'_>, name: &OsStr, depth: usize) -> Result<u64, Errno> {
    if depth > MAX_DEPTH {
        return Err(Errno::LOOP);
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    let mut names = Vec::new();
    for item in Dir::read_from(&fd)? {
        let item = item?;
        let leaf = item.file_name().to_bytes();
        if leaf != b"." && leaf != b".." {
            names.push(std::ffi::OsString::from(
                <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(leaf),
            ));
        }
    }
    let mut files = 0;
    for leaf in names {
        let st = rustix::fs::statat(&fd, &leaf, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            files += remove_below(fd.as_fd(), &leaf, depth + 1)?;
            rustix::fs::unlinkat(&fd, &leaf, AtFlags::REMOVEDIR)?;
        } else {
            rustix::fs::unlinkat(&fd, &leaf, AtFlags::empty())?;
            files += 1;
        }
    }
    Ok(files)
}

/// `name`'s directory, for a "does not exist" about it.
fn parent(name: &SafeName) -> String {
    name.as_str()
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| dir.to_owned())
}

/// What a STAT or a WALK says of an entry that `stat` describes; the SHA-256 where the digest
/// cache knows this very version of the file.
pub(super) fn info(name: String, st: &Stat, digests: &Digests) -> EntryInfo {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        _ => EntryKind::Other,
    };
    EntryInfo {
        name,
        kind,
        size: if kind == EntryKind::File {
            st.st_size as u64
        } else {
            0
        },
        modified: u64::try_from(st.st_mtime).ok(),
        mode: (kind != EntryKind::Other).then_some(st.st_mode & PERMISSION_BITS),
        sha256: match kind {
            EntryKind::File => digests.get(&Stamp::of_stat(st)),
            _ => None,
        },
    }
}

/// Gives the open file `file` the permission bits of `meta` (never more than
/// [`PERMISSION_BITS`]).
pub(super) fn apply_mode(file: &std::fs::File, meta: &FileMeta) -> io::Result<()> {
    if let Some(mode) = meta.mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode & PERMISSION_BITS))?;
    }
    Ok(())
}

/// Gives the open file `file` the modification time of `meta`.
pub(super) fn apply_time(file: &std::fs::File, meta: &FileMeta) -> io::Result<()> {
    if let Some(secs) = meta.modified {
        if let Some(when) = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
        {
            file.set_modified(when)?;
        }
    }
    Ok(())
}
