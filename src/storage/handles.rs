//! What the storage hands out for an operation in progress: a directory's [`Listing`], a tree's
//! [`Walk`], a file opened for reading ([`ReadFile`] and its [`ReadStream`]), an [`Upload`] and
//! a resumable upload's [`Partial`] (with its [`WriteStream`]). Each is an enum over the
//! backends, as [`super::Storage`] is, so that `server/` names no backend.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use sha2::Sha256;
use tokio::sync::Notify;

use super::{local, object, StorageError};
use crate::protocol::{Entry, EntryInfo, FileMeta};
use crate::transfer::{Block, FileSink, FileSource, Sink, Source};

/// A tree being walked: pages of entries, each named by its path below the walked directory.
#[derive(Debug)]
pub struct Walk {
    pub(super) inner: WalkInner,
}

#[derive(Debug)]
pub(super) enum WalkInner {
    Local(local::LocalWalk),
    Object(object::ObjectWalk),
}

impl Walk {
    /// Up to `max` more entries; an empty page means the walk is complete.
    pub async fn next_page(&mut self, max: usize) -> Result<Vec<EntryInfo>, StorageError> {
        match &mut self.inner {
            WalkInner::Local(walk) => walk.next_page(max).await,
            WalkInner::Object(walk) => walk.next_page(max).await,
        }
    }
}

/// A directory being listed: pages of entries in name order.
#[derive(Debug)]
pub struct Listing {
    pub(super) inner: ListingInner,
}

#[derive(Debug)]
pub(super) enum ListingInner {
    Local(local::LocalListing),
    Object(object::ObjectListing),
}

impl Listing {
    /// Up to `max` more entries; an empty page means the listing is complete.
    pub async fn next_page(&mut self, max: usize) -> Result<Vec<Entry>, StorageError> {
        match &mut self.inner {
            ListingInner::Local(listing) => listing.next_page(max).await,
            ListingInner::Object(listing) => listing.next_page(max).await,
        }
    }
}

/// A file opened for reading: its size and time when opened, and its content as then.
#[derive(Debug)]
pub struct ReadFile {
    /// Size when opened: exactly this many bytes are sent.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: Option<u64>,
    pub(super) content: Content,
    /// What the backend knows of the content's SHA-256, and where to tell it one.
    pub(super) digest: Option<local::Ticket>,
}

/// Where a [`ReadFile`]'s bytes come from.
#[derive(Debug, Clone)]
pub(super) enum Content {
    /// An open file: its content stays the one opened even if the name is replaced.
    File(Arc<std::fs::File>),
    /// An object at the version opened: every read is pinned to it.
    Object(object::ObjectContent),
}

impl ReadFile {
    /// The SHA-256 of the whole content, when the backend can vouch for it without reading it:
    /// sending the file then needs no hashing. The receiver verifies it all the same.
    pub fn known_sha256(&self) -> Option<[u8; 32]> {
        match &self.content {
            Content::Object(content) => content.known_sha256(),
            Content::File(_) => self.digest.as_ref().and_then(|d| d.known),
        }
    }

    /// Tells the backend the SHA-256 of the whole content, computed while sending it, so that
    /// a later reader of the same unchanged file need not compute it.
    pub fn hashed(&self, sha256: [u8; 32]) {
        if let Some(digest) = &self.digest {
            digest.hashed(sha256);
        }
        if let Content::Object(content) = &self.content {
            content.hashed(sha256);
        }
    }

    /// The content from byte `offset` on.
    pub fn source_at(&self, offset: u64) -> ReadStream {
        match &self.content {
            Content::File(file) => ReadStream::File(FileSource::new(file.clone(), offset)),
            Content::Object(content) => ReadStream::Object(content.source_at(offset)),
        }
    }
}

/// Bytes read from storage, for the transfer layer.
#[derive(Debug)]
pub enum ReadStream {
    /// From a local file.
    File(FileSource),
    /// From objects.
    Object(object::ObjectSource),
}

impl ReadStream {
    /// Hands on `block` bytes at a time where that is the reader's choice (a local file's:
    /// see [`Source::hand_off`]); objects arrive as the store sends them.
    pub fn in_blocks_of(self, block: usize) -> Self {
        match self {
            ReadStream::File(source) => ReadStream::File(source.in_blocks_of(block)),
            object => object,
        }
    }
}

impl Source for ReadStream {
    fn hand_off(&self) -> usize {
        match self {
            ReadStream::File(source) => source.hand_off(),
            ReadStream::Object(source) => source.hand_off(),
        }
    }

    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        match self {
            ReadStream::File(source) => source.read_block(max).await,
            ReadStream::Object(source) => source.read_block(max).await,
        }
    }
}

/// Bytes written to storage's staging, for the transfer layer.
#[derive(Debug)]
pub enum WriteStream {
    /// Into a local file.
    File(FileSink),
    /// Into a staged object upload.
    Object(object::ObjectSink),
}

impl Sink for WriteStream {
    fn stall_unit(&self) -> usize {
        match self {
            WriteStream::File(sink) => sink.stall_unit(),
            WriteStream::Object(sink) => sink.stall_unit(),
        }
    }

    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        match self {
            WriteStream::File(sink) => sink.write_block(block).await,
            WriteStream::Object(sink) => sink.write_block(block).await,
        }
    }
}

/// An upload being received: staged privately, visible under its name only after
/// [`Upload::commit`], gone if dropped before.
#[derive(Debug)]
pub struct Upload {
    pub(super) inner: UploadInner,
}

#[derive(Debug)]
pub(super) enum UploadInner {
    Local(local::LocalUpload),
    Object(object::ObjectUpload),
}

impl Upload {
    /// Where the body goes, from its start.
    pub fn sink(&self) -> WriteStream {
        match &self.inner {
            UploadInner::Local(upload) => upload.sink(),
            UploadInner::Object(upload) => upload.sink(),
        }
    }

    /// Makes the received body, whose SHA-256 the caller checked is `sha256`, durable under its
    /// name. A failure leaves the old content in place.
    pub async fn commit(self, sha256: [u8; 32]) -> Result<(), StorageError> {
        match self.inner {
            UploadInner::Local(upload) => upload.commit(sha256).await,
            UploadInner::Object(upload) => upload.commit(sha256).await,
        }
    }

    /// Gives the file `meta` (its time, its permission bits) as it is committed.
    pub fn set_meta(&mut self, meta: FileMeta) {
        match &mut self.inner {
            UploadInner::Local(upload) => upload.set_meta(meta),
            UploadInner::Object(upload) => upload.set_meta(meta),
        }
    }

    /// [`Upload::commit`] for a small body received whole and verified: writes and commits it in
    /// one step (for a small file the hand-offs between threads cost more than the work).
    pub async fn commit_whole(
        self,
        body: Vec<Bytes>,
        sha256: [u8; 32],
    ) -> Result<(), StorageError> {
        match self.inner {
            UploadInner::Local(upload) => upload.commit_whole(body, sha256).await,
            UploadInner::Object(upload) => upload.commit_whole(body, sha256).await,
        }
    }
}

/// A resumable upload's partial: what one client sent earlier of one version of one file.
#[derive(Debug)]
pub struct Partial {
    /// Bytes held (after [`Partial::keep`]: up to where this attempt continues).
    pub held: u64,
    pub(super) inner: PartialInner,
}

#[derive(Debug)]
pub(super) enum PartialInner {
    Local(local::LocalPartial),
    Object(object::ObjectPartial),
}

impl Partial {
    /// The held bytes from the start, to hash, where [`Partial::pieces`] does not know them.
    pub fn source(&self) -> ReadStream {
        match &self.inner {
            PartialInner::Local(partial) => partial.source(),
            PartialInner::Object(partial) => partial.source(),
        }
    }

    /// The resume pieces of what is held, where the backend knows them without reading it (the
    /// object backend: the parts of an open upload cannot be read back, so their hashes were
    /// kept as they were stored). `None`: hash [`Partial::source`].
    pub fn pieces(&self) -> Option<crate::pieces::Pieces> {
        match &self.inner {
            PartialInner::Local(_) => None,
            PartialInner::Object(partial) => partial.pieces(),
        }
    }

    /// The whole file's SHA-256 state over the first `from` bytes, where the backend knows it
    /// without reading them (at a piece [`Partial::pieces`] offered). `None`: read them.
    pub fn state_at(&self, from: u64) -> Option<Sha256> {
        match &self.inner {
            PartialInner::Local(_) => None,
            PartialInner::Object(partial) => partial.state_at(from),
        }
    }

    /// Offers the backend the hashing of the rest of the body, continuing `state` (the state
    /// over the first [`Partial::held`] bytes, after [`Partial::keep`]): a backend that must
    /// hash what it stores anyway (the object backend's pieces) does the whole file's hash in
    /// the same pass, and [`Partial::digest`] gives it. Returns `state` back if the caller is
    /// to hash.
    pub fn take_hashing(&mut self, state: Sha256) -> Option<Sha256> {
        match &mut self.inner {
            PartialInner::Local(_) => Some(state),
            PartialInner::Object(partial) => partial.take_hashing(state),
        }
    }

    /// The whole file's SHA-256 of what was written, once all of it was, for a backend that
    /// took the hashing ([`Partial::take_hashing`]).
    pub async fn digest(&self) -> Result<[u8; 32], StorageError> {
        match &self.inner {
            PartialInner::Local(_) => Err(StorageError::Io {
                name: String::new(),
                source: io::Error::other("this backend does not hash what it stores"),
            }),
            PartialInner::Object(partial) => partial.digest().await,
        }
    }

    /// Keeps the first `from` bytes (at most [`Partial::held`]) and drops the rest.
    pub async fn keep(&mut self, from: u64) -> Result<(), StorageError> {
        let from = from.min(self.held);
        match &mut self.inner {
            PartialInner::Local(partial) => partial.keep(from).await?,
            PartialInner::Object(partial) => partial.keep(from).await?,
        }
        self.held = from;
        Ok(())
    }

    /// Where the rest of the body goes: right after what is held.
    pub fn sink(&self) -> WriteStream {
        match &self.inner {
            PartialInner::Local(partial) => partial.sink(self.held),
            PartialInner::Object(partial) => partial.sink(self.held),
        }
    }

    /// Notified when a newer attempt of the same client claims this partial: let go then.
    pub fn superseded(&self) -> Arc<Notify> {
        match &self.inner {
            PartialInner::Local(partial) => partial.claim(),
            PartialInner::Object(partial) => partial.claim(),
        }
    }

    /// Gives the file `meta` as it is committed, as [`Upload::set_meta`] does. A backend that
    /// fixes the metadata when it begins storing may have to drop what it holds
    /// ([`Partial::held`] says what is left).
    pub fn set_meta(&mut self, meta: FileMeta) {
        match &mut self.inner {
            PartialInner::Local(partial) => partial.set_meta(meta),
            PartialInner::Object(partial) => self.held = partial.set_meta(meta),
        }
    }

    /// Makes the verified whole file durable under its name, as [`Upload::commit`] does.
    pub async fn commit(self, sha256: [u8; 32]) -> Result<(), StorageError> {
        match self.inner {
            PartialInner::Local(partial) => partial.commit(sha256).await,
            PartialInner::Object(partial) => partial.commit(sha256).await,
        }
    }

    /// Throws the partial away (its data proved wrong).
    pub async fn discard(self) {
        match self.inner {
            PartialInner::Local(partial) => partial.discard().await,
            PartialInner::Object(partial) => partial.discard().await,
        }
    }
}
