//! The object-store backend: files are objects in an S3 bucket (through Apache Arrow's
//! `object_store`), under a key prefix, so that several stateless servers serve one namespace.
//!
//! # Layout under the prefix `P`
//! - `P/a/b.txt`: the file `a/b.txt`, a plain object any S3 tool can read. Directories are key
//!   prefixes: `a` is a directory while some key starts with `P/a/` (an empty one cannot exist).
//! - `P/.qft/`: the private area, never listed, never addressable (any case of `.qft`).
//!   `partials/<id>.json` is a resumable upload's manifest (its multipart upload, at the file's
//!   own key, and the parts stored); `uploads/<id>.json` the same for plain uploads (kept only
//!   so that a crashed server's leftovers can be found and aborted); `digests/<hash of name>`
//!   the SHA-256 of a file published by completing its upload ([`digests`]).
//!
//! # Consistency
//! - **Reads** are pinned: [`ReadFile`] holds the ETag seen when it was opened and every range
//!   request carries `If-Match` with it, so an object replaced mid-download fails the download
//!   (412) instead of mixing two versions ([`read`]).
//! - **Uploads** stream into one multipart upload created at the file's own key, with the part
//!   size chosen from the announced size so that any size fits S3's 10,000 parts. Nothing is
//!   visible under the name until [`crate::storage::Upload::commit`], called only after the
//!   caller verified the SHA-256, completes it: no copy, and atomic in S3, so two servers
//!   committing the same name leave exactly one of the two, whole ([`publish`]).
//! - **Partials** are kept in the store, not in a server: the manifest records the parts as
//!   they are stored, with each part's SHA-256 and the whole file's hash state after it, so an
//!   upload broken on one server (even killed) continues on another, in the same multipart
//!   upload, reading nothing back ([`upload`], [`manifest`]). Manifests are written with
//!   conditional puts (`If-Match` on their ETag): a newer attempt that takes a partial over makes
//!   every write of the older one fail, on whatever server it runs. They are counted against the
//!   partial limits and expire like the local backend's, their open uploads aborted
//!   ([`expire`]).
//! - **Free space** is unknown to an object store (quotas, if any, fail the write): `None`.
//!
//! Listings are paged from the store ([`listing`]), in name order as on a filesystem (a store
//! lists the directory `x`, the prefix `x/`, after the file `x.txt`: the listing puts it back
//! first), with bounded memory; keys object_store cannot parse are skipped with a warning.

mod buffers;
mod config;
mod digests;
mod expire;
mod listing;
mod manage;
mod manifest;
mod meta;
mod pages;
mod publish;
mod raw;
mod read;
mod staging;
mod upload;
mod walk;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::PaginatedListStore;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

pub use config::{ObjectConfig, OpenError};
pub use listing::ObjectListing;
pub use read::{ObjectContent, ObjectSource};
pub use staging::ObjectSink;
pub use upload::{ObjectPartial, ObjectUpload};
pub use walk::ObjectWalk;

use super::{Content, Listing, ListingInner, ReadFile, StorageError, PRIVATE_DIR};
use crate::paths::SafeName;
use config::{format_url, is_loopback_url};

/// Staged plain uploads untouched this long are a crashed server's leftovers.
const STALE_UPLOAD: Duration = Duration::from_secs(3600);

/// A served bucket prefix.
#[derive(Debug, Clone)]
pub struct Object {
    inner: Arc<Inner>,
}

/// The store, three ways: the same client behind the traits each operation needs.
#[derive(Clone)]
struct Store {
    objects: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    /// Page-at-a-time listing; `None` (the in-memory store) lists whole directories at once.
    pages: Option<Arc<dyn PaginatedListStore>>,
    /// Requests object_store does not make (S3 only): completing an upload with parts named
    /// by number. Without it (in memory), parts are numbered without gaps.
    raw: Option<Arc<raw::Raw>>,
    /// The bytes in flight to and from the store, shared by every transfer.
    buffers: buffers::Buffers,
}

impl Store {
    /// A store in this process's memory (object_store's `InMemory`).
    fn in_memory() -> Self {
        let memory = Arc::new(InMemory::new());
        Store {
            objects: memory.clone(),
            multipart: memory,
            pages: None,
            raw: None,
            buffers: buffers::Buffers::default(),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.objects)
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// The served key prefix, without slashes at either end.
    root: String,
    /// `s3://bucket/prefix`, for the operator's eyes.
    shown: String,
    /// Partials in use in this process, by manifest key: how to tell the user to let go, and
    /// when it did. Other servers are stopped by the manifest's conditional writes instead.
    claims: std::sync::Mutex<HashMap<String, upload::Claim>>,
}

impl Object {
    /// Serves `config`'s bucket and prefix, with credentials and region from the environment;
    /// checks that the bucket answers.
    pub async fn open(config: &ObjectConfig) -> Result<Self, OpenError> {
        // reqwest's rustls takes the process's provider: the one qft uses everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let mut plain = false;
        if let Some(endpoint) = &endpoint {
            if endpoint.starts_with("http://") {
                if !config.allow_http && !is_loopback_url(endpoint) {
                    return Err(OpenError::PlainHttp(endpoint.clone()));
                }
                plain = true;
            }
        }
        // Bodies are not hashed for the signature where nobody on the way could change them
        // (TLS, or this machine): as the AWS SDKs do over https. qft's own SHA-256 covers every
        // byte end to end; signing the body would hash every byte once more on the server.
        let wire_safe = !plain || endpoint.as_deref().is_some_and(is_loopback_url);
        if wire_safe
            && builder
                .get_config_value(&AmazonS3ConfigKey::UnsignedPayload)
                .is_none()
        {
            builder = builder.with_unsigned_payload(true);
        }
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        let virtual_hosted = builder
            .get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let bucket = &config.bucket;
        let bucket_url = match (&endpoint, virtual_hosted) {
            (Some(endpoint), true) => endpoint.clone(),
            (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let s3 = Arc::new(
            builder
                .with_allow_http(plain)
                .build()
                .map_err(OpenError::Config)?,
        );
        let raw = raw::Raw::new(s3.credentials().clone(), region, bucket_url)
            .map_err(OpenError::Config)?;
        let store = Store {
            objects: s3.clone(),
            multipart: s3.clone(),
            pages: Some(s3),
            raw: Some(raw),
            buffers: buffers::Buffers::default(),
        };
        let object = Object::with_store(store, &config.prefix, format_url(config));
        // One small listing: a wrong bucket, endpoint or key shows now, not at the first client.
        let probe = object
            .inner
            .store
            .objects
            .list(object.inner.prefix_path().as_ref());
        // (A key object_store cannot take answers too: listings skip it.)
        if let Some(Err(source)) = probe
            .take(1)
            .next()
            .await
            .filter(|r| !matches!(r, Err(object_store::Error::InvalidPath { .. })))
        {
            let mut reason: &dyn std::error::Error = &source;
            while let Some(inner) = reason.source() {
                reason = inner;
            }
            return Err(OpenError::Unreachable {
                bucket: config.bucket.clone(),
                reason: reason.to_string(),
            });
        }
        Ok(object)
    }

    /// A store in this process's memory (object_store's `InMemory`), for fast tests of what
    /// does not depend on S3 itself.
    pub fn in_memory() -> Self {
        Object::with_store(Store::in_memory(), "", "memory://".into())
    }

    fn with_store(store: Store, prefix: &str, shown: String) -> Self {
        Object {
            inner: Arc::new(Inner {
                store,
                root: prefix.trim_matches('/').to_owned(),
                shown,
                claims: Default::default(),
            }),
        }
    }

    /// `s3://bucket/prefix`, for the operator's eyes only.
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    pub(in crate::storage) async fn list(
        &self,
        dir: Option<SafeName>,
    ) -> Result<Listing, StorageError> {
        let listing = ObjectListing::open(self.inner.clone(), dir.as_ref()).await?;
        Ok(Listing {
            inner: ListingInner::Object(listing),
        })
    }

    pub(in crate::storage) async fn open_read(
        &self,
        name: SafeName,
    ) -> Result<ReadFile, StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        match meta::kept(inner.store.objects.as_ref(), &key).await {
            Ok((meta, kept)) => {
                // The local backend's digest cache; an object's own is in its metadata, read
                // in the same HEAD as the ETag every read is pinned to, or in its digest record
                // for that ETag.
                let sha256 = match kept.sha256 {
                    Some(sha256) => Some(sha256),
                    None => digests::recall(inner, text, meta.e_tag.as_deref()).await,
                };
                let modified = meta::shown_time(&meta, &kept);
                let content = ObjectContent::new(&inner.store, key, meta.e_tag, meta.size, text)
                    .with_sha256(sha256)
                    .remembered_by(inner.clone());
                Ok(ReadFile {
                    digest: None,
                    size: meta.size,
                    modified,
                    content: Content::Object(content),
                })
            }
            Err(object_store::Error::NotFound { .. }) if inner.is_dir(&name).await? => {
                Err(StorageError::IsADirectory(text.to_owned()))
            }
            Err(e) => Err(from_store(text, e)),
        }
    }

    pub(in crate::storage) async fn delete(&self, name: SafeName) -> Result<(), StorageError> {
        let inner = &self.inner;
        let text = name.as_str();
        let key = inner.key(&name)?;
        match inner.store.objects.head(&key).await {
            Ok(_) => {
                inner
                    .store
                    .objects
                    .delete(&key)
                    .await
                    .map_err(|e| from_store(text, e))?;
                digests::forget(inner, text).await;
                Ok(())
            }
            Err(object_store::Error::NotFound { .. }) if inner.is_dir(&name).await? => {
                Err(StorageError::IsADirectory(text.to_owned()))
            }
            Err(e) => Err(from_store(text, e)),
        }
    }

    pub(in crate::storage) async fn available_space(&self) -> io::Result<Option<u64>> {
        // A bucket has no free space to ask about; a quota, if any, fails the upload itself.
        Ok(None)
    }

    pub(in crate::storage) async fn expire_partials(&self, ttl: Duration) {
        expire::expire(&self.inner, staging::PARTIALS, ttl).await;
        expire::expire(&self.inner, staging::UPLOADS, STALE_UPLOAD.min(ttl)).await;
    }
}

impl Inner {
    /// `root/rest`, or `rest` for the whole bucket.
    fn join(&self, rest: &str) -> String {
        if self.root.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.root)
        }
    }

    /// The served prefix as a path (`None`: the whole bucket).
    fn prefix_path(&self) -> Option<Path> {
        (!self.root.is_empty()).then(|| Path::from_iter(self.root.split('/')))
    }

    /// The key of the file `name`; the private area, in any case, is refused, and so is its
    /// name at any level: below the top it is a directory marker (`manage`).
    fn key(&self, name: &SafeName) -> Result<Path, StorageError> {
        let text = name.as_str();
        if name
            .components()
            .any(|c| c.eq_ignore_ascii_case(PRIVATE_DIR))
        {
            return Err(StorageError::Reserved(text.to_owned()));
        }
        Path::parse(self.join(text)).map_err(|e| StorageError::Io {
            name: text.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })
    }

    /// A key in the private area.
    fn private_key(&self, rest: &str) -> Path {
        Path::parse(self.join(&format!("{PRIVATE_DIR}/{rest}")))
            .expect("private keys are made of plain parts")
    }

    /// Whether some key lies under `name/`: the directory `name` exists.
    async fn is_dir(&self, name: &SafeName) -> Result<bool, StorageError> {
        let key = self.key(name)?;
        match self.store.objects.list(Some(&key)).next().await {
            None => Ok(false),
            // A key object_store cannot take is a key all the same.
            Some(Ok(_) | Err(object_store::Error::InvalidPath { .. })) => Ok(true),
            Some(Err(e)) => Err(from_store(name.as_str(), e)),
        }
    }

    /// Refuses an upload to `name` where a directory is, or below a file.
    async fn check_target(&self, name: &SafeName) -> Result<Path, StorageError> {
        let text = name.as_str();
        let key = self.key(name)?;
        if self.is_dir(name).await? {
            return Err(StorageError::IsADirectory(text.to_owned()));
        }
        let parts: Vec<&str> = name.components().collect();
        let parents = (1..parts.len()).map(|n| {
            let parent = self.join(&parts[..n].join("/"));
            async move {
                match Path::parse(parent) {
                    Ok(path) => self.store.objects.head(&path).await.is_ok(),
                    Err(_) => false,
                }
            }
        });
        if futures_util::future::join_all(parents)
            .await
            .into_iter()
            .any(|file| file)
        {
            return Err(StorageError::NotADirectory(text.to_owned()));
        }
        Ok(key)
    }
}

/// Classifies a store error on `name` (the client's name for it).
fn from_store(name: &str, e: object_store::Error) -> StorageError {
    use object_store::Error;
    match e {
        Error::NotFound { .. } => StorageError::NotFound(name.to_owned()),
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => {
            StorageError::PermissionDenied(name.to_owned())
        }
        other => StorageError::Io {
            name: name.to_owned(),
            source: io::Error::other(other),
        },
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.shown)
    }
}
