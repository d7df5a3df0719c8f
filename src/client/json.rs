//! `--json`: one JSON object per line on stdout, for programs. The fields are a contract
//! (documented in the README): they are added to, never renamed or removed.
//!
//! Every record has a `type`: `entry` (a listing line), `downloaded`/`uploaded` (one verified
//! file), `deleted`, `skipped`, `error`, `summary` (the end of a get or put), `command` (HELP);
//! `made`, `removed`, `renamed`, `stat`, `sum` (managing the server's names); `sync` (one
//! action of a sync) and `sync_summary` (its end); `share` (a share link, made or listed) and
//! `revoked`.

use serde::Serialize;

use super::{ClientError, Space, TransferReport};
use crate::protocol::{CommandHelp, Entry, EntryInfo, EntryKind, ShareInfo};
use crate::transfer::hex;

/// One line of JSON output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A listed name.
    Entry {
        /// The name within the listed directory.
        name: String,
        /// "file", "dir" or "other".
        kind: &'static str,
        /// Bytes (0 for anything but a file).
        size: u64,
        /// Modification time, RFC 3339 UTC, or null.
        modified: Option<String>,
    },
    /// A file downloaded and verified.
    Downloaded(Transfer),
    /// A file uploaded and verified by the server.
    Uploaded(Transfer),
    /// A remote file deleted.
    Deleted {
        /// The remote name.
        name: String,
        /// With `rm -r`: the files deleted with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        files: Option<u64>,
    },
    /// Something left out of a copy (a symlink, an empty directory...).
    Skipped {
        /// The remote name or local path.
        name: String,
        /// Why.
        reason: String,
    },
    /// A failure; the same sentence goes to stderr.
    Error {
        /// A stable code ([`ClientError::code`], or "usage", "cancelled").
        code: &'static str,
        /// One sentence.
        message: String,
        /// The file it concerns, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// For a `trust` failure: the key the server presented (`SHA256:...`), for a script to
        /// check and pin with `--fingerprint`.
        #[serde(skip_serializing_if = "Option::is_none")]
        fingerprint: Option<String>,
    },
    /// The end of a get, put or delete.
    Summary(Summary),
    /// How much more the server can store (`df`).
    Space {
        /// Bytes uploads may still use, or null where the server cannot tell (S3).
        available: Option<u64>,
        /// The largest upload accepted, or null for no limit.
        max_upload: Option<u64>,
    },
    /// One command of the server's reference.
    Command {
        /// Canonical name.
        name: String,
        /// Short names.
        aliases: Vec<String>,
        /// Usage line.
        usage: String,
        /// One sentence.
        summary: String,
    },
    // Managing the server's names, and sync.
    /// A remote directory made.
    Made {
        /// The remote name.
        name: String,
    },
    /// A remote directory removed.
    Removed {
        /// The remote name.
        name: String,
    },
    /// A remote name changed.
    Renamed {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// What the server says of a name.
    Stat {
        /// The remote name.
        name: String,
        /// "file", "dir" or "other".
        kind: &'static str,
        /// Bytes (0 for anything but a file).
        size: u64,
        /// Modification time, RFC 3339 UTC, or null.
        modified: Option<String>,
        /// Permission bits in octal ("644"), or null.
        mode: Option<String>,
        /// SHA-256, lower-case hex, or null where the server does not know it.
        sha256: Option<String>,
    },
    /// A share link: one just made (with its `link`), or a line of `share --list`.
    Share {
        /// What `share --revoke` takes.
        id: String,
        /// The shared name.
        name: String,
        /// "file" or "dir".
        kind: &'static str,
        /// "read" or "upload-only".
        access: &'static str,
        /// When it stops working, RFC 3339 UTC.
        expires: Option<String>,
        /// Transfers allowed in all, or null for any number.
        max_uses: Option<u64>,
        /// Transfers begun so far.
        used: u64,
        /// The link (only when it was just made: the server keeps no way to make it again).
        #[serde(skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    /// A share link revoked.
    Revoked {
        /// Its ID.
        id: String,
    },
    /// A file's SHA-256 (`sum`).
    Sum {
        /// The name as typed.
        name: String,
        /// Lower-case hex.
        sha256: String,
    },
    /// One action of a sync (with `dry_run`, one it would take).
    Sync {
        /// "send", "delete", "mkdir" or "skip".
        action: &'static str,
        /// The path below the synced directory.
        name: String,
        /// Why ("new", "changed", "content differs", "unchanged"...), where there is a reason.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Bytes sent (or to send); for a delete, files deleted.
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// SHA-256 of what was sent, verified by both ends.
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Nothing was changed (`--dry-run`).
        dry_run: bool,
    },
    /// The end of a sync.
    SyncSummary(SyncSummary),
}

/// The totals of a sync.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSummary {
    /// Files sent and verified (with `dry_run`: to send).
    pub sent: usize,
    /// Files the same on both sides, left as they are.
    pub skipped: usize,
    /// Files deleted from the destination (`--delete`).
    pub deleted: u64,
    /// Directories made on the destination.
    pub made: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Bytes of the files sent.
    pub bytes: u64,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// What failed, by path below the synced directory.
    pub failures: Vec<String>,
}

/// A finished transfer.
#[derive(Debug, Serialize)]
pub struct Transfer {
    /// The remote name.
    pub name: String,
    /// The local path.
    pub path: String,
    /// Bytes moved.
    pub bytes: u64,
    /// SHA-256 of those bytes, lower-case hex, verified by both ends.
    pub sha256: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Bytes already here when this transfer resumed an earlier one (0: it started afresh);
    /// `bytes - resumed_from` moved.
    pub resumed_from: u64,
}

/// The totals of a get, put or delete of any number of files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Files transferred and verified (deleted, for a delete).
    pub files: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Entries left out (see `skipped` records).
    pub skipped: usize,
    /// Bytes of the files transferred.
    pub bytes: u64,
    /// Wall time of the whole batch, in seconds.
    pub seconds: f64,
    /// The names (or paths) that failed.
    pub failures: Vec<String>,
    /// Of `bytes`, those that resumed transfers found already held: they did not move.
    pub resumed: u64,
}

/// An entry's kind, as records say it.
fn kind(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Other => "other",
    }
}

impl Record {
    /// A listing entry.
    pub fn entry(e: &Entry) -> Self {
        Record::Entry {
            name: e.name.clone(),
            kind: kind(e.kind),
            size: e.size,
            modified: e.modified.and_then(super::display::rfc3339),
        }
    }

    /// A finished transfer, as `Downloaded` or `Uploaded`.
    pub fn transfer(download: bool, r: &TransferReport) -> Self {
        let t = Transfer {
            name: r.name.clone(),
            path: r.path.to_string_lossy().into_owned(),
            bytes: r.bytes,
            sha256: hex(&r.sha256),
            seconds: r.elapsed.as_secs_f64(),
            resumed_from: r.resumed_from,
        };
        if download {
            Record::Downloaded(t)
        } else {
            Record::Uploaded(t)
        }
    }

    /// A failure. An empty name (the top directory, a command about no file) is no name.
    pub fn error(e: &ClientError, name: Option<&str>) -> Self {
        Record::Error {
            code: e.code(),
            message: e.to_string(),
            name: name.filter(|n| !n.is_empty()).map(str::to_owned),
            fingerprint: e.fingerprint().map(|f| f.to_string()),
        }
    }

    /// A `df` answer.
    pub fn space(space: &Space) -> Self {
        Record::Space {
            available: space.available,
            max_upload: space.max_upload,
        }
    }

    /// A STAT answer.
    pub fn stat(info: &EntryInfo) -> Self {
        Record::Stat {
            name: info.name.clone(),
            kind: kind(info.kind),
            size: info.size,
            modified: info.modified.and_then(super::display::rfc3339),
            mode: info.mode.map(|m| format!("{m:o}")),
            sha256: info.sha256.as_ref().map(hex),
        }
    }

    /// A share link (`link`: one just made).
    pub fn share(share: &ShareInfo, link: Option<&str>) -> Self {
        Record::Share {
            id: share.id.clone(),
            name: share.name.clone(),
            kind: if share.dir { "dir" } else { "file" },
            access: if share.upload_only {
                "upload-only"
            } else {
                "read"
            },
            expires: super::display::rfc3339(share.expires),
            max_uses: share.max_uses,
            used: share.used,
            link: link.map(str::to_owned),
        }
    }

    /// A HELP line.
    pub fn command(c: &CommandHelp) -> Self {
        Record::Command {
            name: c.name.clone(),
            aliases: c.aliases.clone(),
            usage: c.usage.clone(),
            summary: c.summary.clone(),
        }
    }

    /// The record as one line of JSON.
    pub fn line(&self) -> String {
        // Serializing these plain types cannot fail; fall back to an error record anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"type":"error","code":"internal","message":"{e}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_their_documented_shape() {
        let line = Record::entry(&Entry {
            name: "a\x1b.txt".into(),
            kind: EntryKind::Dir,
            size: 0,
            modified: Some(0),
        })
        .line();
        assert_eq!(
            line,
            r#"{"type":"entry","name":"a\u001b.txt","kind":"dir","size":0,"modified":"1970-01-01T00:00:00Z"}"#
        );
        let err = Record::error(
            &ClientError::NoMatch {
                pattern: "*.x".into(),
                remote: true,
            },
            None,
        )
        .line();
        assert_eq!(
            err,
            r#"{"type":"error","code":"no_match","message":"no remote file matches '*.x'"}"#
        );
        let summary = Record::Summary(Summary {
            files: 2,
            bytes: 10,
            ..Summary::default()
        })
        .line();
        assert!(
            summary
                .starts_with(r#"{"type":"summary","files":2,"failed":0,"skipped":0,"bytes":10,"#),
            "{summary}"
        );
    }
}
