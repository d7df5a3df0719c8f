//! Reading objects: one streamed range request from the offset asked to the end, pinned to the
//! ETag seen when the file was opened (`If-Match`), so that the bytes sent are all of one
//! version or the read fails. A partial's held prefix reads the same way, across its segments.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};

use crate::transfer::Source;

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
    spans: Arc<[Span]>,
    /// The client's name, for errors.
    name: Arc<str>,
}

impl ObjectContent {
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        key: Path,
        etag: Option<String>,
        len: u64,
        name: &str,
    ) -> Self {
        Self::spans(store, vec![Span { key, etag, len }], name)
    }

    /// The objects of `spans`, one after the other, as one content.
    pub(super) fn spans(store: Arc<dyn ObjectStore>, spans: Vec<Span>, name: &str) -> Self {
        ObjectContent {
            store,
            spans: spans.into(),
            name: name.into(),
        }
    }

    /// The content from byte `offset` on.
    pub fn source_at(&self, offset: u64) -> ObjectSource {
        ObjectSource {
            content: self.clone(),
            pos: offset,
            body: None,
            pending: None,
            left_in_span: 0,
        }
    }
}

/// Reads an [`ObjectContent`] from an offset, one streamed request per object.
pub struct ObjectSource {
    content: ObjectContent,
    /// The next byte to hand out, in the whole content.
    pos: u64,
    /// The response body being read, and what is left of it.
    body: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    /// What the body gave beyond the last read, handed out first.
    pending: Option<Bytes>,
    /// Bytes of the current span not handed out yet (including `pending`).
    left_in_span: u64,
}

impl fmt::Debug for ObjectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectSource")
            .field("name", &self.content.name)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl ObjectSource {
    /// Starts the request for the span holding `pos`; `false` at the end of the content.
    async fn open_body(&mut self) -> io::Result<bool> {
        let mut start = 0u64;
        for span in self.content.spans.iter() {
            if self.pos < start + span.len {
                let from = self.pos - start;
                let options = GetOptions {
                    if_match: span.etag.clone(),
                    range: Some((from..span.len).into()),
                    ..Default::default()
                };
                let got = self
                    .content
                    .store
                    .get_opts(&span.key, options)
                    .await
                    .map_err(|e| self.error(e))?;
                self.body = Some(got.into_stream());
                self.left_in_span = span.len - from;
                return Ok(true);
            }
            start += span.len;
        }
        Ok(false)
    }

    fn error(&self, e: object_store::Error) -> io::Error {
        match e {
            object_store::Error::Precondition { .. } => io::Error::other(format!(
                "'{}' was replaced while being read",
                self.content.name
            )),
            object_store::Error::NotFound { .. } => io::Error::new(
                io::ErrorKind::NotFound,
                format!("'{}' was removed while being read", self.content.name),
            ),
            other => io::Error::other(other),
        }
    }
}

impl Source for ObjectSource {
    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0usize;
        while got < max {
            if self.body.is_none() && !self.open_body().await? {
                break;
            }
            let next = match self.pending.take() {
                Some(chunk) => Some(Ok(chunk)),
                None => self.body.as_mut().expect("opened above").next().await,
            };
            match next {
                Some(Ok(mut chunk)) => {
                    let room = (max - got).min(usize::try_from(self.left_in_span).unwrap_or(max));
                    if chunk.len() > room {
                        // More than asked: the rest waits for the next call.
                        self.pending = Some(chunk.split_off(room));
                    }
                    got += chunk.len();
                    self.pos += chunk.len() as u64;
                    self.left_in_span -= chunk.len() as u64;
                    if !chunk.is_empty() {
                        pieces.push(chunk);
                    }
                    if self.left_in_span == 0 {
                        self.body = None;
                        self.pending = None;
                    }
                }
                Some(Err(e)) => {
                    self.body = None;
                    return Err(self.error(e));
                }
                None => {
                    self.body = None;
                    if self.left_in_span > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("'{}' ended early", self.content.name),
                        ));
                    }
                }
            }
        }
        Ok(pieces)
    }
}
