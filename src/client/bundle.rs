//! Many small files uploaded on one stream (the protocol's UploadBundle): read and hashed on one
//! blocking thread, sent as one request, answered file by file. What a tree of small files
//! costs is mostly per file (a stream, a request, hand-offs to threads on both ends); a bundle
//! pays those once for up to [`FILES`] files. A server that does not know bundles is
//! remembered, and the files go one by one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::ProgressBar;
use quinn::{RecvStream, SendStream};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::stream::{ready, response, safe, server_reason, unexpected};
use super::{Client, ClientError, Keep, TransferReport};
use crate::protocol::{
    write_frame, BundleItem, ErrorCode, FileMeta, FrameError, Request, Response, Trailer,
    BUNDLE_FILE, MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES,
};
use crate::rate::take_all;

/// Files a client puts in one bundle: enough to share the per-file costs, few enough that a
/// tree's bundles keep several streams busy at once.
pub(in crate::client) const FILES: usize = 64;

/// Bytes a client puts in one bundle, at most: what the protocol allows.
pub(in crate::client) const BYTES: u64 = MAX_BUNDLE_BYTES;

const _: () = assert!(FILES as u32 <= MAX_BUNDLE_FILES);

/// Whether a file of `size` bytes (as a walk measured it) goes in a bundle.
pub(in crate::client) fn fits(size: u64) -> bool {
    size < BUNDLE_FILE
}

/// How [`pack`] placed an item: alone, or with other small ones in a bundle.
pub(in crate::client) enum Packed<T> {
    Alone(T),
    /// At least two, within [`FILES`] and [`BYTES`].
    Bundle(Vec<T>),
}

/// Packs the small items of `items` into bundles, in order, and leaves the rest alone:
/// `small` gives an item's size if it may go in a bundle. A bundle of one is no bundle.
/// What `put -r` and `sync` both send by.
pub(in crate::client) fn pack<T>(
    items: Vec<T>,
    small: impl Fn(&T) -> Option<u64>,
) -> Vec<Packed<T>> {
    fn close<T>(open: &mut Vec<T>, bytes: &mut u64, out: &mut Vec<Packed<T>>) {
        *bytes = 0;
        match open.len() {
            0 => {}
            1 => out.extend(open.pop().map(Packed::Alone)),
            _ => out.push(Packed::Bundle(std::mem::take(open))),
        }
    }
    let mut out = Vec::new();
    let mut open = Vec::new();
    let mut bytes = 0;
    for item in items {
        let Some(size) = small(&item) else {
            out.push(Packed::Alone(item));
            continue;
        };
        if open.len() == FILES || bytes + size > BYTES {
            close(&mut open, &mut bytes, &mut out);
        }
        bytes += size;
        open.push(item);
    }
    close(&mut open, &mut bytes, &mut out);
    out
}

/// One file read for a bundle.
struct Read {
    body: Vec<u8>,
    sha256: [u8; 32],
    meta: Option<FileMeta>,
}

/// What reading a file for a bundle came to.
enum Prepared {
    Read(Read),
    /// It grew past what a bundle takes since it was measured: it goes alone.
    Alone,
    Failed(ClientError),
}

impl Client {
    /// Uploads `files` (local path, remote name), small as a walk measured them, on one stream
    /// where the server can; one result per file, in order. `progress` counts their bytes.
    pub(in crate::client) async fn upload_bundle(
        &self,
        files: &[(PathBuf, String)],
        keep: Keep,
        progress: &ProgressBar,
    ) -> Vec<Result<TransferReport, ClientError>> {
        let started = Instant::now();
        let mut results: Vec<Option<Result<TransferReport, ClientError>>> =
            files.iter().map(|_| None).collect();
        let mut sent = Vec::new();
        let mut alone = Vec::new();
        for (i, prepared) in prepare(files, keep).await.into_iter().enumerate() {
            match prepared {
                Prepared::Read(read) => sent.push((i, read)),
                Prepared::Alone => alone.push(i),
                Prepared::Failed(e) => results[i] = Some(Err(e)),
            }
        }
        if !sent.is_empty() && !self.no_bundles.load(Ordering::Relaxed) {
            match self.send_bundle(files, &sent, progress).await {
                Ok(answers) => {
                    for ((i, read), answer) in sent.iter().zip(answers) {
                        let report = |sha256| TransferReport {
                            name: files[*i].1.clone(),
                            path: files[*i].0.clone(),
                            bytes: read.body.len() as u64,
                            sha256,
                            elapsed: started.elapsed(),
                            resumed_from: 0,
                        };
                        results[*i] = Some(answer.map(report));
                    }
                    sent.clear();
                }
                Err(ClientError::Remote {
                    code: ErrorCode::Unsupported,
                    ..
                }) => self.no_bundles.store(true, Ordering::Relaxed),
                Err(e) => {
                    let e = self.explain::<()>(Err(e)).unwrap_err();
                    for (i, _) in &sent {
                        results[*i] = Some(Err(each(&e)));
                    }
                    sent.clear();
                }
            }
        }
        // One by one: what grew, and everything a server without bundles is sent.
        alone.extend(sent.iter().map(|(i, _)| *i));
        alone.sort_unstable();
        let hidden = ProgressBar::hidden();
        for i in alone {
            let (path, name) = &files[i];
            let result = self.upload_keeping(path, name, keep, &hidden).await;
            if let Ok(report) = &result {
                progress.inc(report.bytes);
            }
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ClientError::Protocol("a file of a bundle was lost".into()))
                })
            })
            .collect()
    }

    /// Sends the bundle and reads its answers: per file, the hash the server stored or its
    /// refusal. `Err`: the bundle as a whole (refused, or the stream broke).
    async fn send_bundle(
        &self,
        files: &[(PathBuf, String)],
        sent: &[(usize, Read)],
        progress: &ProgressBar,
    ) -> Result<Vec<Result<[u8; 32], ClientError>>, ClientError> {
        let bytes: u64 = sent.iter().map(|(_, r)| r.body.len() as u64).sum();
        let request = Request::UploadBundle {
            files: sent.len() as u32,
            bytes,
        };
        let (mut send, mut recv) = self.open(&request).await?;
        take_all(&self.limits, bytes as usize).await;
        let write = write_items(&mut send, files, sent);
        // At most a megabyte: one stall timeout for all of it, as for one small file.
        let written = match tokio::time::timeout(self.stall, write).await {
            Ok(written) => written,
            Err(_) => return Err(ClientError::Stalled(self.stall)),
        };
        if let Err(e) = written {
            return Err(server_reason(&mut recv, e.into(), self.stall).await);
        }
        let _ = send.finish();
        ready(&mut recv, self.stall).await?;
        let mut answers = Vec::with_capacity(sent.len());
        for (i, read) in sent {
            let answer = match answer(&mut recv, self.stall).await? {
                Ok(sha256) if sha256 == read.sha256 => Ok(sha256),
                Ok(_) => Err(ClientError::HashMismatch(files[*i].1.clone())),
                Err(refused) => Err(refused),
            };
            if answer.is_ok() {
                progress.inc(read.body.len() as u64);
            }
            answers.push(answer);
        }
        Ok(answers)
    }
}

/// The bundle's failure, told for each of its files.
fn each(e: &ClientError) -> ClientError {
    match e {
        ClientError::Remote { code, message } => ClientError::Remote {
            code: *code,
            message: message.clone(),
        },
        ClientError::Stalled(after) => ClientError::Stalled(*after),
        ClientError::Closed(why) => ClientError::Closed(why.clone()),
        ClientError::Refused(why) => ClientError::Refused(why.clone()),
        ClientError::Protocol(why) => ClientError::Protocol(why.clone()),
        other => ClientError::Interrupted(other.to_string()),
    }
}

/// One file's answer: `Ok` the hash the server stored; `Err` its refusal of this file alone.
/// A broken stream is the bundle's failure (`Err` outside).
async fn answer(
    recv: &mut RecvStream,
    stall: std::time::Duration,
) -> Result<Result<[u8; 32], ClientError>, ClientError> {
    match response(recv, stall).await {
        Ok(Response::Done { sha256 }) => Ok(Ok(sha256)),
        Ok(other) => Err(unexpected(&other)),
        Err(refused @ ClientError::Remote { .. }) => Ok(Err(refused)),
        Err(e) => Err(e),
    }
}

async fn write_items(
    send: &mut SendStream,
    files: &[(PathBuf, String)],
    sent: &[(usize, Read)],
) -> Result<(), FrameError> {
    for (i, read) in sent {
        let item = BundleItem {
            name: files[*i].1.clone(),
            size: read.body.len() as u64,
            meta: read.meta,
        };
        write_frame(send, &item).await?;
        AsyncWriteExt::write_all(send, &read.body).await?;
        write_frame(
            send,
            &Trailer {
                sha256: read.sha256,
            },
        )
        .await?;
    }
    Ok(())
}

/// Reads and hashes every file on one blocking thread (one hand-off for all).
async fn prepare(files: &[(PathBuf, String)], keep: Keep) -> Vec<Prepared> {
    let owned: Vec<(PathBuf, String)> = files.to_vec();
    let count = owned.len();
    let read = tokio::task::spawn_blocking(move || {
        owned
            .iter()
            .map(|(path, name)| match safe(name) {
                Err(e) => Prepared::Failed(e),
                Ok(_) => match read_small(path, keep) {
                    Ok(Some(read)) => Prepared::Read(read),
                    Ok(None) => Prepared::Alone,
                    Err(e) => Prepared::Failed(ClientError::local(path)(e)),
                },
            })
            .collect::<Vec<_>>()
    });
    match read.await {
        Ok(prepared) => prepared,
        Err(e) => (0..count)
            .map(|i| {
                Prepared::Failed(ClientError::local(&files[i].0)(io::Error::other(
                    e.to_string(),
                )))
            })
            .collect(),
    }
}

/// A regular file's whole content, hashed; `None` if it is no longer small.
fn read_small(path: &Path, keep: Keep) -> io::Result<Option<Read>> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if !fits(meta.len()) {
        return Ok(None);
    }
    // Exactly the measured size: a file that shrank since is caught here, one that grew is
    // sent as it was when measured, as a single upload does.
    let mut body = vec![0; meta.len() as usize];
    io::Read::read_exact(&mut file, &mut body)
        .map_err(|e| io::Error::other(format!("changed while it was being read ({e})")))?;
    let sha256 = Sha256::digest(&body).into();
    let meta = keep.any().then(|| keep.of_local(&meta));
    Ok(Some(Read { body, sha256, meta }))
}

#[cfg(test)]
mod tests;
