//! Listing a directory (a key prefix) a page of the store at a time: one delimiter listing
//! request per page of up to [`STORE_PAGE`] keys, so a prefix of millions of objects costs
//! one page of memory, whatever the client reads.

use std::collections::VecDeque;
use std::sync::Arc;

use object_store::list::PaginatedListOptions;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::{from_store, Inner};
use crate::paths::SafeName;
use crate::protocol::{Entry, EntryKind};
use crate::storage::{StorageError, PRIVATE_DIR};

/// Keys asked of the store per request (S3's maximum).
const STORE_PAGE: usize = 1000;

/// A directory of an object store being listed.
#[derive(Debug)]
pub struct ObjectListing {
    inner: Arc<Inner>,
    /// The directory's key prefix, ending in `/` (empty: the whole bucket).
    prefix: String,
    /// The client's name for it ("" for the top), for errors.
    shown: String,
    /// Where the next store page starts; `None` with `done` false: the first page.
    token: Option<String>,
    done: bool,
    /// Entries read from the store and not yet handed out.
    ready: VecDeque<Entry>,
}

impl ObjectListing {
    /// Starts listing `dir` (`None`: the top) and reads its first page: a directory with no key
    /// under it does not exist.
    pub(super) async fn open(
        inner: Arc<Inner>,
        dir: Option<&SafeName>,
    ) -> Result<Self, StorageError> {
        let (prefix, shown) = match dir {
            None => (inner.join(""), String::new()),
            Some(name) => {
                inner.key(name)?;
                (inner.join(&format!("{}/", name.as_str())), name.to_string())
            }
        };
        let mut listing = ObjectListing {
            inner,
            prefix,
            shown,
            token: None,
            done: false,
            ready: VecDeque::new(),
        };
        let mut seen = 0;
        while listing.ready.is_empty() && !listing.done {
            seen += listing.fetch().await?;
        }
        if seen == 0 {
            if let Some(name) = dir {
                let key = listing.inner.key(name)?;
                return Err(match listing.inner.store.objects.head(&key).await {
                    Ok(_) => StorageError::NotADirectory(name.to_string()),
                    Err(_) => StorageError::NotFound(name.to_string()),
                });
            }
        }
        Ok(listing)
    }

    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        while self.ready.len() < max && !self.done {
            self.fetch().await?;
        }
        let take = self.ready.len().min(max);
        Ok(self.ready.drain(..take).collect())
    }

    /// Reads one page from the store into `ready`; returns how many keys the store gave
    /// (listed or not: a directory marker still says the directory exists).
    async fn fetch(&mut self) -> Result<usize, StorageError> {
        let store = &self.inner.store;
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        let (dirs, files) = match &store.pages {
            Some(pages) => {
                let options = PaginatedListOptions {
                    delimiter: Some("/".into()),
                    max_keys: Some(STORE_PAGE),
                    page_token: self.token.take(),
                    ..Default::default()
                };
                let page = pages
                    .list_paginated(prefix, options)
                    .await
                    .map_err(|e| from_store(&self.shown, e))?;
                self.token = page.page_token;
                self.done = self.token.is_none();
                (page.result.common_prefixes, page.result.objects)
            }
            None => {
                // A store without paged listing (in memory, for tests): all at once.
                let path = prefix.map(|p| Path::from_iter(p.trim_end_matches('/').split('/')));
                let all = store
                    .objects
                    .list_with_delimiter(path.as_ref())
                    .await
                    .map_err(|e| from_store(&self.shown, e))?;
                self.done = true;
                (all.common_prefixes, all.objects)
            }
        };
        let seen = dirs.len() + files.len();
        let mut entries: Vec<(String, Entry)> = Vec::with_capacity(seen);
        for dir in dirs {
            if let Some(name) = self.entry_name(dir.as_ref()) {
                let key = format!("{}/", dir.as_ref());
                entries.push((key, dir_entry(name)));
            }
        }
        for file in files {
            if let Some(name) = self.entry_name(file.location.as_ref()) {
                entries.push((file.location.to_string(), file_entry(name, &file)));
            }
        }
        // Each kind comes sorted; together, in the store's (byte-wise key) order.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.ready.extend(entries.into_iter().map(|(_, e)| e));
        Ok(seen)
    }

    /// The name a key is listed under in this directory, or `None` for what is not listed: the
    /// private area, a directory marker (the prefix itself), names no client could ask for.
    fn entry_name(&self, key: &str) -> Option<String> {
        let name = key.strip_prefix(&self.prefix)?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        if self.shown.is_empty() && name.eq_ignore_ascii_case(PRIVATE_DIR) {
            return None;
        }
        if SafeName::new(name).is_err() {
            tracing::debug!("not listing {:?}", crate::paths::sanitize(name));
            return None;
        }
        Some(name.to_owned())
    }
}

fn dir_entry(name: String) -> Entry {
    Entry {
        name,
        kind: EntryKind::Dir,
        size: 0,
        modified: None,
    }
}

fn file_entry(name: String, meta: &ObjectMeta) -> Entry {
    Entry {
        name,
        kind: EntryKind::File,
        size: meta.size,
        modified: u64::try_from(meta.last_modified.timestamp()).ok(),
    }
}
