//! Reading objects: ranges of [`RANGE`] bytes, [`RANGES_AT_ONCE`] requested at a time and handed
//! out in order, each pinned to the ETag seen when the file was opened (`If-Match`), so that the
//! bytes sent are all of one version or the read fails. One streamed GET is as fast as the
//! store's single stream; several in parallel are what the AWS CLI does, and what SeaweedFS
//! needs to serve a file at the speed of its disks. Memory: the ranges in flight, per reader.
//! Every range takes its share
//! of the server's [`Buffers`] before it is asked for and keeps it until it is handed out.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryFutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};

use super::buffers::{Buffers, Held};
use super::Store;
use crate::transfer::Source;

/// The ranges of a read, in order, each with its share of the budget.
type Ranges = BoxStream<'static, io::Result<(VecDeque<Bytes>, Held)>>;

/// Bytes per range request.
const RANGE: u64 = 8 << 20;
/// Range requests in flight per reader.
const RANGES_AT_ONCE: usize = 4;

/// One object's bytes `[0, len)` as a stretch of what is read.
#[derive(Debug, Clone)]
pub(super) struct Span {
    pub key: Path,
    /// The version every request is pinned to (`None` where the store gives none).
    pub etag: Option<String>,
    pub len: u64,
}

/// An object opened for reading, at the version seen when it was opened.
#[derive(Debug, Clone)]
pub struct ObjectContent {
    store: Arc<dyn ObjectStore>,
    buffers: Buffers,
    spans: Arc<[Span]>,
    /// The client's name, for errors.
    name: Arc<str>,
    /// The SHA-256 the object carries in its metadata, read with the version pinned.
    sha256: Option<[u8; 32]>,
    /// Where to record a SHA-256 computed while sending it ([`ObjectContent::hashed`]).
    records: Option<Arc<super::Inner>>,
}

impl ObjectContent {
    pub(super) fn new(
        store: &Store,
        key: Path,
        etag: Option<String>,
        len: u64,
        name: &str,
    ) -> Self {
        Self::spans(store, vec![Span { key, etag, len }], name)
    }

    /// The objects of `spans`, one after the other, as one content.
    pub(super) fn spans(store: &Store, spans: Vec<Span>, name: &str) -> Self {
        ObjectContent {
            store: store.objects.clone(),
            buffers: store.buffers.clone(),
            spans: spans.into(),
            name: name.into(),
            sha256: None,
            records: None,
        }
    }

    /// The same, its SHA-256 recorded in `inner`'s digest records once a reader computed it.
    pub(super) fn remembered_by(mut self, inner: Arc<super::Inner>) -> Self {
        self.records = Some(inner);
        self
    }

    /// Records that the version read has the SHA-256 `sha256` (a reader computed it): the next
    /// reader of that version need not ([`super::digests`]).
    pub fn hashed(&self, sha256: [u8; 32]) {
        let (Some(inner), [span]) = (&self.records, &self.spans[..]) else {
            return;
        };
        let Some(etag) = span.etag.clone() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (inner, name) = (inner.clone(), self.name.clone());
            runtime.spawn(async move {
                super::digests::remember(&inner, &name, &etag, sha256).await;
            });
        }
    }

    /// The same, known to have the SHA-256 `sha256`.
    pub(super) fn with_sha256(mut self, sha256: Option<[u8; 32]>) -> Self {
        self.sha256 = sha256;
        self
    }

    /// The SHA-256 of the whole content, if known without reading it.
    pub fn known_sha256(&self) -> Option<[u8; 32]> {
        self.sha256
    }

    /// The content from byte `offset` on.
    pub fn source_at(&self, offset: u64) -> ObjectSource {
        ObjectSource {
            content: self.clone(),
            pos: offset,
            ranges: None,
            current: VecDeque::new(),
            held: None,
        }
    }

    /// The range requests for everything from `pos` on, in order, [`RANGES_AT_ONCE`] at a time.
    fn ranges_from(&self, pos: u64) -> Ranges {
        let mut ranges = Vec::new();
        let mut start = 0u64;
        for span in self.spans.iter() {
            let end = start + span.len;
            let mut at = pos.max(start);
            while at < end {
                let to = (at + RANGE).min(end);
                ranges.push((span.clone(), at - start, to - start));
                at = to;
            }
            start = end;
        }
        let (store, name, buffers) = (self.store.clone(), self.name.clone(), self.buffers.clone());
        futures_util::stream::iter(ranges)
            // Shares are taken one after the other, in order (`then`), so a reader never holds
            // later ranges' shares while waiting for an earlier one's.
            .then(move |(span, from, to)| {
                let buffers = buffers.clone();
                async move { (buffers.reserve(to - from).await, span, from, to) }
            })
            .map(move |(held, span, from, to)| {
                fetch(store.clone(), name.clone(), span, from, to).map_ok(|range| (range, held))
            })
            .buffered(RANGES_AT_ONCE)
            .boxed()
    }
}

/// Bytes `[from, to)` of `span`, whole.
async fn fetch(
    store: Arc<dyn ObjectStore>,
    name: Arc<str>,
    span: Span,
    from: u64,
    to: u64,
) -> io::Result<VecDeque<Bytes>> {
    let options = GetOptions {
        if_match: span.etag.clone(),
        range: Some((from..to).into()),
        ..Default::default()
    };
    let got = store
        .get_opts(&span.key, options)
        .await
        .map_err(|e| read_error(&name, e))?;
    let pieces: VecDeque<Bytes> = got
        .into_stream()
        .try_collect()
        .await
        .map_err(|e| read_error(&name, e))?;
    let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    if len != to - from {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("'{name}' ended early"),
        ));
    }
    Ok(pieces)
}

fn read_error(name: &str, e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::Precondition { .. } => {
            io::Error::other(format!("'{name}' was replaced while being read"))
        }
        object_store::Error::NotFound { .. } => io::Error::new(
            io::ErrorKind::NotFound,
            format!("'{name}' was removed while being read"),
        ),
        other => io::Error::other(other),
    }
}

/// Reads an [`ObjectContent`] from an offset.
pub struct ObjectSource {
    content: ObjectContent,
    /// The next byte to hand out, in the whole content.
    pos: u64,
    /// The ranges requested, from `pos` on (`None`: not begun, or restarted after an error).
    ranges: Option<Ranges>,
    /// What the current range still holds.
    current: VecDeque<Bytes>,
    /// The current range's share of the budget.
    held: Option<Held>,
}

impl fmt::Debug for ObjectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectSource")
            .field("name", &self.content.name)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Source for ObjectSource {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0usize;
        while got < max {
            let Some(mut piece) = self.current.pop_front() else {
                // The range is all handed out: its share goes back before the next is waited
                // for, so a reader never waits for the budget while holding some of it idle.
                self.held = None;
                if self.ranges.is_none() {
                    self.ranges = Some(self.content.ranges_from(self.pos));
                }
                match self.ranges.as_mut().expect("made above").next().await {
                    Some(Ok((range, held))) => {
                        self.current = range;
                        self.held = Some(held);
                    }
                    Some(Err(e)) => {
                        self.ranges = None;
                        return Err(e);
                    }
                    // The end of the content.
                    None => break,
                }
                continue;
            };
            if piece.len() > max - got {
                // More than asked: the rest waits for the next call.
                self.current.push_front(piece.split_off(max - got));
            }
            got += piece.len();
            self.pos += piece.len() as u64;
            if !piece.is_empty() {
                pieces.push(piece);
            }
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload};
    use std::time::Duration;

    /// Everything `content` holds from 0, a block at a time.
    async fn read_all(content: ObjectContent) -> Vec<u8> {
        let mut source = content.source_at(0);
        let mut got = Vec::new();
        loop {
            let pieces = source.read_block(1 << 20).await.unwrap();
            if pieces.is_empty() {
                return got;
            }
            for piece in pieces {
                got.extend_from_slice(&piece);
            }
        }
    }

    #[tokio::test]
    async fn readers_sharing_a_budget_of_one_range_all_finish_with_their_bytes() {
        let mut store = Store::in_memory();
        store.buffers = Buffers::new(RANGE + 1);
        let len = 3 * RANGE + 5;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let key = Path::from("f");
        store
            .objects
            .put(&key, PutPayload::from(data.clone()))
            .await
            .unwrap();
        let content = ObjectContent::new(&store, key, None, len, "f");
        let readers: Vec<_> = (0..6)
            .map(|_| tokio::spawn(read_all(content.clone())))
            .collect();
        for reader in readers {
            let got = tokio::time::timeout(Duration::from_secs(60), reader)
                .await
                .expect("readers sharing one range of budget must not wait forever")
                .unwrap();
            assert!(got == data, "a reader got other bytes");
        }
        assert_eq!(store.buffers.free(), Buffers::new(RANGE + 1).free());
    }
}
