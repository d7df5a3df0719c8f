//! The storage contract: what the server needs from wherever files are kept, and nothing about
//! how they are kept. The server's command handlers see only [`Storage`] and the handles it gives
//! out; bytes move through the transfer layer's [`Source`] and [`Sink`](crate::transfer::Sink), never a file handle.
//!
//! # The contract
//! - **Names** are [`SafeName`]s, already checked; a backend still refuses the private area
//!   ([`PRIVATE_DIR`]) however it is spelled, and anything that would lead outside what it serves.
//! - **List** a directory page by page ([`Listing`]), sorted by name, without the private area.
//! - **Read** a file as a fixed snapshot ([`ReadFile`]): its size and time as opened, and a
//!   source at any offset of that same content (a restart, a resume, a re-hash). A backend may
//!   know the content's SHA-256 without reading it ([`ReadFile::known_sha256`]: the local one
//!   keeps the digests of files it received or sent whole, while they stay unchanged), and is
//!   told the digest when a reader computed it ([`ReadFile::hashed`]); the digest given to
//!   [`Upload::commit`] is the content's too.
//! - **Upload** ([`Upload`]): a private staging area receives the body; [`Upload::commit`] is
//!   called only after the caller verified the SHA-256, and makes it appear under its name whole
//!   and durable, replacing what was there in one step. Dropped without a commit, it leaves
//!   nothing and the old content stays.
//! - **Partials** ([`Partial`], optional per backend): a resumable upload's staging, keyed by the
//!   client's key, the name and the size, kept when the transfer breaks, continued by the same
//!   client later, and expired after a time; at most [`PartialLimits`] of them (counted in
//!   the store by the object backend, so within a few when servers race), past which a new one
//!   is refused
//!   ([`StorageError::TooManyPartials`]). A backend without them answers `None`; either way the
//!   client falls back to a plain upload. What a partial holds is hashed from its
//!   [`Partial::source`], or, where the held bytes cannot be read back (an open multipart
//!   upload), known from what the backend recorded as it stored them ([`Partial::pieces`],
//!   [`Partial::state_at`]); such a backend also takes over the whole file's hash of the rest
//!   ([`Partial::take_hashing`], [`Partial::digest`]), in the one pass it makes anyway.
//! - **Delete** one file; **free space** where it can be known; **expire** leftovers.
//! - **Space** for uploads is [`Storage::reserve`]d before they start, here for every backend:
//!   what running uploads announced and have not written yet counts as used, so two uploads
//!   cannot both be promised the same free space.
//! - A name the backend cannot hold (a component longer than its filesystem takes) is refused
//!   as a bad name ([`StorageError::NameTooLong`]) before anything is written.
//! - **Manage** names ([`Storage::make_dir`], [`Storage::remove_dir`], [`Storage::rename`],
//!   [`Storage::delete_tree`]), **describe** one ([`Storage::stat`], [`Storage::digest`]) and
//!   **walk** a tree ([`Walk`]); an upload may carry a [`FileMeta`](crate::protocol::FileMeta) ([`Upload::set_meta`]) that
//!   the file has from the moment it appears. Many small files received whole and verified are
//!   stored together ([`Storage::store_whole`]): each lands whole or not at all, alone, and a
//!   backend may share the work of committing them (the local one: one hand-off to a thread and
//!   one group commit for all). Rename never replaces, and is one step or refused
//!   (an object store renames a file by copy then delete, and refuses a directory). A tree is
//!   deleted and walked without following links, and never reaches into the private area.
//!
//! # Backends
//! - [`local`]: a directory on the server's filesystem (temp file, fsync, rename, fsync dir).
//! - [`object`]: a prefix of an S3 bucket (one multipart upload at the file's key, completed
//!   once verified; reads pinned to an ETag; partials kept in the store, with the hashes of
//!   what they hold, so any server continues them without reading them back).
//!
//! Async methods that return `impl Future` rule out `dyn`, so the backends are an enum behind
//! [`Storage`]: one `match` per operation here, and no generics in `server/`.

mod error;
mod handles;
pub mod local;
pub mod object;
mod reserve;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use error::StorageError;
pub use handles::{Listing, Partial, ReadFile, ReadStream, Upload, Walk, WriteStream};
pub use reserve::{Counted, Reservation};

use handles::{Content, ListingInner, PartialInner, UploadInner, WalkInner};
use reserve::Held;

use crate::paths::SafeName;
use crate::protocol::EntryInfo;
use crate::transfer::Source;

/// The private area's name at the top of what is served: never listed, never addressable.
pub const PRIVATE_DIR: &str = ".qft";

/// The puts one bundle of small files has in flight at once on an object store.
const OBJECT_PUTS_AT_ONCE: usize = 8;

/// A small file received whole, whose body's SHA-256 the caller verified: what
/// [`Storage::store_whole`] stores.
#[derive(Debug)]
pub struct Whole {
    /// Where it goes.
    pub name: SafeName,
    /// What it gets besides its bytes (its time, its permission bits), if anything.
    pub meta: Option<crate::protocol::FileMeta>,
    /// All of it, in the pieces it arrived in.
    pub body: Vec<bytes::Bytes>,
    /// The body's SHA-256, verified.
    pub sha256: [u8; 32],
}

/// What the server serves from. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Backend,
    /// Bytes running uploads announced and have not written yet.
    promised: Arc<AtomicU64>,
}

/// How many partials a backend keeps: a client that starts resumable uploads and drops them
/// must not fill the disk, or the backend's bookkeeping, for the partial lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialLimits {
    /// Partials of one client.
    pub per_client: usize,
    /// Partials of all clients together.
    pub total: usize,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(local::Local),
    Object(object::Object),
}

impl Storage {
    /// Serves the local directory `root` (see [`local`]).
    pub fn open(root: &Path) -> io::Result<Self> {
        Ok(Storage {
            backend: Backend::Local(local::Local::open(root)?),
            promised: Arc::default(),
        })
    }

    /// Serves a prefix of an S3 bucket (see [`object`]); checks that it answers.
    pub async fn open_object(config: &object::ObjectConfig) -> Result<Self, object::OpenError> {
        Ok(Storage {
            backend: Backend::Object(object::Object::open(config).await?),
            promised: Arc::default(),
        })
    }

    /// The object backend over a store in memory, for tests.
    pub fn object_in_memory() -> Self {
        Storage {
            backend: Backend::Object(object::Object::in_memory()),
            promised: Arc::default(),
        }
    }

    /// The served directory, for a backend that has one (tests of local-only behaviour).
    pub fn local_root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(local) => Some(local.root()),
            Backend::Object(_) => None,
        }
    }

    /// Lists `dir` (`None`: the top), page by page.
    pub async fn list(&self, dir: Option<SafeName>) -> Result<Listing, StorageError> {
        match &self.backend {
            Backend::Local(local) => local.list(dir).await,
            Backend::Object(object) => object.list(dir).await,
        }
    }

    /// Opens a regular file for reading, as it is now.
    pub async fn open_read(&self, name: SafeName) -> Result<ReadFile, StorageError> {
        match &self.backend {
            Backend::Local(local) => local.open_read(name).await,
            Backend::Object(object) => object.open_read(name).await,
        }
    }

    /// Starts an upload of `size` bytes to `name`: refuses a directory there up front, makes
    /// missing parent directories, and opens a private staging area.
    pub async fn begin_upload(&self, name: SafeName, size: u64) -> Result<Upload, StorageError> {
        match &self.backend {
            Backend::Local(local) => local.begin_upload(name, size).await,
            Backend::Object(object) => object.begin_upload(name, size).await,
        }
    }

    /// Stores small files received whole and verified, each under its name, whole and durable,
    /// or not at all; one result per file, in order. One file's failure fails that file alone.
    pub async fn store_whole(&self, files: Vec<Whole>) -> Vec<Result<(), StorageError>> {
        match &self.backend {
            Backend::Local(local) => local.store_whole(files).await,
            // Each as its own upload, a few side by side: an object store has no commit to
            // share, and a bundle's hundreds of requests at once would only queue at the store.
            Backend::Object(_) => {
                use futures_util::StreamExt;
                let each = files.into_iter().map(|file| async move {
                    let size = file.body.iter().map(|b| b.len() as u64).sum();
                    let mut upload = self.begin_upload(file.name, size).await?;
                    if let Some(meta) = file.meta {
                        upload.set_meta(meta);
                    }
                    upload.commit_whole(file.body, file.sha256).await
                });
                futures_util::stream::iter(each)
                    .buffered(OBJECT_PUTS_AT_ONCE)
                    .collect()
                    .await
            }
        }
    }

    /// Opens (or starts, within `limits`) the partial of `client` uploading `size` bytes as
    /// `name`, telling an earlier attempt of the same client that holds it to let go. `None`:
    /// this backend does not resume uploads.
    pub async fn begin_partial(
        &self,
        name: SafeName,
        client: [u8; 32],
        size: u64,
        limits: PartialLimits,
    ) -> Result<Option<Partial>, StorageError> {
        match &self.backend {
            Backend::Local(local) => local
                .begin_partial(name, client, size, limits)
                .await
                .map(Some),
            // Leftovers are expired by the periodic sweep; partials are counted in the store,
            // and only when a new one is asked for.
            Backend::Object(object) => object
                .begin_partial(name, client, size, limits)
                .await
                .map(Some),
        }
    }

    /// Sets `size` bytes aside for an upload about to receive them, or refuses if the free
    /// space, less what running uploads were promised and not yet written, would fall below
    /// `keep_free`. Where the free space cannot be known, nothing is refused (a full disk still
    /// fails the write cleanly). Writes through [`Reservation::counting`] use it up; dropping it
    /// gives back the rest.
    pub async fn reserve(&self, size: u64, keep_free: u64) -> Result<Reservation, StorageError> {
        let free = match self.available_space().await {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!("cannot tell the free space: {e}");
                None
            }
        };
        let promise = |promised: u64| match free {
            Some(free) if size.saturating_add(keep_free).saturating_add(promised) > free => None,
            _ => Some(promised.saturating_add(size)),
        };
        match self
            .promised
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, promise)
        {
            Ok(_) => Ok(Reservation {
                held: Arc::new(Held {
                    left: AtomicU64::new(size),
                    promised: self.promised.clone(),
                }),
            }),
            Err(promised) => Err(StorageError::NoRoom {
                size,
                free: free.unwrap_or(0),
                promised,
                keep: keep_free,
            }),
        }
    }

    /// Deletes the file `name` (not a directory). A link is removed itself, never its target.
    pub async fn delete(&self, name: SafeName) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(local) => local.delete(name).await,
            Backend::Object(object) => object.delete(name).await,
        }
    }

    /// Bytes the server may still store; `None` where that cannot be known.
    pub async fn available_space(&self) -> io::Result<Option<u64>> {
        match &self.backend {
            Backend::Local(local) => local.available_space().await,
            Backend::Object(object) => object.available_space().await,
        }
    }

    /// Removes partial uploads untouched for `ttl`.
    pub async fn expire_partials(&self, ttl: Duration) {
        match &self.backend {
            Backend::Local(local) => local.expire_partials(ttl).await,
            Backend::Object(object) => object.expire_partials(ttl).await,
        }
    }
}

// Managing names, metadata and trees: each backend's side is in its own files
// (`local/manage.rs`, `local/walk.rs`, `object/manage.rs`, `object/walk.rs`).
impl Storage {
    /// Makes the directory `name`; with `parents`, its missing parents too, and one already
    /// there is fine (`mkdir -p`). On an object store a directory is a marker object.
    pub async fn make_dir(&self, name: SafeName, parents: bool) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(local) => local.make_dir(name, parents).await,
            Backend::Object(object) => object.make_dir(name, parents).await,
        }
    }

    /// Removes the empty directory `name`.
    pub async fn remove_dir(&self, name: SafeName) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(local) => local.remove_dir(name).await,
            Backend::Object(object) => object.remove_dir(name).await,
        }
    }

    /// Gives `from` the name `to`, which must not exist (never replaces). A link is renamed
    /// itself. In one step, or refused.
    pub async fn rename(&self, from: SafeName, to: SafeName) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(local) => local.rename(from, to).await,
            Backend::Object(object) => object.rename(from, to).await,
        }
    }

    /// Describes `name` (a link inside what is served as what it names, like a listing), with
    /// the SHA-256 if it is known without reading the file.
    pub async fn stat(&self, name: SafeName) -> Result<EntryInfo, StorageError> {
        match &self.backend {
            Backend::Local(local) => local.stat(name).await,
            Backend::Object(object) => object.stat(name).await,
        }
    }

    /// The SHA-256 of the file `name`: known (the local backend's digest cache, an object's
    /// metadata), or read now (the same snapshot a download sends) and then remembered.
    pub async fn digest(&self, name: SafeName) -> Result<[u8; 32], StorageError> {
        use sha2::Digest;
        let text = name.to_string();
        let info = self.stat(name.clone()).await?;
        if let Some(sha256) = info.sha256 {
            return Ok(sha256);
        }
        let file = self.open_read(name).await?;
        if let Some(sha256) = file.known_sha256() {
            return Ok(sha256);
        }
        let mut source = file.source_at(0);
        let mut hasher = sha2::Sha256::new();
        let mut left = file.size;
        while left > 0 {
            let want = usize::try_from(left)
                .map_or(crate::transfer::BLOCK, |l| l.min(crate::transfer::BLOCK));
            let block = source
                .read_block(want)
                .await
                .map_err(|e| StorageError::from_io(&text, e))?;
            let got: u64 = block.iter().map(|b| b.len() as u64).sum();
            if got == 0 {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank");
                return Err(StorageError::from_io(&text, e));
            }
            block.iter().for_each(|b| hasher.update(b));
            left = left.saturating_sub(got);
        }
        let sha256 = hasher.finalize().into();
        // Kept where the backend keeps digests: the next STAT of the unchanged file knows it.
        file.hashed(sha256);
        Ok(sha256)
    }

    /// Deletes `name` and, for a directory, everything below it; returns how many files went.
    /// Links are removed, never followed.
    pub async fn delete_tree(&self, name: SafeName) -> Result<u64, StorageError> {
        match &self.backend {
            Backend::Local(local) => local.delete_tree(name).await,
            Backend::Object(object) => object.delete_tree(name).await,
        }
    }

    /// Walks everything below `dir` (`None`: the top), page by page, parents before children.
    pub async fn walk(&self, dir: Option<SafeName>) -> Result<Walk, StorageError> {
        let inner = match &self.backend {
            Backend::Local(local) => WalkInner::Local(local.walk(dir).await?),
            Backend::Object(object) => WalkInner::Object(object.walk(dir).await?),
        };
        Ok(Walk { inner })
    }
}

/// For the operator's eyes (the log, "Serving ..."), never sent to clients.
impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local(local) => write!(f, "{}", local.root().display()),
            Backend::Object(object) => write!(f, "{object}"),
        }
    }
}
