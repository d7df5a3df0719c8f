//! Uploading one file, in one direction. A small file ([`SMALL_FILE`](crate::protocol::SMALL_FILE)) goes in one round trip:
//! the body follows the request at once. A larger one asks to resume: the server says which
//! pieces it holds of this client's earlier attempt ([`crate::pieces`]), the file is compared
//! with them as it is now, and the rest follows; a server that does not know resuming gets the
//! plain exchange. Either way the server stores the file only after its SHA-256 of what arrived
//! matched ours, and says so with `Done`. `put -` first keeps stdin in a temp file, then sends
//! that as any file ([`Client::upload_stdin`] says why).

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use quinn::{RecvStream, SendStream};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::manage::lacks;
use super::progress::{self, Counted};
use super::resume::Leaves;
use super::stream::{ready, response, safe, server_reason, unexpected};
use super::{Client, ClientError, Keep, TransferReport};
use crate::compress::Compressing;
use crate::paths::SafeName;
use crate::pieces::Pieces;
use crate::protocol::{
    close, write_frame, ErrorCode, FrameError, Request, Response, Resume, Trailer,
};
use crate::rate::{take_all, Limited, Limiter};
use crate::transfer::{copy_continuing, CopyError, FileSource, LARGE_BLOCK};
use opened::{open_upload, spool_stdin, Opened};

mod opened;

impl Client {
    /// Uploads the local file `path` as `name`. The server stores it only after its own SHA-256
    /// of what arrived matches ours.
    pub async fn upload(
        &self,
        path: &Path,
        name: &str,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        self.upload_keeping(path, name, Keep::default(), progress)
            .await
    }

    /// [`Client::upload`], the stored file keeping what `keep` asks of the local one (its
    /// time, its permission bits), from the moment it appears. A server that cannot is named
    /// as such.
    pub async fn upload_keeping(
        &self,
        path: &Path,
        name: &str,
        keep: Keep,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let result = self.explain(self.upload_inner(path, name, keep, progress).await);
        match keep.any() {
            true => result.map_err(|e| lacks("keeping times or permissions (UPLOAD -p)", e)),
            false => result,
        }
    }

    async fn upload_inner(
        &self,
        path: &Path,
        name: &str,
        keep: Keep,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let started = Instant::now();
        let name = safe(name)?;
        let opened = open_upload(path, keep).await?;
        self.upload_opened(opened, path, name, started, progress)
            .await
    }

    /// Uploads what stdin gives until it ends (`put - --name NAME`) as `name`.
    ///
    /// The protocol announces an upload's exact size first, so that a server refuses one too
    /// large, or one that would not fit, before any data moves; stdin's size is not known until
    /// it ends. So what it gives is first kept in a private temp file (unnamed, in `TMPDIR`: gone
    /// with the process, however it ends), then sent as any file is: verified by the server, in
    /// one round trip when small, resumable when large. The cost is the disk space of the data
    /// in `TMPDIR`, and that the sending starts when stdin ends; streaming it instead would need
    /// a new exchange and a storage contract without the size up front.
    pub async fn upload_stdin(
        &self,
        name: &str,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let started = Instant::now();
        let name = safe(name)?;
        let opened = spool_stdin(progress).await?;
        progress::transferring(progress, opened.size, 0);
        let path = Path::new("-");
        self.explain(
            self.upload_opened(opened, path, name, started, progress)
                .await,
        )
    }

    /// Uploads a file already opened and measured; `path` is how it is named in the report and
    /// in errors.
    async fn upload_opened(
        &self,
        opened: Opened,
        path: &Path,
        name: SafeName,
        started: Instant,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        // A file sent in pieces leaves what the server received in its partial if cancelled.
        let watch = opened.whole.is_none().then(|| {
            self.running.watch(Leaves::Upload {
                name: name.to_string(),
            })
        });
        let result = self
            .send_opened(&opened, path, &name, started, progress)
            .await;
        if let Some(watch) = watch {
            watch.done();
        }
        result
    }

    async fn send_opened(
        &self,
        opened: &Opened,
        path: &Path,
        name: &SafeName,
        started: Instant,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let size = opened.size;
        progress.set_length(size);
        let (from, sent, mut recv) = match &opened.whole {
            // Nothing a retry could keep, so the plain exchange, with the body sent at once
            // rather than after the server's Ready: one round trip and one read per file, what
            // many small files, above all over a long path, pay.
            Some(body) => {
                let (mut send, mut recv) = self.open(&plain_request(name, opened)).await?;
                take_all(&self.limits, body.len()).await;
                let sent = send_whole(&mut send, &mut recv, body, self.stall).await?;
                let _ = send.finish();
                progress.inc(size);
                ready(&mut recv, self.stall).await?;
                (0, sent, recv)
            }
            None => match self
                .upload_resumable_any(path, name, opened, progress)
                .await?
            {
                Some(resumed) => resumed,
                // A server without resuming: the plain exchange, from the start of the file.
                None => {
                    let (mut send, mut recv) = self.open(&plain_request(name, opened)).await?;
                    ready(&mut recv, self.stall).await?;
                    let body = Body {
                        file: opened,
                        from: 0,
                        hasher: Sha256::default(),
                        path,
                        stall: self.stall,
                        limits: &self.limits,
                        compressed: false,
                    };
                    let sent = send_body(body, &mut send, &mut recv, progress).await?;
                    let _ = send.finish();
                    (0, sent, recv)
                }
            },
        };
        match response(&mut recv, self.stall).await? {
            Response::Done { sha256 } if sha256 == sent => Ok(TransferReport {
                name: name.to_string(),
                path: path.to_path_buf(),
                bytes: size,
                sha256: sent,
                elapsed: started.elapsed(),
                resumed_from: from,
            }),
            Response::Done { .. } => Err(ClientError::HashMismatch(name.to_string())),
            other => Err(unexpected(&other)),
        }
    }

    /// The resumable exchange, compressed if asked (`-C`) and the server can: a server without
    /// compression answers Unsupported, and the uncompressed exchange follows.
    async fn upload_resumable_any(
        &self,
        path: &Path,
        name: &SafeName,
        opened: &Opened,
        progress: &ProgressBar,
    ) -> Result<Option<(u64, [u8; 32], RecvStream)>, ClientError> {
        if self.compress {
            let compressed = self
                .upload_resumable(path, name, opened, true, progress)
                .await?;
            if compressed.is_some() {
                return Ok(compressed);
            }
        }
        self.upload_resumable(path, name, opened, false, progress)
            .await
    }

    /// The resumable exchange up to the server's verdict: `None` if the server does not know it.
    /// Returns where the body started, the whole file's hash, and the stream for the verdict.
    async fn upload_resumable(
        &self,
        path: &Path,
        name: &SafeName,
        opened: &Opened,
        compressed: bool,
        progress: &ProgressBar,
    ) -> Result<Option<(u64, [u8; 32], RecvStream)>, ClientError> {
        let size = opened.size;
        let request = match (compressed, opened.keep) {
            (true, meta) => Request::ResumeUploadCompressed {
                name: name.to_string(),
                size,
                meta,
            },
            (false, None) => Request::ResumeUpload {
                name: name.to_string(),
                size,
            },
            (false, Some(meta)) => Request::ResumeUploadMeta {
                name: name.to_string(),
                size,
                meta,
            },
        };
        let (mut send, mut recv) = self.open(&request).await?;
        let pieces = match response(&mut recv, self.stall).await {
            Ok(Response::Held { chunk, hashes }) => Pieces { chunk, hashes },
            Err(ClientError::Remote {
                code: ErrorCode::Unsupported,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
            Ok(other) => return Err(unexpected(&other)),
        };
        pieces
            .check(size)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        // Compare what the server holds with this file as it is now: a change since the last
        // attempt makes them differ from that piece on, and the rest is sent again. Shown as
        // its own phase: it reads as much of the file as the server holds.
        if !pieces.is_empty() {
            progress::checking(progress, pieces.len());
        }
        let mut ours = Counted {
            inner: FileSource::new(opened.file.clone(), 0),
            bar: progress,
        };
        let before = pieces
            .agree(&mut ours, size)
            .await
            .map_err(ClientError::local(path))?;
        let from = before.end;
        write_frame(&mut send, &Resume { from }).await?;
        progress::transferring(progress, size, from);
        let body = Body {
            file: opened,
            from,
            hasher: before.state,
            path,
            stall: self.stall,
            limits: &self.limits,
            compressed,
        };
        let sent = send_body(body, &mut send, &mut recv, progress).await?;
        let _ = send.finish();
        Ok(Some((from, sent, recv)))
    }
}

fn plain_request(name: &SafeName, opened: &Opened) -> Request {
    let (name, size) = (name.to_string(), opened.size);
    match opened.keep {
        None => Request::Upload { name, size },
        Some(meta) => Request::UploadMeta { name, size, meta },
    }
}

/// Sends a body held in memory, then its trailer; returns its SHA-256. A write that fails
/// because the server stopped reading is reported with the server's reason.
async fn send_whole(
    send: &mut SendStream,
    recv: &mut RecvStream,
    body: &[u8],
    stall: Duration,
) -> Result<[u8; 32], ClientError> {
    let sha256: [u8; 32] = Sha256::digest(body).into();
    let write = async {
        match AsyncWriteExt::write_all(send, body).await {
            Ok(()) => write_frame(send, &Trailer { sha256 }).await,
            Err(e) => Err(FrameError::from(e)),
        }
    };
    // Less than a piece, so one stall timeout for all of it.
    let Ok(written) = tokio::time::timeout(stall, write).await else {
        return Err(ClientError::Stalled(stall));
    };
    match written {
        Ok(()) => Ok(sha256),
        Err(e) => Err(server_reason(recv, e.into(), stall).await),
    }
}

/// What of a file to send.
struct Body<'a> {
    file: &'a Opened,
    /// The first byte to send.
    from: u64,
    /// The SHA-256 state of the file before `from`.
    hasher: Sha256,
    /// The local path, for errors.
    path: &'a Path,
    /// How long each block may take to be taken by the server.
    stall: Duration,
    /// Bandwidth limits the blocks are paced by.
    limits: &'a [Limiter],
    /// The body goes compressed ([`crate::compress`]).
    compressed: bool,
}

/// Sends the file from `body.from` to its measured size, then the trailer with the whole file's
/// hash, which it returns. The caller finishes the stream. A write that fails because the server
/// stopped reading is reported with the server's reason.
async fn send_body(
    body: Body<'_>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    progress: &ProgressBar,
) -> Result<[u8; 32], ClientError> {
    let mut file = FileSource::new(body.file.file.clone(), body.from).in_blocks_of(LARGE_BLOCK);
    let mut source = Limited::new(&mut file, body.limits);
    let len = body.file.size - body.from;
    let stall = body.stall;
    let copied = match body.compressed {
        true => {
            let hint = body.path.to_string_lossy();
            let mut packed = Compressing::new(&mut *send, &hint);
            copy_continuing(
                body.hasher,
                &mut source,
                &mut packed,
                len,
                Some(stall),
                progress,
            )
            .await
        }
        false => copy_continuing(body.hasher, &mut source, send, len, Some(stall), progress).await,
    };
    let sent = match copied {
        Ok(digest) => digest,
        Err(CopyError::Write(e)) => {
            // The server stopped reading: it has said why on the other half of the stream.
            let fallback = ClientError::Interrupted(e.to_string());
            return Err(server_reason(recv, fallback, stall).await);
        }
        Err(CopyError::Stalled(limit)) => {
            let _ = send.reset(close::TOO_SLOW.into());
            return Err(ClientError::Stalled(limit));
        }
        Err(e) => {
            let _ = send.reset(close::ABORTED.into());
            return Err(ClientError::Local {
                path: body.path.to_path_buf(),
                source: io::Error::other(format!("changed while it was being read ({e})")),
            });
        }
    };
    let trailer = Trailer { sha256: sent };
    match tokio::time::timeout(stall, write_frame(send, &trailer)).await {
        Ok(Ok(())) => {}
        // As above: a refusal on the last block shows up here; the reason is on `recv`.
        Ok(Err(e)) => return Err(server_reason(recv, e.into(), stall).await),
        Err(_) => return Err(ClientError::Stalled(stall)),
    }
    Ok(sent)
}
