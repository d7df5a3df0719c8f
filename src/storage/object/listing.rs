//! Listing a directory (a key prefix) a page of the store at a time: one delimiter listing
//! request per page of up to [`STORE_PAGE`] keys, so a prefix of millions of objects costs a
//! bounded amount of memory, whatever the client reads.
//!
//! # Name order, as the contract promises
//! The store lists in key order, where a directory `x` is the prefix `x/` and so comes after
//! `x.txt`, `x-1` and `x 2` (every byte below `/`). Names are handed out in name order, as the
//! local backend does: an entry is held back while a directory that sorts
//! before it could still come (a prefix of its name followed by a byte below `/`, whose `P/` the
//! listing has not passed yet). If too many wait for one such `P` ([`MAX_HELD`]), one small
//! request settles whether `P/` exists.
//!
//! Keys object_store cannot take are skipped ([`super::pages`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::list::PaginatedListOptions;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::meta::{kept, shown_time, Kept, HEADS_AT_ONCE};
use super::pages::{Pager, STORE_PAGE};
use super::{from_store, Inner};
use crate::paths::SafeName;
use crate::protocol::{Entry, EntryKind};
use crate::storage::{StorageError, PRIVATE_DIR};

/// Entries held back at most before the directory they wait for is looked up directly.
const MAX_HELD: usize = 2 * STORE_PAGE;

/// A directory of an object store being listed (boxed: it is most of a [`crate::storage::Listing`]).
#[derive(Debug)]
pub struct ObjectListing(Box<State>);

impl ObjectListing {
    /// Starts listing `dir` (`None`: the top) and reads its first page: a directory with no key
    /// under it does not exist.
    pub(super) async fn open(
        inner: Arc<Inner>,
        dir: Option<&SafeName>,
    ) -> Result<Self, StorageError> {
        Ok(ObjectListing(Box::new(State::open(inner, dir).await?)))
    }

    pub(in crate::storage) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.0.next_page(max).await
    }
}

#[derive(Debug)]
struct State {
    inner: Arc<Inner>,
    /// The directory's key prefix, ending in `/` (empty: the whole bucket).
    prefix: String,
    /// The client's name for it ("" for the top), for errors.
    shown: String,
    /// The store's pages (`None`: a store without them, listed at once).
    pager: Option<Pager>,
    /// Everything listed at once is read.
    read_all: bool,
    /// How far the store's listing has gone (below `prefix`): it lists in key order.
    pos: String,
    /// Entries read and not yet safe to hand out, by name (a file before a directory of the same
    /// name, which S3 allows).
    held: BTreeMap<(String, bool), Entry>,
    /// Directories looked up directly while their `P/` was ahead: whether each exists.
    settled: HashMap<String, bool>,
    /// Entries in name order, ready to hand out.
    ready: VecDeque<Entry>,
}

impl State {
    async fn open(inner: Arc<Inner>, dir: Option<&SafeName>) -> Result<Self, StorageError> {
        let (prefix, shown) = match dir {
            None => (inner.join(""), String::new()),
            Some(name) => {
                inner.key(name)?;
                (inner.join(&format!("{}/", name.as_str())), name.to_string())
            }
        };
        let mut listing = State {
            pager: inner
                .store
                .pages
                .is_some()
                .then(|| Pager::new(prefix.clone(), true)),
            read_all: false,
            inner,
            prefix,
            shown,
            pos: String::new(),
            held: BTreeMap::new(),
            settled: HashMap::new(),
            ready: VecDeque::new(),
        };
        let mut seen = 0;
        while listing.ready.is_empty() && listing.held.is_empty() && !listing.done() {
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

    fn done(&self) -> bool {
        match &self.pager {
            Some(pager) => pager.done(),
            None => self.read_all,
        }
    }

    async fn next_page(&mut self, max: usize) -> Result<Vec<Entry>, StorageError> {
        loop {
            self.release();
            if self.ready.len() >= max || (self.done() && self.held.is_empty()) {
                break;
            }
            if self.held.len() > MAX_HELD {
                self.settle_first().await?;
            } else if !self.done() {
                self.fetch().await?;
            }
        }
        let take = self.ready.len().min(max);
        Ok(self.ready.drain(..take).collect())
    }

    /// Moves what is safe to hand out, in name order, from `held` to `ready`.
    fn release(&mut self) {
        while let Some(((name, _), _)) = self.held.first_key_value() {
            if !self.done() && self.waits_for(name).is_some() {
                break;
            }
            let (_, entry) = self.held.pop_first().expect("seen above");
            self.ready.push_back(entry);
        }
    }

    /// A directory that would sort before `name` and could still come: a prefix of `name`
    /// followed by a byte below `/`, not settled, whose `P/` the listing has not passed.
    fn waits_for(&self, name: &str) -> Option<String> {
        name.bytes()
            .enumerate()
            .filter(|&(i, b)| i > 0 && b < b'/')
            .map(|(i, _)| &name[..i])
            .find(|dir| {
                !self.settled.contains_key(*dir) && format!("{dir}/").as_str() > self.pos.as_str()
            })
            .map(str::to_owned)
    }

    /// Looks up, with one request, the directory the first held entry waits for.
    async fn settle_first(&mut self) -> Result<(), StorageError> {
        let Some(((name, _), _)) = self.held.first_key_value() else {
            return Ok(());
        };
        let Some(dir) = self.waits_for(name) else {
            return Ok(());
        };
        let key = format!("{}{dir}/", self.prefix);
        let exists = match &self.inner.store.pages {
            Some(pages) => {
                let options = PaginatedListOptions {
                    max_keys: Some(1),
                    ..Default::default()
                };
                let page = pages.list_paginated(Some(&key), options).await;
                // A key below it that object_store cannot take still makes it a directory.
                matches!(page, Err(object_store::Error::InvalidPath { .. }))
                    || page.is_ok_and(|p| !p.result.objects.is_empty())
            }
            None => false,
        };
        if exists {
            if let Some(name) = self.entry_name(&key) {
                self.held.insert((name.clone(), true), dir_entry(name));
            }
        }
        self.settled.insert(dir, exists);
        Ok(())
    }

    /// Reads one page from the store into `held`; returns how many keys the store gave
    /// (listed or not: a directory marker still says the directory exists).
    async fn fetch(&mut self) -> Result<usize, StorageError> {
        let Some((dirs, files)) = self.request().await? else {
            return Ok(0);
        };
        let seen = dirs.len() + files.len();
        if let Some(last) = self.pager.as_ref().and_then(Pager::last) {
            self.pos = last
                .strip_prefix(&self.prefix)
                .unwrap_or_default()
                .to_owned();
        }
        for dir in dirs {
            if let Some(name) = self.entry_name(dir.as_ref()) {
                if self.settled.get(&name) == Some(&true) {
                    continue; // looked up, and held already
                }
                self.held.insert((name.clone(), true), dir_entry(name));
            }
        }
        // The time a file keeps is in its metadata, which a listing does not carry: a HEAD
        // each, a few at a time (see `meta`).
        let listed: Vec<(String, ObjectMeta)> = files
            .into_iter()
            .filter_map(|file| Some((self.entry_name(file.location.as_ref())?, file)))
            .collect();
        let store = self.inner.store.objects.clone();
        let described: Vec<(String, Entry)> = futures_util::stream::iter(listed)
            .map(|(name, file)| {
                let store = store.clone();
                async move {
                    // Gone or unreadable since it was listed: shown with the store's time.
                    let kept = kept(store.as_ref(), &file.location)
                        .await
                        .map(|(_, k)| k)
                        .unwrap_or_default();
                    let entry = file_entry(name.clone(), &file, &kept);
                    (name, entry)
                }
            })
            .buffered(HEADS_AT_ONCE)
            .collect()
            .await;
        for (name, entry) in described {
            self.held.insert((name, false), entry);
        }
        // What was looked up and is now behind the listing cannot come again.
        let pos = self.pos.clone();
        self.settled.retain(|dir, _| format!("{dir}/") > pos);
        Ok(seen)
    }

    /// The next page of the store, as directories and files; `None` if a key was skipped and
    /// the next request will tell.
    async fn request(&mut self) -> Result<Option<(Vec<Path>, Vec<ObjectMeta>)>, StorageError> {
        let store = &self.inner.store;
        match (&store.pages, &mut self.pager) {
            (Some(pages), Some(pager)) => pager
                .next(pages.as_ref())
                .await
                .map_err(|e| from_store(&self.shown, e)),
            _ => {
                // A store without paged listing (in memory, for tests): all at once.
                let prefix = self.prefix.trim_end_matches('/');
                let path = (!prefix.is_empty()).then(|| Path::from_iter(prefix.split('/')));
                let all = store
                    .objects
                    .list_with_delimiter(path.as_ref())
                    .await
                    .map_err(|e| from_store(&self.shown, e))?;
                self.read_all = true;
                Ok(Some((all.common_prefixes, all.objects)))
            }
        }
    }

    /// The name a key is listed under in this directory, or `None` for what is not listed: the
    /// private area, a directory marker (the prefix itself), names no client could ask for.
    fn entry_name(&self, key: &str) -> Option<String> {
        let name = key.strip_prefix(&self.prefix)?.trim_end_matches('/');
        if name.is_empty() || name.contains('/') {
            return None;
        }
        // The private area at the top; a directory marker below it (`manage`).
        if name.eq_ignore_ascii_case(PRIVATE_DIR) {
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

fn file_entry(name: String, meta: &ObjectMeta, kept: &Kept) -> Entry {
    Entry {
        name,
        kind: EntryKind::File,
        size: meta.size,
        modified: shown_time(meta, kept),
    }
}
