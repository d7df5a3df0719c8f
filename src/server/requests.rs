//! What each request is, apart from running it: the permission it needs, its name in the log
//! and the metrics, and which way its file bytes go. The dispatcher ([`super::dispatch`]) and a
//! browser's scope ([`super::web`]) both ask.

use super::auth::Permissions;
use crate::protocol::Request;

/// The permission each request needs; `None` for those anyone may make.
pub(super) fn needs(request: &Request) -> Option<(Permissions, &'static str)> {
    match request {
        Request::List { .. } | Request::Download { .. } | Request::ResumeDownload { .. } => {
            Some((Permissions::READ, "read"))
        }
        // What the server's disk has left is the server's business, told to its readers.
        Request::Space => Some((Permissions::READ, "read")),
        Request::Upload { .. } | Request::ResumeUpload { .. } => {
            Some((Permissions::WRITE, "write"))
        }
        Request::Delete { .. } => Some((Permissions::DELETE, "delete")),
        Request::Shutdown => Some((Permissions::ADMIN, "admin")),
        Request::Help => None,
        // Managing names, metadata and trees.
        Request::Stat { .. } | Request::Walk { .. } => Some((Permissions::READ, "read")),
        Request::MakeDir { .. }
        | Request::Rename { .. }
        | Request::UploadMeta { .. }
        | Request::ResumeUploadMeta { .. }
        | Request::ResumeUploadCompressed { .. }
        | Request::UploadBundle { .. } => Some((Permissions::WRITE, "write")),
        Request::ResumeDownloadCompressed { .. } => Some((Permissions::READ, "read")),
        Request::RemoveDir { .. } | Request::DeleteTree { .. } => {
            Some((Permissions::DELETE, "delete"))
        }
        // A link grants what the server serves to whoever holds it: the operator's call.
        Request::ShareCreate { .. } | Request::ShareList | Request::ShareRevoke { .. } => {
            Some((Permissions::ADMIN, "admin"))
        }
    }
}

/// Whether a finished command continued a partial.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resumable {
    No,
    /// Resumed if fewer than `size` bytes had to come.
    Upload {
        size: u64,
    },
    /// The client offered a partial (how much of it was used is the handler's to know).
    Download {
        offered: bool,
    },
}

impl Resumable {
    pub(super) fn resumed(self, moved: u64) -> bool {
        match self {
            Resumable::No => false,
            Resumable::Upload { size } => moved < size,
            Resumable::Download { offered } => offered,
        }
    }
}

/// Which way a command's file bytes go (`Some(true)`: in), and whether it may resume.
pub(super) fn traffic(request: &Request) -> (Option<bool>, Resumable) {
    match request {
        Request::Upload { .. } | Request::UploadMeta { .. } => (Some(true), Resumable::No),
        Request::ResumeUpload { size, .. }
        | Request::ResumeUploadMeta { size, .. }
        | Request::ResumeUploadCompressed { size, .. } => {
            (Some(true), Resumable::Upload { size: *size })
        }
        Request::ResumeDownloadCompressed { have, .. } => {
            (Some(false), Resumable::Download { offered: *have > 0 })
        }
        Request::Download { .. } => (Some(false), Resumable::No),
        Request::ResumeDownload { have, .. } => {
            (Some(false), Resumable::Download { offered: *have > 0 })
        }
        _ => (None, Resumable::No),
    }
}

/// The command's name in the log and the metrics, and the name it concerns.
pub(super) fn describe(request: &Request) -> (&'static str, &str) {
    match request {
        Request::List { dir } => ("LIST", dir),
        Request::Download { name } => ("DOWNLOAD", name),
        Request::Upload { name, .. } => ("UPLOAD", name),
        Request::Delete { name } => ("DELETE", name),
        Request::Help => ("HELP", ""),
        Request::Shutdown => ("SHUTDOWN", ""),
        Request::ResumeUpload { name, .. } => ("UPLOAD", name),
        Request::ResumeDownload { name, .. } => ("DOWNLOAD", name),
        Request::Space => ("DF", ""),
        Request::MakeDir { name, .. } => ("MKDIR", name),
        Request::RemoveDir { name } => ("RMDIR", name),
        Request::Rename { from, .. } => ("RENAME", from),
        Request::Stat { name, .. } => ("STAT", name),
        Request::DeleteTree { name } => ("DELETE", name),
        Request::Walk { dir } => ("WALK", dir),
        Request::UploadMeta { name, .. } => ("UPLOAD", name),
        Request::ResumeUploadMeta { name, .. } => ("UPLOAD", name),
        Request::ResumeUploadCompressed { name, .. } => ("UPLOAD", name),
        Request::ResumeDownloadCompressed { name, .. } => ("DOWNLOAD", name),
        Request::ShareCreate { name, .. } => ("SHARE", name),
        Request::ShareList => ("SHARE", ""),
        Request::ShareRevoke { id } => ("SHARE", id),
        // Its files are logged and counted as uploads, each as it is answered.
        Request::UploadBundle { .. } => ("UPLOAD_BUNDLE", ""),
    }
}
