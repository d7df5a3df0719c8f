//! Pages of a listing from the store, one request each, that survive keys object_store cannot
//! take. Another tool may write keys object_store refuses to parse (`a//b`, `dir/.`, a control
//! character); its paged listing then fails the whole page. Such a page is asked for again in
//! halves from the last key read, down to the one bad key, which is skipped with a warning
//! (`start-after` past it, or past everything under it for a prefix), and whole pages follow.

use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ListResult, ObjectMeta};

/// Keys asked of the store per request (S3's maximum).
pub(super) const STORE_PAGE: usize = 1000;

/// Where the next request starts.
#[derive(Debug, Clone)]
enum Next {
    Start,
    /// The store's continuation token.
    Token(String),
    /// After this key (`start-after`), this many keys at most: closing in on a bad key.
    After(Option<String>, usize),
    Done,
}

/// A listing of the keys under a prefix, a page at a time.
#[derive(Debug)]
pub(super) struct Pager {
    /// The keys' prefix (ending in `/`, or empty for the whole bucket).
    prefix: String,
    /// Directories as common prefixes (`/`), or every key below.
    delimited: bool,
    next: Next,
    /// Where the pages read so far end (`start-after` for what follows).
    last: Option<String>,
}

impl Pager {
    pub fn new(prefix: String, delimited: bool) -> Self {
        Pager {
            prefix,
            delimited,
            next: Next::Start,
            last: None,
        }
    }

    pub fn done(&self) -> bool {
        matches!(self.next, Next::Done)
    }

    /// How far the listing has read: every key up to this one was in a page given out.
    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The next page, as common prefixes and objects, in key order; `None` when a bad key was
    /// met and the next call goes on (nothing was lost).
    pub async fn next(
        &mut self,
        pages: &dyn PaginatedListStore,
    ) -> object_store::Result<Option<(Vec<Path>, Vec<ObjectMeta>)>> {
        let (token, offset, max_keys) = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Start => (None, None, STORE_PAGE),
            Next::Token(token) => (Some(token), None, STORE_PAGE),
            Next::After(after, max) => (None, after, max),
            Next::Done => return Ok(None),
        };
        let options = PaginatedListOptions {
            delimiter: self.delimited.then_some("/".into()),
            max_keys: Some(max_keys),
            page_token: token.clone(),
            offset: offset.clone(),
            ..Default::default()
        };
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        match pages.list_paginated(prefix, options).await {
            Ok(page) => {
                let ListResult {
                    common_prefixes,
                    objects,
                    ..
                } = page.result;
                let furthest = common_prefixes
                    .iter()
                    .map(|d| format!("{d}/"))
                    .chain(objects.iter().map(|f| f.location.to_string()))
                    .max();
                if let Some(key) = furthest {
                    self.last = Some(past(key));
                }
                let wider = (max_keys * 2).min(STORE_PAGE);
                self.next = match page.page_token {
                    None => Next::Done,
                    Some(token) if wider == STORE_PAGE => Next::Token(token),
                    Some(_) => Next::After(self.last.clone(), wider),
                };
                Ok(Some((common_prefixes, objects)))
            }
            Err(object_store::Error::InvalidPath { source }) => {
                let after = offset.or_else(|| self.last.clone());
                if max_keys > 1 {
                    // Somewhere in this page: ask for its first half again.
                    self.next = Next::After(after, max_keys / 2);
                    return Ok(None);
                }
                let bad = bad_key(&source);
                tracing::warn!(
                    "not listing a key object_store cannot take: {:?}",
                    crate::paths::sanitize(&bad)
                );
                self.next = Next::After(Some(past(bad)), STORE_PAGE);
                Ok(None)
            }
            Err(e) => {
                // Asked again at the next call.
                self.next = match (token, offset) {
                    (Some(token), _) => Next::Token(token),
                    (None, Some(after)) => Next::After(Some(after), max_keys),
                    (None, None) => Next::Start,
                };
                Err(e)
            }
        }
    }
}

/// What to start a listing after so as to pass `key`: for a prefix (`a/`, `a//`), everything
/// under it too (no key goes on from `a/` with a character above U+10FFFF).
fn past(key: String) -> String {
    match key.ends_with('/') {
        true => key + "\u{10FFFF}",
        false => key,
    }
}

/// The key object_store refused, as the store gave it.
fn bad_key(e: &object_store::path::Error) -> String {
    use object_store::path::Error;
    match e {
        Error::EmptySegment { path } | Error::BadSegment { path, .. } => path.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_a_prefix_is_past_everything_under_it() {
        assert_eq!(past("a/b".into()), "a/b");
        let after = past("a//".into());
        assert!(after.as_str() > "a//zzz" && after.as_str() < "a/0");
    }
}
