//! Managing names in the local directory: make and remove directories, rename, describe, delete
//! a tree. Every name is resolved as uploads and deletes resolve theirs (`resolve`): the entry
//! itself, under the root, out of the private area; a link is acted on, never followed.

use std::io;
use std::path::Path;

use super::{blocking, Inner, Local, PRIVATE_DIR};
use crate::fsutil::{rename_noclobber, sync_dir};
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
    /// The private area in any case, refused before anything is looked at (on a filesystem
    /// where case matters `.QFT` is not it, but it is refused all the same, as uploads do).
    pub(super) fn refuse_private(&self, name: &SafeName) -> Result<(), StorageError> {
        let first = name.components().next().unwrap_or_default();
        match first.eq_ignore_ascii_case(PRIVATE_DIR) {
            true => Err(StorageError::Reserved(name.to_string())),
            false => Ok(()),
        }
    }

    fn make_dir(&self, name: &SafeName, parents: bool) -> Result<(), StorageError> {
        let text = name.as_str();
        self.refuse_private(name)?;
        if parents {
            self.create_parents(name)?;
        }
        let path = self.resolve_entry(name)?;
        match std::fs::create_dir(&path) {
            Ok(()) => sync_parent(&path, text),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                match (parents, is_dir) {
                    (true, true) => Ok(()),
                    (true, false) => Err(StorageError::NotADirectory(text.to_owned())),
                    (false, _) => Err(StorageError::Exists(text.to_owned())),
                }
            }
            Err(e) => Err(StorageError::from_io(text, e)),
        }
    }

    fn remove_dir(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        self.refuse_private(name)?;
        let path = self.resolve_entry(name)?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| StorageError::from_io(text, e))?;
        if !meta.is_dir() {
            return Err(StorageError::NotADirectory(text.to_owned()));
        }
        std::fs::remove_dir(&path).map_err(|e| StorageError::from_io(text, e))?;
        sync_parent(&path, text)
    }

    fn rename(&self, from: &SafeName, to: &SafeName) -> Result<(), StorageError> {
        let text = from.as_str();
        self.refuse_private(from)?;
        self.refuse_private(to)?;
        let source = self.resolve_entry(from)?;
        let target = self.resolve_entry(to)?;
        std::fs::symlink_metadata(&source).map_err(|e| StorageError::from_io(text, e))?;
        if target.starts_with(&source) {
            return Err(StorageError::BadRename(
                text.to_owned(),
                "a directory cannot move into itself",
            ));
        }
        match rename_noclobber(&source, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Exists(to.to_string()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The source was checked above: what is missing is the target's directory.
                return Err(match std::fs::symlink_metadata(&source) {
                    Ok(_) => StorageError::NotFound(parent_name(to)),
                    Err(_) => StorageError::NotFound(text.to_owned()),
                });
            }
            Err(e) => return Err(StorageError::from_io(text, e)),
        }
        sync_parent(&target, text)?;
        if source.parent() != target.parent() {
            sync_parent(&source, text)?;
        }
        Ok(())
    }

    fn stat(&self, name: &SafeName) -> Result<EntryInfo, StorageError> {
        let text = name.as_str();
        self.refuse_private(name)?;
        let path = self.resolve_entry(name)?;
        let own = std::fs::symlink_metadata(&path).map_err(|e| StorageError::from_io(text, e))?;
        // A link is described by what it names, as a listing does, if that stays inside.
        let meta = if own.file_type().is_symlink() {
            match self.resolve(name) {
                Ok(target) => std::fs::metadata(target).unwrap_or(own),
                Err(_) => own,
            }
        } else {
            own
        };
        Ok(info(text.to_owned(), &meta))
    }

    /// Removes `name` and everything below it, counting files; a link is removed as itself.
    fn delete_tree(&self, name: &SafeName) -> Result<u64, StorageError> {
        let text = name.as_str();
        self.refuse_private(name)?;
        let path = self.resolve_entry(name)?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| StorageError::from_io(text, e))?;
        let files = if meta.is_dir() {
            remove_tree(&path, 0).map_err(|e| StorageError::from_io(text, e))?
        } else {
            std::fs::remove_file(&path).map_err(|e| StorageError::from_io(text, e))?;
            1
        };
        sync_parent(&path, text)?;
        Ok(files)
    }
}

/// Deepest a deleted tree goes, as for walks: a deeper one is refused before anything goes.
const MAX_DEPTH: usize = 256;

/// Removes the real directory `dir` and what it holds, never following a link (each entry is
/// looked at with `symlink_metadata`, and a link is unlinked). Returns the files removed.
fn remove_tree(dir: &Path, depth: usize) -> io::Result<u64> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("the tree is too deep to delete"));
    }
    let mut files = 0;
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        // DirEntry::file_type does not follow links.
        if item.file_type()?.is_dir() {
            files += remove_tree(&path, depth + 1)?;
        } else {
            std::fs::remove_file(&path)?;
            files += 1;
        }
    }
    std::fs::remove_dir(dir)?;
    Ok(files)
}

/// `name`'s directory, for a "does not exist" about it.
fn parent_name(name: &SafeName) -> String {
    name.as_str()
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| dir.to_owned())
}

fn sync_parent(path: &Path, name: &str) -> Result<(), StorageError> {
    match path.parent() {
        Some(parent) => sync_dir(parent).map_err(|e| StorageError::from_io(name, e)),
        None => Ok(()),
    }
}

/// What a STAT or a WALK says of an entry with metadata `meta` (the entry's own, or a link's
/// target's).
pub(super) fn info(name: String, meta: &std::fs::Metadata) -> EntryInfo {
    let entry = crate::fsutil::entry(name, meta);
    #[cfg(unix)]
    let mode = Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & PERMISSION_BITS);
    #[cfg(not(unix))]
    let mode = None;
    EntryInfo {
        name: entry.name,
        kind: entry.kind,
        size: entry.size,
        modified: entry.modified,
        mode: if entry.kind == EntryKind::Other {
            None
        } else {
            mode
        },
        // Not known without reading the file: no digest is kept for local files yet.
        sha256: None,
    }
}

/// Gives the open file `file` the permission bits of `meta` (never more than
/// [`PERMISSION_BITS`]).
pub(super) fn apply_mode(file: &std::fs::File, meta: &FileMeta) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(mode) = meta.mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode & PERMISSION_BITS))?;
    }
    #[cfg(not(unix))]
    let _ = (file, meta);
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
