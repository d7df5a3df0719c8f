//! Resumable transfers, client side. A download keeps its data in a hidden partial beside the
//! target (`.NAME.qft-part`), which survives an interruption; an upload's partial lives on the
//! server, keyed by this client's key. Either way the two sides compare piece hashes, the
//! transfer continues from the first piece that differs, and the whole file's SHA-256 decides
//! whether it is committed. Against a server that does not know these exchanges, the caller
//! falls back to the plain ones (these functions return `Ok(None)`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{expect_end, response, send_body, unexpected, Client, ClientError, TransferReport};
use crate::fsutil::is_full;
use crate::paths::SafeName;
use crate::protocol::{read_frame, write_frame, ErrorCode, Request, Response, Resume, Trailer};
use crate::transfer::{agree, receive_file, CopyError};

/// The hidden partial a download of `dest` keeps its data in until it is verified.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Short enough for any filesystem's name limit, and still telling which file it is for.
    let stem = if name.len() > 160 {
        // Cut by bytes (the limit is in bytes), on a character boundary.
        let mut cut = 100;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let short = &name[..cut];
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(name.as_bytes()).into();
        format!("{short}-{}", &crate::transfer::hex(&digest)[..16])
    } else {
        name
    };
    dest.with_file_name(format!(".{stem}.qft-part"))
}

impl Client {
    pub(super) async fn download_resumable(
        &self,
        name: &SafeName,
        dest: &Path,
        overwrite: bool,
        progress: &ProgressBar,
    ) -> Result<Option<TransferReport>, ClientError> {
        let started = Instant::now();
        let part = partial_path(dest);
        let (mut file, have, created) = open_partial(&part, dest)?;
        let request = Request::ResumeDownload {
            name: name.to_string(),
            have,
        };
        // Until data arrives, a failure leaves no trace: a partial made by this attempt goes.
        let forget = |e: ClientError| {
            if created {
                let _ = std::fs::remove_file(&part);
            }
            e
        };
        let (mut send, mut recv) = self.open(&request).await.map_err(forget)?;
        let (size, chunk, hashes) = match response(&mut recv).await {
            Ok(Response::Prefix {
                size,
                chunk,
                hashes,
                ..
            }) => (size, chunk, hashes),
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
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            Err(e) => return Err(forget(e)),
            Ok(other) => return Err(forget(unexpected(&other))),
        };
        check_pieces(chunk, &hashes, have.min(size)).map_err(forget)?;
        let local = |e: io::Error| ClientError::Local {
            path: part.clone(),
            source: e,
        };
        file.seek(io::SeekFrom::Start(0)).await.map_err(local)?;
        let (from, before) = agree(&mut file, have.min(size), chunk, &hashes)
            .await
            .map_err(local)?;
        write_frame(&mut send, &Resume { from }).await?;
        let _ = send.finish();
        file.set_len(from).await.map_err(local)?;
        file.seek(io::SeekFrom::Start(from)).await.map_err(local)?;
        progress.set_length(size);
        progress.set_position(from);
        let copied = receive_file(before, &mut recv, &mut file, size - from, None, progress).await;
        let received = match copied {
            Ok(digest) => digest,
            Err(CopyError::Write(e)) if is_full(&e) => {
                // Space matters more than resuming here: give it back.
                let _ = std::fs::remove_file(&part);
                return Err(ClientError::NoSpace(dest.to_path_buf()));
            }
            Err(CopyError::Write(e)) => return Err(local(e)),
            // Interrupted: the partial stays, to resume next time. tokio finishes writes on a
            // background thread: wait for them, so the partial holds what arrived when we return.
            Err(other) => {
                let _ = file.flush().await;
                return Err(ClientError::Interrupted(other.to_string()));
            }
        };
        let trailer: Trailer = read_frame(&mut recv).await?;
        expect_end(&mut recv).await?;
        if trailer.sha256 != received {
            let _ = std::fs::remove_file(&part);
            return Err(ClientError::HashMismatch(name.to_string()));
        }
        let full = |e: io::Error| match is_full(&e) {
            true => ClientError::NoSpace(dest.to_path_buf()),
            false => local(e),
        };
        file.flush().await.map_err(full)?;
        file.sync_all().await.map_err(full)?;
        commit(&part, dest, overwrite)?;
        Ok(Some(TransferReport {
            name: name.to_string(),
            path: dest.to_path_buf(),
            bytes: size,
            sha256: received,
            elapsed: started.elapsed(),
            resumed_from: from,
        }))
    }

    pub(super) async fn upload_resumable(
        &self,
        path: &Path,
        name: &SafeName,
        file: &mut tokio::fs::File,
        size: u64,
        progress: &ProgressBar,
    ) -> Result<Option<TransferReport>, ClientError> {
        let started = Instant::now();
        let request = Request::ResumeUpload {
            name: name.to_string(),
            size,
        };
        let (mut send, mut recv) = self.open(&request).await?;
        let (chunk, hashes) = match response(&mut recv).await {
            Ok(Response::Held { chunk, hashes }) => (chunk, hashes),
            Err(ClientError::Remote {
                code: ErrorCode::Unsupported,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
            Ok(other) => return Err(unexpected(&other)),
        };
        check_pieces(chunk, &hashes, size)?;
        let local = |e: io::Error| ClientError::Local {
            path: path.to_path_buf(),
            source: e,
        };
        // Compare what the server holds with this file as it is now: a change since the last
        // attempt makes them differ from that piece on, and the rest is sent again.
        let (from, before) = agree(file, size, chunk, &hashes).await.map_err(local)?;
        write_frame(&mut send, &Resume { from }).await?;
        file.seek(io::SeekFrom::Start(from)).await.map_err(local)?;
        progress.set_length(size);
        progress.set_position(from);
        let sent = send_body(
            file,
            &mut send,
            &mut recv,
            before,
            size - from,
            path,
            progress,
        )
        .await?;
        let _ = send.finish();
        match response(&mut recv).await? {
            Response::Done { sha256 } if sha256 == sent => Ok(Some(TransferReport {
                name: name.to_string(),
                path: path.to_path_buf(),
                bytes: size,
                sha256: sent,
                elapsed: started.elapsed(),
                resumed_from: from,
            })),
            Response::Done { .. } => Err(ClientError::HashMismatch(name.to_string())),
            other => Err(unexpected(&other)),
        }
    }
}

/// A server's piece list must be one it could have made: otherwise it is not to be trusted.
fn check_pieces(chunk: u64, hashes: &[[u8; 32]], limit: u64) -> Result<(), ClientError> {
    let covered = (hashes.len() as u64).checked_mul(chunk);
    if chunk == 0 || covered.is_none_or(|c| c > limit) {
        return Err(ClientError::Protocol(
            "an impossible list of pieces to resume from".into(),
        ));
    }
    Ok(())
}

/// Opens (or creates) the partial without following a link, and locks it: two downloads to one
/// target would otherwise write into each other. Returns the file, its length, and whether it
/// was created now.
fn open_partial(part: &Path, dest: &Path) -> Result<(tokio::fs::File, u64, bool), ClientError> {
    let local = |e: io::Error| ClientError::Local {
        path: part.to_path_buf(),
        source: e,
    };
    let created = part.symlink_metadata().is_err();
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options
            .mode(crate::fsutil::new_file_permissions(dest).mode())
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    // The lock is checked against the name, as on the server: see `open_locked`.
    // A moment's wait: a cancelled attempt's last write may still hold the file briefly.
    let file = crate::fsutil::open_locked(part, &options, std::time::Duration::from_secs(2))
        .map_err(local)?
        .ok_or_else(|| {
            local(io::Error::other(format!(
                "another download to {} is running",
                dest.display()
            )))
        })?;
    if !file.metadata().map_err(local)?.is_file() {
        return Err(local(io::Error::other("not a regular file")));
    }
    let have = file.metadata().map_err(local)?.len();
    Ok((tokio::fs::File::from_std(file), have, created))
}

/// Puts the verified partial in place: replacing `dest` only with `overwrite`, otherwise
/// failing if it appeared meanwhile; then makes the rename durable.
fn commit(part: &Path, dest: &Path, overwrite: bool) -> Result<(), ClientError> {
    let failed = |e: io::Error| match e.kind() {
        io::ErrorKind::AlreadyExists => ClientError::Exists(dest.to_path_buf()),
        _ => ClientError::Local {
            path: dest.to_path_buf(),
            source: e,
        },
    };
    if overwrite {
        std::fs::rename(part, dest).map_err(failed)?;
    } else {
        crate::fsutil::rename_noclobber(part, dest).map_err(failed)?;
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::fsutil::sync_dir(dir).map_err(|e| ClientError::Local {
        path: dir.to_path_buf(),
        source: e,
    })
}
