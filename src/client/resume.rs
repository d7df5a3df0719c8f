//! A download's local partial: the hidden `.NAME.qft-part` beside the target that holds what
//! arrived until it is verified, survives an interruption so that the next download resumes it,
//! and is renamed to the target's name only when whole and verified.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::ClientError;

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

/// Opens (or creates) the partial without following a link, and locks it: two downloads to one
/// target would otherwise write into each other. Returns the file, its length, and whether it
/// was created now.
pub(super) fn open_partial(
    part: &Path,
    dest: &Path,
) -> Result<(std::fs::File, u64, bool), ClientError> {
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
    Ok((file, have, created))
}

/// Puts the verified partial in place: replacing `dest` only with `overwrite`, otherwise
/// failing if it appeared meanwhile; then makes the rename durable.
pub(super) fn commit_partial(part: &Path, dest: &Path, overwrite: bool) -> Result<(), ClientError> {
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
    let dir = crate::fsutil::parent_dir(dest);
    crate::fsutil::sync_dir(dir).map_err(|e| ClientError::Local {
        path: dir.to_path_buf(),
        source: e,
    })
}

/// What a cancelled transfer left to resume, told to the person after Ctrl-C (the README once
/// said a partial was removed; it is kept, and people should know it is there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A download's hidden partial beside `dest`, holding `bytes`.
    Download {
        /// The file asked for.
        dest: PathBuf,
        /// What the partial holds.
        bytes: u64,
    },
    /// An upload the server keeps the received part of, for this client.
    Upload {
        /// The remote name.
        name: String,
    },
}

/// What a running transfer would leave behind if it were dropped now.
#[derive(Debug, Clone)]
pub(super) enum Leaves {
    /// Its partial `part`, for `dest`.
    Download { part: PathBuf, dest: PathBuf },
    /// A partial on the server, for `name`.
    Upload { name: String },
}

/// The transfers of one connection that would leave a partial if cancelled. A transfer is
/// watched while it runs and let go when it ends by itself ([`Watch::done`]); one that was
/// dropped (Ctrl-C) stays, for [`Running::take`]. Shared by the clones of a client, because a
/// batch runs each transfer in its own task, and an aborted task is dropped only a moment after
/// the Ctrl-C: what is still watched then is what the cancel leaves.
#[derive(Debug, Clone, Default)]
pub(super) struct Running {
    inner: Arc<Mutex<(u64, HashMap<u64, Leaves>)>>,
}

/// One watched transfer.
#[derive(Debug)]
pub(super) struct Watch {
    running: Running,
    id: u64,
}

impl Running {
    /// Watches a transfer that would leave `leaves`.
    pub(super) fn watch(&self, leaves: Leaves) -> Watch {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0 += 1;
        let id = inner.0;
        inner.1.insert(id, leaves);
        Watch {
            running: self.clone(),
            id,
        }
    }

    /// What the transfers still watched leave, forgetting them: called after a cancel. A
    /// download whose partial holds nothing leaves nothing worth saying.
    pub(super) fn take(&self) -> Vec<Kept> {
        let taken = std::mem::take(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()).1);
        let mut kept: Vec<(u64, Kept)> = taken
            .into_iter()
            .filter_map(|(id, leaves)| match leaves {
                Leaves::Download { part, dest } => {
                    let bytes = part.symlink_metadata().ok()?.len();
                    (bytes > 0).then_some((id, Kept::Download { dest, bytes }))
                }
                Leaves::Upload { name } => Some((id, Kept::Upload { name })),
            })
            .collect();
        kept.sort_by_key(|(id, _)| *id);
        kept.into_iter().map(|(_, k)| k).collect()
    }
}

impl Watch {
    /// The transfer ended by itself (done, or failed and said so): nothing to tell.
    pub(super) fn done(self) {
        let mut inner = self.running.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.1.remove(&self.id);
    }
}
