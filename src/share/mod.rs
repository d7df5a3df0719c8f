//! Share links: capabilities for one file or directory, read or upload-only, with an expiry and
//! optionally a number of uses, handed to people who have no qft key.
//!
//! A share is a file `shares/<ID>.json` in the server's qft home. The token in the link is 32
//! random bytes; only its SHA-256 is kept, and the share's ID is the start of that hash, so the
//! store finds a share from a token without holding anything that would recreate the link.
//! `qft share` (another process on the server's machine) writes shares and the running server
//! reads them for every session, so a new or revoked link applies at once. Uses are counted
//! under a lock on the store, so two sessions racing for a link's last use cannot both get it.
//!
//! What a share grants, and nothing more:
//! - **read** of a file: downloading that file.
//! - **read** of a directory: listing it and what is below it, downloading files in it.
//! - **upload-only** into a directory: uploading new files into it (never replacing one,
//!   since the holder cannot see what it would destroy), no listing, no download.
//!
//! A use is one transfer begun (a download or an upload); listing is free. A use is taken
//! before the transfer starts, so a transfer that fails still counts: a link never allows more
//! transfers than it says.
//!
//! Links are made in two ways that must agree, so the rules live here: `qft share` on the
//! server's machine (`cli::share`) and `share` at an admin's prompt (the server's
//! `server::share`, over the protocol's `ShareCreate`). Both check the name through the storage
//! contract ([`plan`] takes what the storage said), and both print the link ([`link`]) and
//! the lines about it ([`summary`], [`list_line`]) from a [`ShareInfo`].
//!
//! [`fetch`] is the other end for the command line: `qft get LINK`.

pub mod fetch;
mod make;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{open_locked, write_atomic, Mode, Replace};
pub use crate::protocol::ShareInfo;
pub use make::{check_name, link, list_line, plan, summary, Unshareable};

/// The store's directory inside the server's qft home.
pub const DIR: &str = "shares";
/// The longest a link may last: its certificate hashes must all be made ahead.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an expired share is kept, so that its link says "expired" rather than "unknown".
const KEEP_EXPIRED: u64 = 7 * 24 * 3600;

/// What a share lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareAccess {
    /// Download (and list, for a directory).
    Read,
    /// Upload new files into a directory; nothing else.
    UploadOnly,
}

/// Whether a share names a file or a directory (decided when it is made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareKind {
    /// One file.
    File,
    /// A directory and everything below it.
    Dir,
}

/// One share, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Shown by `--list`, used by `--revoke`: the first 12 hex digits of the token's hash.
    pub id: String,
    /// SHA-256 of the token, hex.
    pub token_sha256: String,
    /// The served directory the share is for (a server serving another ignores it).
    pub root: String,
    /// The shared name, relative to `root`.
    pub name: String,
    /// File or directory.
    pub kind: ShareKind,
    /// What it allows.
    pub access: ShareAccess,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; from then on the link is refused.
    pub expires: u64,
    /// Transfers allowed in all; `None`: any number until it expires.
    pub max_uses: Option<u64>,
    /// Transfers begun so far.
    pub used: u64,
}

/// Why a link was refused: each is one sentence for the person holding it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such share (never made, revoked, or for another server).
    #[error("this link is not valid on this server: it may have been revoked")]
    Unknown,
    /// Past its expiry.
    #[error("this link expired {0}")]
    Expired(String),
    /// Every use taken.
    #[error("this link has been used the {0} times it allowed")]
    UsedUp(u64),
    /// The store could not be read.
    #[error("the server cannot read its share links; try again later")]
    Store,
}

/// What to share, for [`ShareStore::create`].
#[derive(Debug, Clone)]
pub struct NewShare {
    /// The served directory.
    pub root: String,
    /// Relative to it.
    pub name: String,
    /// File or directory.
    pub kind: ShareKind,
    /// What it allows.
    pub access: ShareAccess,
    /// How long from now.
    pub expires_in: Duration,
    /// Transfers allowed, if limited.
    pub max_uses: Option<u64>,
}

/// The shares kept in one qft home.
#[derive(Debug, Clone)]
pub struct ShareStore {
    dir: PathBuf,
}

impl ShareStore {
    /// The store in `home` (created when the first share is made).
    pub fn new(home: &Path) -> Self {
        ShareStore {
            dir: home.join(DIR),
        }
    }

    /// Makes a share and returns it with its token, which is not kept: it is in the link only.
    pub fn create(&self, new: NewShare) -> io::Result<(Share, String)> {
        let mut secret = [0u8; 32];
        crate::tls::crypto_provider()
            .secure_random
            .fill(&mut secret)
            .map_err(|_| io::Error::other("no secure random numbers"))?;
        let token = URL_SAFE_NO_PAD.encode(secret);
        let hash = hex(&Sha256::digest(token.as_bytes()));
        let now = now();
        let share = Share {
            id: hash[..12].to_string(),
            token_sha256: hash,
            root: new.root,
            name: new.name,
            kind: new.kind,
            access: new.access,
            created: now,
            expires: now.saturating_add(new.expires_in.min(MAX_EXPIRY).as_secs()),
            max_uses: new.max_uses,
            used: 0,
        };
        create_private_dir(&self.dir)?;
        self.write(&share, Replace::No)?;
        self.prune();
        Ok((share, token))
    }

    /// Every share kept, oldest first.
    pub fn list(&self) -> io::Result<Vec<Share>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut shares: Vec<Share> = entries
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                self.read(&id).ok().flatten()
            })
            .collect();
        shares.sort_by_key(|s| (s.created, s.id.clone()));
        Ok(shares)
    }

    /// Share `id`, if there is one.
    pub fn get(&self, id: &str) -> io::Result<Option<Share>> {
        self.read(id)
    }

    /// Removes share `id`; `false` if there was none.
    pub fn revoke(&self, id: &str) -> io::Result<bool> {
        if !is_id(id) {
            return Ok(false);
        }
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => {
                crate::fsutil::sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The share `token` opens on the server serving `root`, if it is still good (uses are
    /// checked, not taken: see [`ShareStore::take_use`]).
    pub fn open(&self, token: &str, root: &str) -> Result<Share, Refusal> {
        let hash = hex(&Sha256::digest(token.as_bytes()));
        let share = self
            .read(&hash[..12])
            .map_err(|_| Refusal::Store)?
            .ok_or(Refusal::Unknown)?;
        // Same ID, other token: compare all of the hash (its length is public, so a plain
        // comparison leaks nothing an attacker could use).
        if share.token_sha256 != hash || share.root != root {
            return Err(Refusal::Unknown);
        }
        check(&share, now())?;
        Ok(share)
    }

    /// Takes one use of share `id` for a transfer about to begin, under the store's lock.
    pub fn take_use(&self, id: &str) -> Result<Share, Refusal> {
        create_private_dir(&self.dir).map_err(|_| Refusal::Store)?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        let lock = open_locked(&self.dir.join(".lock"), &options, Duration::from_secs(5))
            .map_err(|_| Refusal::Store)?
            .ok_or(Refusal::Store)?;
        let mut share = self
            .read(id)
            .map_err(|_| Refusal::Store)?
            .ok_or(Refusal::Unknown)?;
        check(&share, now())?;
        share.used += 1;
        self.write(&share, Replace::Yes)
            .map_err(|_| Refusal::Store)?;
        drop(lock);
        Ok(share)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn read(&self, id: &str) -> io::Result<Option<Share>> {
        if !is_id(id) {
            return Ok(None);
        }
        match std::fs::read(self.path(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, share: &Share, replace: Replace) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(share).map_err(io::Error::other)?;
        write_atomic(
            &self.path(&share.id),
            &json,
            replace,
            Mode::Private,
            "share",
        )
    }

    /// Deletes shares expired for longer than a week (best effort).
    fn prune(&self) {
        let now = now();
        for share in self.list().unwrap_or_default() {
            if share.expires.saturating_add(KEEP_EXPIRED) < now {
                let _ = std::fs::remove_file(self.path(&share.id));
            }
        }
    }
}

impl Share {
    /// The link to hand out (see [`link`]).
    pub fn link(&self, base: &str, token: &str, hashes: &[[u8; 32]], port: Option<u16>) -> String {
        link(&ShareInfo::from(self), base, token, hashes, port)
    }
}

impl From<&Share> for ShareInfo {
    fn from(share: &Share) -> Self {
        ShareInfo {
            id: share.id.clone(),
            name: share.name.clone(),
            dir: share.kind == ShareKind::Dir,
            upload_only: share.access == ShareAccess::UploadOnly,
            created: share.created,
            expires: share.expires,
            max_uses: share.max_uses,
            used: share.used,
        }
    }
}

impl fmt::Display for ShareAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShareAccess::Read => "read",
            ShareAccess::UploadOnly => "upload-only",
        })
    }
}

/// The file in the qft home where `serve --web` notes each served directory's page.
const PAGES: &str = "web-pages";

/// Notes that the page for the served directory `root` is at `url`, so that `qft share` run
/// for that directory makes links to it without being told.
pub fn remember_page(home: &Path, root: &str, url: &str) -> io::Result<()> {
    let path = home.join(PAGES);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|line| line.split('\t').next() != Some(root))
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&format!("{root}\t{url}\n"));
    write_atomic(
        &path,
        text.as_bytes(),
        Replace::Yes,
        Mode::Private,
        "web-pages",
    )
}

/// Where the last `serve --web` of `root` said its page is.
pub fn page_of(home: &Path, root: &str) -> Option<String> {
    let text = std::fs::read_to_string(home.join(PAGES)).ok()?;
    text.lines().find_map(|line| {
        let (r, url) = line.split_once('\t')?;
        (r == root).then(|| url.to_string())
    })
}

/// Refuses a share past its expiry or its uses.
fn check(share: &Share, now: u64) -> Result<(), Refusal> {
    if now >= share.expires {
        return Err(Refusal::Expired(when(share.expires)));
    }
    match share.max_uses {
        Some(max) if share.used >= max => Err(Refusal::UsedUp(max)),
        _ => Ok(()),
    }
}

/// `at 2026-11-30 12:00:00 UTC`.
pub fn when(unix: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    format!("at {} UTC", text.trim_end_matches('Z').replace('T', " "))
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn is_id(id: &str) -> bool {
    id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests;
