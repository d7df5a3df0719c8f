//! Managing names in an object store, where a directory is only a key prefix:
//! - a directory made empty is a *marker*, the empty object `dir/.qft` (so `.qft` is reserved at
//!   every level here, as the private area's name is at the top): listings see `dir` through it,
//!   and it goes with the directory's last entry;
//! - a file is renamed by a server-side copy (whole or not at all, keeping the object's
//!   metadata) then a delete of the original, only if the original is still the version copied;
//!   a directory would be one copy per object, visible half done, so it is refused;
//! - a tree is deleted object by object, its markers with it.

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::meta::{kept, shown_time};
use super::{from_store, Inner, Object};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, EntryKind};
use crate::storage::{StorageError, PRIVATE_DIR};

/// The name of a directory marker inside the directory it marks.
pub(super) const MARKER: &str = PRIVATE_DIR;

/// The largest object S3 copies in one request.
const MAX_COPY: u64 = 5 << 30;

impl Object {
    pub(in crate::storage) async fn make_dir(
        &self,
        name: SafeName,
        parents: bool,
    ) -> Result<(), StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        if inner.is_dir(&name).await? {
            return match parents {
                true => Ok(()),
                false => Err(StorageError::Exists(text.to_owned())),
            };
        }
        if inner.store.objects.head(&key).await.is_ok() {
            return Err(match parents {
                true => StorageError::NotADirectory(text.to_owned()),
                false => StorageError::Exists(text.to_owned()),
            });
        }
        // A file on the way is refused; without `parents` the parent must be there already.
        inner.check_target(&name).await?;
        if !parents {
            inner.parent_exists(&name).await?;
            return inner.put_marker(&key, text).await;
        }
        // Each directory made gets its marker, so that it outlives what is made inside it, as
        // on a filesystem (`mkdir -p a/b; rmdir a/b` leaves `a`).
        let parts: Vec<&str> = name.components().collect();
        for depth in 1..=parts.len() {
            let dir = SafeName::new(&parts[..depth].join("/"))
                .map_err(|_| StorageError::NotFound(text.to_owned()))?;
            if depth == parts.len() || !inner.is_dir(&dir).await? {
                inner.put_marker(&inner.key(&dir)?, text).await?;
            }
        }
        Ok(())
    }

    pub(in crate::storage) async fn remove_dir(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        let below: Vec<Path> = inner
            .store
            .objects
            .list(Some(&key))
            .take(2)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| from_store(text, e))?;
        let marker = format!("{key}/{MARKER}");
        match below.as_slice() {
            [] => Err(match inner.store.objects.head(&key).await {
                Ok(_) => StorageError::NotADirectory(text.to_owned()),
                Err(_) => StorageError::NotFound(text.to_owned()),
            }),
            [only] if only.as_ref() == marker => inner
                .store
                .objects
                .delete(only)
                .await
                .map_err(|e| from_store(text, e)),
            _ => Err(StorageError::NotEmpty(text.to_owned())),
        }
    }

    pub(in crate::storage) async fn rename(
        &self,
        from: SafeName,
        to: SafeName,
    ) -> Result<(), StorageError> {
        let inner = &self.inner;
        let text = from.as_str();
        let source = inner.key(&from)?;
        let before = match inner.store.objects.head(&source).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) if inner.is_dir(&from).await? => {
                return Err(StorageError::DirRenameNotAtomic(text.to_owned()))
            }
            Err(e) => return Err(from_store(text, e)),
        };
        if before.size > MAX_COPY {
            return Err(StorageError::TooLargeToRename(text.to_owned()));
        }
        let target = inner.check_target(&to).await?;
        if inner.store.objects.head(&target).await.is_ok() {
            return Err(StorageError::Exists(to.to_string()));
        }
        inner.parent_exists(&to).await?;
        inner
            .store
            .objects
            .copy(&source, &target)
            .await
            .map_err(|e| from_store(text, e))?;
        // Only the version copied is deleted: one replaced meanwhile stays where it is.
        match inner.store.objects.head(&source).await {
            Ok(now) if now.e_tag == before.e_tag && now.last_modified == before.last_modified => {
                inner
                    .store
                    .objects
                    .delete(&source)
                    .await
                    .map_err(|e| from_store(text, e))?;
                // The copy has an ETag of its own: its digest is recorded by its first reader.
                super::digests::forget(inner, text).await;
                Ok(())
            }
            Ok(_) => Err(StorageError::BadRename(
                text.to_owned(),
                "it was replaced while being renamed: the new name holds the earlier content and \
                 the old name keeps the newer",
            )),
            // Gone meanwhile (deleted, or renamed by someone else): the copy is what is left.
            Err(_) => Ok(()),
        }
    }

    pub(in crate::storage) async fn stat(&self, name: SafeName) -> Result<EntryInfo, StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        match kept(inner.store.objects.as_ref(), &key).await {
            Ok((meta, kept)) => Ok(EntryInfo {
                name: text.to_owned(),
                kind: EntryKind::File,
                size: meta.size,
                modified: shown_time(&meta, &kept),
                mode: kept.mode,
                sha256: match kept.sha256 {
                    Some(sha256) => Some(sha256),
                    None => super::digests::recall(inner, text, meta.e_tag.as_deref()).await,
                },
            }),
            Err(object_store::Error::NotFound { .. }) if inner.is_dir(&name).await? => {
                Ok(EntryInfo {
                    name: text.to_owned(),
                    kind: EntryKind::Dir,
                    size: 0,
                    modified: None,
                    mode: None,
                    sha256: None,
                })
            }
            Err(e) => Err(from_store(text, e)),
        }
    }

    pub(in crate::storage) async fn delete_tree(
        &self,
        name: SafeName,
    ) -> Result<u64, StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        let mut files = 0u64;
        let mut found = false;
        if inner.store.objects.head(&key).await.is_ok() {
            inner
                .store
                .objects
                .delete(&key)
                .await
                .map_err(|e| from_store(text, e))?;
            files += 1;
            found = true;
        }
        // Everything below, as the listing finds it; the delete requests go in batches.
        let below = inner
            .store
            .objects
            .list(Some(&key))
            .map_ok(|m| m.location)
            .boxed();
        let mut deleted = inner.store.objects.delete_stream(below);
        while let Some(gone) = deleted.next().await {
            let gone = gone.map_err(|e| from_store(text, e))?;
            found = true;
            if gone.filename() != Some(MARKER) {
                files += 1;
            }
        }
        match found {
            true => Ok(files),
            false => Err(StorageError::NotFound(text.to_owned())),
        }
    }
}

impl Inner {
    /// Writes the marker of the directory at `key`.
    async fn put_marker(&self, key: &Path, text: &str) -> Result<(), StorageError> {
        let marker = Path::parse(format!("{key}/{MARKER}")).map_err(|e| StorageError::Io {
            name: text.to_owned(),
            source: std::io::Error::other(e),
        })?;
        self.store
            .objects
            .put(&marker, PutPayload::default())
            .await
            .map_err(|e| from_store(text, e))?;
        Ok(())
    }

    /// The directory `name` is in must exist (the top always does).
    pub(super) async fn parent_exists(&self, name: &SafeName) -> Result<(), StorageError> {
        let Some((parent, _)) = name.as_str().rsplit_once('/') else {
            return Ok(());
        };
        let parent = SafeName::new(parent).map_err(|_| StorageError::NotFound(parent.into()))?;
        match self.is_dir(&parent).await? {
            true => Ok(()),
            false => Err(StorageError::NotFound(parent.to_string())),
        }
    }
}
