//! Downloading one file, in one direction: the request, the pieces a local partial may already
//! hold ([`crate::pieces`]), the body into the partial, the whole file's SHA-256 against the
//! trailer, and only then the partial renamed to its real name.
//!
//! The resumable exchange comes first; a server that does not know it answers `Unsupported`, and
//! the plain exchange follows, through a temp file beside the target that a failure removes.
//! Both end in `receive`'s [`receive_verified`] and [`commit_partial`]; the plain one through
//! [`receive_into_temp`], which `qft get LINK` takes too (over a WebTransport stream).
//!
//! `get NAME -o -` has no partial to keep: [`Client::download_to_writer`] runs the plain
//! exchange straight into stdout and can only say, at the end, whether what it wrote was right.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::progress::{self, Counted};
use super::receive::{blocking, receive_into_temp, receive_verified, Body, Header, Pace, Target};
use super::resume::{commit_partial, open_partial, partial_path, Leaves};
use super::stream::{expect_end, response, safe, unexpected, within};
use super::{Client, ClientError, Keep, TransferReport};
use crate::paths::SafeName;
use crate::pieces::Pieces;
use crate::protocol::{
    read_frame, write_frame, ErrorCode, Request, Response, Resume, Trailer, MIN_CHUNK,
};
use crate::transfer::{copy_hashed, CopyError, FileSource, Writer};

impl Client {
    /// Downloads `name` to `dest`. The data goes to a hidden partial beside `dest`, which
    /// becomes `dest` only after the SHA-256 matched; an existing `dest` is replaced only with
    /// `overwrite`. An interrupted download keeps its partial, and the next one resumes it.
    pub async fn download(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        self.download_keeping(name, dest, overwrite, Keep::default(), progress)
            .await
    }

    /// [`Client::download`], the local file keeping what `keep` asks of the server's (its
    /// time, its permission bits, which take a STAT first), set before it takes its name.
    pub async fn download_keeping(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        keep: Keep,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let result = self
            .download_inner(name, dest, overwrite, keep, progress)
            .await;
        self.explain(result)
    }

    async fn download_inner(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        keep: Keep,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError> {
        let started = Instant::now();
        let name = safe(name)?;
        if !overwrite && dest.symlink_metadata().is_ok() {
            return Err(ClientError::Exists(dest.to_path_buf()));
        }
        let mode = match keep.perms {
            true => self.stat(name.as_str(), false).await?.mode,
            false => None,
        };
        let into = Target {
            dest,
            overwrite,
            keep,
            mode,
        };
        let (size, resumed_from, sha256) =
            match self.download_resumable(&name, into, progress).await? {
                Some(done) => done,
                None => self.download_plain(&name, into, progress).await?,
            };
        Ok(TransferReport {
            name: name.to_string(),
            path: dest.to_path_buf(),
            bytes: size,
            sha256,
            elapsed: started.elapsed(),
            resumed_from,
        })
    }

    /// The resumable exchange: `None` if the server does not know it. Returns the size, where
    /// the body started, and the verified SHA-256.
    async fn download_resumable(
        &self,
        name: &SafeName,
        into: Target<'_>,
        progress: &ProgressBar,
    ) -> Result<Option<(u64, u64, [u8; 32])>, ClientError> {
        // Compressed if asked (`-C`); a server without it answers Unsupported, and the
        // uncompressed exchange follows.
        for compressed in [self.compress, false] {
            let part = partial_path(into.dest);
            let (file, have, created) = open_partial(&part, into.dest)?;
            let watch = self.running.watch(Leaves::Download {
                part: part.clone(),
                dest: into.dest.to_path_buf(),
            });
            let opened = Opened {
                part: &part,
                file: Arc::new(file),
                have,
                created,
            };
            let result = self
                .resume_into(name, into, opened, compressed, progress)
                .await;
            // Ended by itself, however it ended: only a dropped (cancelled) download stays
            // watched.
            watch.done();
            match result {
                Ok(None) if compressed => continue,
                result => return result,
            }
        }
        Ok(None)
    }

    /// [`Client::download_resumable`] once the partial is open.
    async fn resume_into(
        &self,
        name: &SafeName,
        into: Target<'_>,
        opened: Opened<'_>,
        compressed: bool,
        progress: &ProgressBar,
    ) -> Result<Option<(u64, u64, [u8; 32])>, ClientError> {
        let Opened {
            part,
            file,
            have,
            created,
        } = opened;
        // A partial of whole pieces is checked before anything moves (the server hashes its
        // file's first pieces, then this side its own): say so, or a large one means seconds
        // of nothing on the screen.
        if have >= MIN_CHUNK {
            progress::checking(progress, have);
        }
        let request = match compressed {
            true => Request::ResumeDownloadCompressed {
                name: name.to_string(),
                have,
            },
            false => Request::ResumeDownload {
                name: name.to_string(),
                have,
            },
        };
        // Until data arrives, a failure leaves no trace: a partial made by this attempt goes.
        let forget = |e: ClientError| {
            if created {
                let _ = std::fs::remove_file(part);
            }
            e
        };
        let (mut send, mut recv) = self.open(&request).await.map_err(forget)?;
        let (size, modified, pieces) = match response(&mut recv, self.stall).await {
            Ok(Response::Prefix {
                size,
                modified,
                chunk,
                hashes,
            }) => (size, modified, Pieces { chunk, hashes }),
            Err(ClientError::Remote {
                code: ErrorCode::Unsupported,
                ..
            }) => {
                forget(ClientError::Protocol(String::new()));
                return Ok(None);
            }
            // The file is gone or is not a file any more: its partial is of no further use.
            Err(
                e @ ClientError::Remote {
                    code: ErrorCode::NotFound | ErrorCode::IsADirectory | ErrorCode::NotAFile,
                    ..
                },
            ) => {
                let _ = std::fs::remove_file(part);
                return Err(e);
            }
            Err(e) => return Err(forget(e)),
            Ok(other) => return Err(forget(unexpected(&other))),
        };
        let held = have.min(size);
        pieces
            .check(held)
            .map_err(|e| forget(ClientError::Protocol(e.to_string())))?;
        let local = |e: io::Error| ClientError::Local {
            path: part.to_path_buf(),
            source: e,
        };
        let mut ours = Counted {
            inner: FileSource::new(file.clone(), 0),
            bar: progress,
        };
        let before = pieces.agree(&mut ours, held).await.map_err(local)?;
        let from = before.end;
        write_frame(&mut send, &Resume { from }).await?;
        let _ = send.finish();
        let keep = file.clone();
        blocking(move || keep.set_len(from)).await.map_err(local)?;
        let body = Body {
            file,
            from,
            size,
            hasher: before.state,
            stall: self.stall,
            limits: self.limits.clone(),
            compressed,
        };
        match receive_verified(&mut recv, &body, name, into.dest, progress).await {
            // Verified: put it in place.
            Ok(received) => {
                into.apply(&body.file, modified, part)?;
                commit_partial(part, into.dest, into.overwrite)?;
                Ok(Some((size, from, received)))
            }
            // Interrupted: the partial stays, holding what arrived, to resume next time.
            Err(e @ (ClientError::Interrupted(_) | ClientError::Stalled(_))) => Err(e),
            // Anything else goes: space matters more than resuming, and data from a server
            // that broke the protocol (a wrong hash, bytes after the end) is of no use.
            Err(e) => {
                let _ = std::fs::remove_file(part);
                Err(e)
            }
        }
    }

    /// The plain exchange, for servers without resuming: into a temp file that any failure
    /// removes ([`receive_into_temp`]).
    async fn download_plain(
        &self,
        name: &SafeName,
        into: Target<'_>,
        progress: &ProgressBar,
    ) -> Result<(u64, u64, [u8; 32]), ClientError> {
        let request = Request::Download {
            name: name.to_string(),
        };
        let mut recv = self.ask(&request).await?;
        let (size, modified) = match response(&mut recv, self.stall).await? {
            Response::FileHeader { size, modified } => (size, modified),
            other => return Err(unexpected(&other)),
        };
        let header = Header { size, modified };
        let pace = Pace {
            stall: self.stall,
            limits: self.limits.clone(),
        };
        let received = receive_into_temp(&mut recv, header, name, into, pace, progress).await?;
        Ok((size, 0, received))
    }
}

impl Client {
    /// Downloads `name` into `out` as it arrives (`get NAME -o -`: stdout), and verifies its
    /// SHA-256 at the end. What was written cannot be taken back: a failure after the first
    /// byte is [`ClientError::BadOutput`], which says so, and only `Ok` means the output is the
    /// server's file. `out` is flushed before the verdict. A failure of `out` itself (a closed
    /// pipe) is [`ClientError::Local`] with the path `-`.
    pub async fn download_to_writer<W>(
        &self,
        name: &str,
        out: &mut W,
        progress: &ProgressBar,
    ) -> Result<TransferReport, ClientError>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let started = Instant::now();
        let name = safe(name)?;
        let request = Request::Download {
            name: name.to_string(),
        };
        let asked = async {
            let mut recv = self.ask(&request).await?;
            match response(&mut recv, self.stall).await? {
                Response::FileHeader { size, .. } => Ok((recv, size)),
                other => Err(unexpected(&other)),
            }
        };
        // Before the first byte a failure is an ordinary one: nothing was written.
        let (mut recv, size) = self.explain(asked.await)?;
        progress::transferring(progress, size, 0);
        let bad = |e: ClientError| ClientError::BadOutput {
            name: crate::paths::sanitize(name.as_str()),
            written: progress.position(),
            why: e.to_string(),
            code: e.code(),
        };
        let stdout = |source: io::Error| ClientError::Local {
            path: "-".into(),
            source,
        };
        let mut sink = Writer(&mut *out);
        let copied = copy_hashed(&mut recv, &mut sink, size, Some(self.stall), progress).await;
        let received = match copied {
            Ok(digest) => digest,
            Err(CopyError::Write(e)) => return Err(stdout(e)),
            Err(CopyError::Stalled(limit)) => return Err(bad(ClientError::Stalled(limit))),
            // The connection's end, if that is why, says why (a server shutting down).
            Err(other) => {
                let why = ClientError::Interrupted(other.to_string());
                let why = self.explain::<()>(Err(why)).err();
                return Err(bad(
                    why.unwrap_or(ClientError::Interrupted(other.to_string()))
                ));
            }
        };
        out.flush().await.map_err(stdout)?;
        let end = async {
            let trailer: Trailer =
                within(self.stall, async { Ok(read_frame(&mut recv).await?) }).await?;
            expect_end(&mut recv, self.stall).await?;
            Ok(trailer)
        };
        let trailer = end.await.map_err(bad)?;
        if trailer.sha256 != received {
            return Err(ClientError::BadOutput {
                name: crate::paths::sanitize(name.as_str()),
                written: size,
                why: "its SHA-256 does not match the server's".into(),
                code: "hash_mismatch",
            });
        }
        Ok(TransferReport {
            name: name.to_string(),
            path: "-".into(),
            bytes: size,
            sha256: received,
            elapsed: started.elapsed(),
            resumed_from: 0,
        })
    }
}

/// A download's partial, opened: the file, what it held, and whether this attempt made it.
struct Opened<'a> {
    part: &'a Path,
    file: Arc<std::fs::File>,
    have: u64,
    created: bool,
}
