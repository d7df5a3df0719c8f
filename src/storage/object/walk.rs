//! Walking a tree of an object store for WALK: one recursive listing of the directory's prefix
//! (the store pages it; one page is held at a time), directories inferred from the keys (each
//! handed out just before its first entry, so parents come before children), markers hidden,
//! keys object_store cannot take skipped ([`super::pages`]), and a HEAD per file for what it
//! keeps ([`super::meta`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::manage::MARKER;
use super::meta::{kept, shown_time, HEADS_AT_ONCE};
use super::pages::Pager;
use super::{from_store, Inner, Object};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, EntryKind};
use crate::storage::{StorageError, PRIVATE_DIR};

/// A tree of an object store being walked.
pub struct ObjectWalk {
    inner: Arc<Inner>,
    /// The walked directory's prefix, ending in `/` (empty: the whole served prefix).
    prefix: String,
    /// The walked directory's name ("" for the top), for errors.
    shown: String,
    /// The store's pages of keys (skipping keys object_store cannot take, see `pages`), and the
    /// keys of the page being read; a store without pages is listed by object_store's stream.
    pager: Option<Pager>,
    pending: VecDeque<ObjectMeta>,
    keys: Option<BoxStream<'static, object_store::Result<ObjectMeta>>>,
    /// Directories already handed out (by their path below the walked one).
    dirs: HashSet<String>,
    /// Entries ready, in order.
    ready: VecDeque<EntryInfo>,
    done: bool,
}

impl std::fmt::Debug for ObjectWalk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWalk")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Object {
    pub(in crate::storage) async fn walk(
        &self,
        dir: Option<SafeName>,
    ) -> Result<ObjectWalk, StorageError> {
        let inner = self.inner.clone();
        let (path, shown) = match &dir {
            None => (inner.prefix_path(), String::new()),
            Some(name) => (Some(inner.key(name)?), name.to_string()),
        };
        let prefix = path.as_ref().map(|p| format!("{p}/")).unwrap_or_default();
        let (pager, keys) = match inner.store.pages.is_some() {
            true => (Some(Pager::new(prefix.clone(), false)), None),
            false => (None, Some(inner.store.objects.list(path.as_ref()))),
        };
        let mut walk = ObjectWalk {
            inner,
            prefix,
            shown,
            pager,
            pending: VecDeque::new(),
            keys,
            dirs: HashSet::new(),
            ready: VecDeque::new(),
            done: false,
        };
        // A directory with nothing below it does not exist (or is a file).
        let seen = walk.fetch(1).await?;
        if seen == 0 {
            if let Some(name) = &dir {
                let key = walk.inner.key(name)?;
                return Err(match walk.inner.store.objects.head(&key).await {
                    Ok(_) => StorageError::NotADirectory(name.to_string()),
                    Err(_) => StorageError::NotFound(name.to_string()),
                });
            }
        }
        Ok(walk)
    }
}

impl ObjectWalk {
    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<EntryInfo>, StorageError> {
        while self.ready.len() < max && !self.done {
            self.fetch(max).await?;
        }
        let take = self.ready.len().min(max);
        Ok(self.ready.drain(..take).collect())
    }

    /// The next key below the walked directory, in key order; `None` at the end.
    async fn next_key(&mut self) -> Result<Option<ObjectMeta>, StorageError> {
        loop {
            if let Some(meta) = self.pending.pop_front() {
                return Ok(Some(meta));
            }
            let store = &self.inner.store;
            match (&store.pages, &mut self.pager, &mut self.keys) {
                (Some(pages), Some(pager), _) => {
                    if pager.done() {
                        return Ok(None);
                    }
                    let page = pager.next(pages.as_ref()).await;
                    if let Some((_, objects)) = page.map_err(|e| from_store(&self.shown, e))? {
                        self.pending.extend(objects);
                    }
                }
                (_, _, Some(keys)) => {
                    return keys
                        .next()
                        .await
                        .transpose()
                        .map_err(|e| from_store(&self.shown, e))
                }
                _ => return Ok(None),
            }
        }
    }

    /// Reads up to `want` keys into `ready` (with the directories they imply); returns how many
    /// keys the store gave, listed or not.
    async fn fetch(&mut self, want: usize) -> Result<usize, StorageError> {
        let mut files = Vec::new();
        let mut seen = 0;
        while seen < want.max(1) {
            match self.next_key().await? {
                None => {
                    self.done = true;
                    break;
                }
                Some(meta) => {
                    seen += 1;
                    let Some(rel) = meta.location.as_ref().strip_prefix(&self.prefix) else {
                        continue;
                    };
                    let parts: Vec<&str> = rel.split('/').collect();
                    // The private area (at the top), and keys no client could name.
                    let (last, dirs) = parts.split_last().expect("split gives one at least");
                    if dirs.iter().any(|d| d.eq_ignore_ascii_case(PRIVATE_DIR))
                        || (dirs.is_empty()
                            && self.shown.is_empty()
                            && last.eq_ignore_ascii_case(PRIVATE_DIR))
                        || SafeName::new(rel).is_err()
                    {
                        continue;
                    }
                    // Each directory on the way, once, before anything in it.
                    for depth in 1..parts.len() {
                        let dir = parts[..depth].join("/");
                        if !self.dirs.contains(&dir) {
                            self.dirs.insert(dir.clone());
                            files.push((dir, None));
                        }
                    }
                    if !last.eq_ignore_ascii_case(MARKER) {
                        files.push((rel.to_owned(), Some(meta)));
                    }
                }
            }
        }
        let store = self.inner.store.objects.clone();
        let described: Vec<EntryInfo> = futures_util::stream::iter(files)
            .map(|(name, meta)| {
                let store = store.clone();
                async move {
                    let Some(meta) = meta else {
                        return EntryInfo {
                            name,
                            kind: EntryKind::Dir,
                            size: 0,
                            modified: None,
                            mode: None,
                            sha256: None,
                        };
                    };
                    let kept = kept(store.as_ref(), &meta.location)
                        .await
                        .map(|(_, k)| k)
                        .unwrap_or_default();
                    EntryInfo {
                        name,
                        kind: EntryKind::File,
                        size: meta.size,
                        modified: shown_time(&meta, &kept),
                        mode: kept.mode,
                        sha256: kept.sha256,
                    }
                }
            })
            .buffered(HEADS_AT_ONCE)
            .collect()
            .await;
        self.ready.extend(described);
        Ok(seen)
    }
}
