//! Walking a local tree for WALK: one directory read (and sorted) at a time, its entries handed
//! out before anything below them, links listed as what they are and never entered. Memory is
//! the directories waiting to be read and one directory's entries, whatever the tree's size.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use super::manage::info;
use super::{blocking, Inner, Local};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, EntryKind};
use crate::storage::StorageError;

/// Deeper directories are not entered: the walk fails instead (as a client's own walk does).
pub const MAX_DEPTH: usize = 64;

/// A local tree being walked.
#[derive(Debug)]
pub struct LocalWalk {
    inner: Arc<Inner>,
    /// The walked directory's name ("" for the top), for errors.
    shown: String,
    /// Directories still to read: real path, name below the walked one, depth.
    pending: Vec<(PathBuf, String, usize)>,
    /// Entries read and not handed out yet.
    ready: VecDeque<EntryInfo>,
}

impl Local {
    pub(in crate::storage) async fn walk(
        &self,
        dir: Option<SafeName>,
    ) -> Result<LocalWalk, StorageError> {
        let inner = self.inner.clone();
        let shown = dir.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let start = {
            let inner = inner.clone();
            blocking(shown.clone(), move || {
                let Some(dir) = dir else {
                    return Ok(inner.root.clone());
                };
                inner.refuse_private(&dir)?;
                let path = inner.resolve(&dir)?;
                let meta =
                    std::fs::metadata(&path).map_err(|e| StorageError::from_io(dir.as_str(), e))?;
                if !meta.is_dir() {
                    return Err(StorageError::NotADirectory(dir.to_string()));
                }
                Ok(path)
            })
            .await?
        };
        Ok(LocalWalk {
            inner,
            shown,
            pending: vec![(start, String::new(), 0)],
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
            let Some((path, rel, depth)) = self.pending.pop() else {
                break;
            };
            let inner = self.inner.clone();
            let shown = self.shown.clone();
            let (entries, dirs) = blocking(shown.clone(), move || {
                read(&inner, &path, &rel, depth, &shown)
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

/// Directories found in one read: real path, name below the walked one, depth.
type Found = Vec<(PathBuf, String, usize)>;

/// Reads the real directory `path` (`rel` below the walked one): its entries, sorted, and the
/// directories among them to read later.
fn read(
    inner: &Inner,
    path: &std::path::Path,
    rel: &str,
    depth: usize,
    shown: &str,
) -> Result<(Vec<EntryInfo>, Found), StorageError> {
    let failed = |e| StorageError::from_io(&join(shown, rel), e);
    if depth > MAX_DEPTH {
        return Err(StorageError::Io {
            name: join(shown, rel),
            source: std::io::Error::other(format!("nested more than {MAX_DEPTH} directories deep")),
        });
    }
    let mut names = Vec::new();
    for item in std::fs::read_dir(path).map_err(failed)? {
        let item = item.map_err(failed)?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if inner.is_private(path, &name) || SafeName::new(&name).is_err() {
            continue;
        }
        names.push(name);
    }
    names.sort_unstable();
    let mut entries = Vec::with_capacity(names.len());
    let mut dirs = Vec::new();
    for name in names {
        let child = path.join(&name);
        // Removed meanwhile: not listed.
        let Ok(meta) = std::fs::symlink_metadata(&child) else {
            continue;
        };
        let below = join(rel, &name);
        let mut entry = info(below.clone(), &meta);
        if meta.file_type().is_symlink() {
            // Never entered, and never taken for what it names: `sync --delete` removes a link,
            // not what is behind it.
            entry.kind = EntryKind::Other;
            entry.size = 0;
        } else if meta.is_dir() {
            dirs.push((child, below, depth + 1));
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
