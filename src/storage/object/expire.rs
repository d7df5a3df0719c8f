//! Bounds on what staged uploads leave in the store: the sweep that removes what no attempt
//! touched for a while ([`expire`]), and the count of partials that refuses a new one past
//! [`PartialLimits`] ([`admit`]), as the local backend does.
//!
//! Partials live in the store, shared by every server over it, so they are counted there: a
//! delimiter listing of the partials' area (one request per 1,000 entries; each partial is a
//! manifest and a prefix), only when a *new* partial is asked for. Servers admitting partials
//! at the same instant may each see room for one more: the bound holds within that many.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::list::PaginatedListOptions;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::staging::PARTIALS;
use super::Inner;
use crate::storage::{PartialLimits, StorageError};

/// Refuses a new partial of `client` (hex) when the store holds as many as `limits` allow,
/// for this client or in all.
pub(super) async fn admit(
    inner: &Inner,
    client: &str,
    limits: PartialLimits,
    shown: &str,
) -> Result<(), StorageError> {
    let area = format!("{}/", inner.private_key(PARTIALS));
    let mine = count(inner, &format!("{area}{client}-"), limits.per_client, shown).await?;
    if mine >= limits.per_client {
        return Err(StorageError::TooManyPartials(
            "for this client",
            shown.to_owned(),
        ));
    }
    if count(inner, &area, limits.total, shown).await? >= limits.total {
        return Err(StorageError::TooManyPartials(
            "for any client",
            shown.to_owned(),
        ));
    }
    Ok(())
}

/// How many manifests are directly under `prefix`, counting up to `enough` at most.
async fn count(
    inner: &Inner,
    prefix: &str,
    enough: usize,
    shown: &str,
) -> Result<usize, StorageError> {
    let is_manifest = |key: &str| key.ends_with(".json");
    let Some(pages) = &inner.store.pages else {
        // In memory (tests): all at once.
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let all = inner
            .store
            .objects
            .list_with_delimiter(Some(&Path::from_iter(dir.split('/'))))
            .await
            .map_err(|e| super::from_store(shown, e))?;
        return Ok(all
            .objects
            .iter()
            .filter(|o| o.location.as_ref().starts_with(prefix) && is_manifest(o.location.as_ref()))
            .count());
    };
    let mut seen = 0;
    let mut token = None;
    loop {
        let options = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(1000),
            page_token: token,
            ..Default::default()
        };
        let page = pages
            .list_paginated(Some(prefix), options)
            .await
            .map_err(|e| super::from_store(shown, e))?;
        seen += page
            .result
            .objects
            .iter()
            .filter(|o| is_manifest(o.location.as_ref()))
            .count();
        token = page.page_token;
        if token.is_none() || seen >= enough {
            return Ok(seen);
        }
    }
}

/// Removes what staged uploads of `kind` left untouched for `ttl`: a manifest's age is its last
/// write (stored parts rewrite it), so a live upload is never taken for a leftover. The open
/// multipart upload it names, at the file's own key, is aborted first (its parts are not
/// objects: nothing else would find them).
pub(super) async fn expire(inner: &Arc<Inner>, kind: &str, ttl: Duration) {
    let prefix = inner.private_key(kind);
    let mut listing = inner.store.objects.list(Some(&prefix));
    let now = chrono_now();
    let prefix_text = format!("{prefix}/");
    // Ids of fresh manifests, and stale objects by id: one entry per staged upload, not per key.
    let mut fresh: HashMap<String, ()> = HashMap::new();
    let mut stale: HashMap<String, Vec<Path>> = HashMap::new();
    while let Some(item) = listing.next().await {
        let meta = match item {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!("cannot list expired uploads: {e}");
                return;
            }
        };
        let Some(rest) = meta.location.as_ref().strip_prefix(&prefix_text) else {
            continue;
        };
        let id = rest
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json")
            .to_owned();
        let age = now - meta.last_modified.timestamp();
        if age >= 0 && age as u64 > ttl.as_secs() {
            stale.entry(id).or_default().push(meta.location);
        } else if rest.ends_with(".json") {
            fresh.insert(id, ());
        }
    }
    for (id, keys) in stale {
        if fresh.contains_key(&id) {
            continue;
        }
        // An open multipart upload is named only in its manifest: abort it first.
        let manifest_key = inner.private_key(&format!("{kind}/{id}.json"));
        if let Ok(got) = inner.store.objects.get(&manifest_key).await {
            if let Ok(body) = got.bytes().await {
                // Read loosely: a manifest of any version of qft names its upload so.
                let manifest = serde_json::from_slice::<serde_json::Value>(&body);
                let open = manifest.as_ref().ok().map(|m| &m["open"]);
                let named = open.and_then(|o| Some((o["key"].as_str()?, o["upload_id"].as_str()?)));
                if let Some((key, id)) = named {
                    if let Ok(key) = Path::parse(key) {
                        let id = id.to_owned();
                        let aborted = inner.store.multipart.abort_multipart(&key, &id);
                        if let Err(e) = aborted.await {
                            tracing::debug!("aborting an expired upload: {e}");
                        }
                    }
                }
            }
        }
        for key in keys {
            let _ = inner.store.objects.delete(&key).await;
        }
        tracing::info!("removed an expired partial upload");
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
