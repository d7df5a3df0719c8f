//! The operations on the server's names beyond moving files: make and remove directories,
//! rename, describe (with the SHA-256), delete a tree, walk a tree. Each is one request on its
//! own stream. A server older than these answers `Unsupported`, which becomes a sentence naming
//! the command it lacks ([`lacks`]).

use super::stream::{response, safe, unexpected};
use super::{Client, ClientError, MAX_LIST_BYTES, MAX_LIST_ENTRIES};
use crate::paths::SafeName;
use crate::protocol::{EntryInfo, ErrorCode, Request, Response};

/// A server that does not know `command` says so in a sentence that names it.
pub(super) fn lacks(command: &str, e: ClientError) -> ClientError {
    match e {
        ClientError::Remote {
            code: ErrorCode::Unsupported,
            ..
        } => ClientError::Remote {
            code: ErrorCode::Unsupported,
            message: format!(
                "this server does not support {command}; it is older than this client"
            ),
        },
        other => other,
    }
}

impl Client {
    /// Makes the directory `name` on the server (with `parents`, its missing parents too, and
    /// one already there is fine).
    pub async fn make_dir(&self, name: &str, parents: bool) -> Result<(), ClientError> {
        let name = safe(name)?.to_string();
        let request = Request::MakeDir { name, parents };
        match self.simple(&request, "MKDIR").await? {
            Response::Made => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes the empty directory `name` on the server.
    pub async fn remove_dir(&self, name: &str) -> Result<(), ClientError> {
        let name = safe(name)?.to_string();
        match self.simple(&Request::RemoveDir { name }, "RMDIR").await? {
            Response::Removed { .. } => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Renames `from` to `to` on the server; an existing `to` is refused, never replaced.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), ClientError> {
        let from = safe(from)?.to_string();
        let to = safe(to)?.to_string();
        match self.simple(&Request::Rename { from, to }, "RENAME").await? {
            Response::Renamed => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Describes `name`; with `digest`, its SHA-256 is there too (read by the server if it did
    /// not know it).
    pub async fn stat(&self, name: &str, digest: bool) -> Result<EntryInfo, ClientError> {
        let name = safe(name)?.to_string();
        let request = Request::Stat { name, digest };
        match self.simple(&request, "STAT").await? {
            Response::Info(info) => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes `name` and, if it is a directory, everything in it; returns the files deleted.
    pub async fn delete_tree(&self, name: &str) -> Result<u64, ClientError> {
        let name = safe(name)?.to_string();
        match self
            .simple(&Request::DeleteTree { name }, "DELETE -r")
            .await?
        {
            Response::Removed { files } => Ok(files),
            other => Err(unexpected(&other)),
        }
    }

    /// Every entry below `dir` ("" the top), parents before children, each name checked to be
    /// plain components below `dir`, and within the bounds of a listing.
    pub async fn walk(&self, dir: &str) -> Result<Vec<EntryInfo>, ClientError> {
        self.explain(self.walk_inner(dir).await)
            .map_err(|e| lacks("WALK (needed by sync)", e))
    }

    async fn walk_inner(&self, dir: &str) -> Result<Vec<EntryInfo>, ClientError> {
        if !dir.is_empty() {
            safe(dir)?;
        }
        let mut recv = self.ask(&Request::Walk { dir: dir.into() }).await?;
        let mut all: Vec<EntryInfo> = Vec::new();
        let mut bytes = 0usize;
        loop {
            match response(&mut recv, self.stall).await? {
                Response::WalkPage { entries, last } => {
                    bytes += entries.iter().map(|e| e.name.len()).sum::<usize>();
                    if all.len() + entries.len() > MAX_LIST_ENTRIES || bytes > MAX_LIST_BYTES {
                        return Err(ClientError::Protocol(format!(
                            "a tree of more than {MAX_LIST_ENTRIES} entries or {MAX_LIST_BYTES} bytes of names"
                        )));
                    }
                    for entry in &entries {
                        // Plain components only: no '..', nothing absolute, nothing that
                        // would lead a write or a delete outside the walked directory.
                        SafeName::new(&entry.name).map_err(|reason| ClientError::InvalidName {
                            name: crate::paths::sanitize(&entry.name),
                            reason,
                        })?;
                    }
                    all.extend(entries);
                    if last {
                        return Ok(all);
                    }
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// One request, one answer; `Unsupported` named as `command`.
    async fn simple(&self, request: &Request, command: &str) -> Result<Response, ClientError> {
        let attempt = async {
            let mut recv = self.ask(request).await?;
            response(&mut recv, self.stall).await
        };
        self.explain(attempt.await).map_err(|e| lacks(command, e))
    }
}
