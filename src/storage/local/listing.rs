//! Listing a local directory page by page: the names are read and sorted once (a name is all a
//! listing holds for an entry not yet sent), and each page's entries are looked at only when the
//! page is asked for.

use std::path::PathBuf;
use std::sync::Arc;

use super::{blocking, Inner};
use crate::paths::SafeName;
use crate::protocol::Entry;
use crate::storage::StorageError;

/// A local directory being listed.
#[derive(Debug)]
pub struct LocalListing {
    inner: Arc<Inner>,
    /// The directory's real path.
    dir: PathBuf,
    /// The client's name for it ("" for the root), for errors.
    shown: String,
    /// Names still to list, in reverse order (the next is last).
    names: Vec<String>,
}

impl LocalListing {
    /// Reads the names in `dir` (`None`: the root), without the private area and without names
    /// no client could ask for.
    pub(super) fn open(inner: Arc<Inner>, dir: Option<&SafeName>) -> Result<Self, StorageError> {
        let (path, shown) = match dir {
            None => (inner.root.clone(), ""),
            Some(name) => (inner.resolve(name)?, name.as_str()),
        };
        let read = std::fs::read_dir(&path).map_err(|e| StorageError::from_io(shown, e))?;
        let mut names = Vec::new();
        for item in read {
            let item = item.map_err(|e| StorageError::from_io(shown, e))?;
            let Ok(name) = item.file_name().into_string() else {
                tracing::debug!("not listing a name that is not UTF-8");
                continue;
            };
            if inner.is_private(&path, &name) {
                continue;
            }
            if SafeName::new(&name).is_err() {
                // A name no client could ask for (a newline, a backslash) is not offered either.
                tracing::debug!("not listing {:?}", crate::paths::sanitize(&name));
                continue;
            }
            names.push(name);
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(LocalListing {
            inner,
            dir: path,
            shown: shown.to_owned(),
            names,
        })
    }

    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let take = self.names.len().min(max);
        let page: Vec<String> = self.names.split_off(self.names.len() - take);
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let (inner, dir) = (self.inner.clone(), self.dir.clone());
        blocking(self.shown.clone(), move || {
            Ok(page
                .into_iter()
                .rev()
                .filter_map(|name| inner.describe(&dir, name))
                .collect())
        })
        .await
    }
}

impl Inner {
    /// The entry `name` in the real directory `dir`; `None` if it was removed meanwhile. A link
    /// is described by its target only if that stays inside; otherwise as "other".
    fn describe(&self, dir: &std::path::Path, name: String) -> Option<Entry> {
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let meta = if meta.file_type().is_symlink() {
            match path.canonicalize() {
                Ok(t) if t.starts_with(&self.root) && !t.starts_with(&self.private) => {
                    std::fs::metadata(&t).unwrap_or(meta)
                }
                _ => meta,
            }
        } else {
            meta
        };
        Some(crate::fsutil::entry(name, &meta))
    }
}
