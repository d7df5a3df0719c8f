//! Names to paths under the root: the parent is canonicalized and must lie under the canonical
//! root (compared by components, not as strings) and outside the private area. Reads follow a
//! final symlink only if it stays inside; deletes and uploads act on the entry itself, so deleting
//! a link never deletes what it names.

use std::io;
use std::path::{Path, PathBuf};

use super::{Inner, PRIVATE_DIR};
use crate::fsutil::sync_dir;
use crate::paths::SafeName;
use crate::storage::StorageError;

impl Inner {
    /// The real path of the entry `name`: its parent canonicalized and checked to lie under the
    /// root, outside the private area, joined with the last component (not followed).
    pub(super) fn resolve_entry(&self, name: &SafeName) -> Result<PathBuf, StorageError> {
        let text = name.as_str();
        let lexical = name.under(&self.root);
        let parent = lexical.parent().unwrap_or(&self.root);
        let real_parent = parent
            .canonicalize()
            .map_err(|e| StorageError::from_io(text, e))?;
        if !real_parent.starts_with(&self.root) {
            return Err(StorageError::Escapes(text.to_owned()));
        }
        let path = real_parent.join(name.file_name());
        if self.is_private(&real_parent, name.file_name()) || path.starts_with(&self.private) {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        Ok(path)
    }

    /// Like [`Self::resolve_entry`], but a final symlink is followed if it stays under the root
    /// and out of the private area: what reading and listing act on.
    pub(super) fn resolve(&self, name: &SafeName) -> Result<PathBuf, StorageError> {
        let text = name.as_str();
        let path = self.resolve_entry(name)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = path
                    .canonicalize()
                    .map_err(|e| StorageError::from_io(text, e))?;
                if !target.starts_with(&self.root) || target.starts_with(&self.private) {
                    return Err(StorageError::Escapes(text.to_owned()));
                }
                Ok(target)
            }
            _ => Ok(path),
        }
    }

    /// Whether `part` inside the real directory `dir` names the private area; case-insensitively,
    /// because on such filesystems ".QFT" is the same directory.
    pub(super) fn is_private(&self, dir: &Path, part: &str) -> bool {
        dir == self.root && part.eq_ignore_ascii_case(PRIVATE_DIR)
    }

    /// Creates the missing directories of `name`'s parent, one plain component at a time, each
    /// checked to stay under the root and out of the private area, each made durable.
    pub(super) fn create_parents(&self, name: &SafeName) -> Result<(), StorageError> {
        let text = name.as_str();
        let parts: Vec<&str> = name.components().collect();
        let mut dir = self.root.clone();
        for part in &parts[..parts.len() - 1] {
            if self.is_private(&dir, part) {
                return Err(StorageError::Reserved(text.to_owned()));
            }
            let path = dir.join(part);
            match std::fs::create_dir(&path) {
                // The new entry must reach the disk too, or a committed file could vanish with it.
                Ok(()) => sync_dir(&dir).map_err(|e| StorageError::from_io(text, e))?,
                // Already there (perhaps made a moment ago by a concurrent upload): checked below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::from_io(text, e)),
            }
            let real = path
                .canonicalize()
                .map_err(|e| StorageError::from_io(text, e))?;
            if !real.starts_with(&self.root) {
                return Err(StorageError::Escapes(text.to_owned()));
            }
            if real.starts_with(&self.private) {
                return Err(StorageError::Reserved(text.to_owned()));
            }
            if !real.is_dir() {
                return Err(StorageError::NotADirectory(text.to_owned()));
            }
            dir = real;
        }
        Ok(())
    }
}
