//! Directory trees for `get -r` and `put -r`: walking the server's tree through LIST, walking a
//! local tree without following symlinks, and creating local directories without following them.
//!
//! A remote tree is walked whole before anything is written, so a tree that cannot be walked
//! (too deep, too large: a server can fake endless nesting with links inside its root) fails
//! without leaving half a copy. What the walk holds is bounded by [`TreeLimits`]: entries, and
//! their memory as it really is (a path deep in a tree costs a string per component, not just
//! its bytes). A directory that lists exactly as one above it does (a link back up: the server
//! lists a link to a directory inside its root as that directory) is skipped, not walked round
//! and round. Every remote name comes from [`Client::list`], which accepts only plain single
//! components; joined, they stay under the directory asked for, and locally under the directory
//! chosen for the copy.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{remote_path, Client, ClientError, MAX_LIST_ENTRIES};
use crate::paths::sanitize;
use crate::protocol::{Entry, EntryKind};

/// Deeper trees are refused. Real trees are far shallower; a deeper one is more likely a loop
/// of links on the server.
pub const MAX_DEPTH: usize = 64;

/// Something left out of a copy, and why (reported, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The name (remote) or path (local) as the user sees it.
    pub name: String,
    /// Why, one phrase.
    pub reason: &'static str,
}

/// A remote tree below a directory, in listing order (parents before children).
#[derive(Debug, Default)]
pub struct RemoteTree {
    /// Every directory, as components below the walked one (the walked one itself is `[]`).
    pub dirs: Vec<Vec<String>>,
    /// Every regular file: components below the walked directory, and the listed size.
    pub files: Vec<(Vec<String>, u64)>,
    /// Links to outside the served directory, devices and the like.
    pub skipped: Vec<Skipped>,
}

/// What a remote walk may hold.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    /// Entries (files, directories, skipped ones) in the whole tree.
    pub entries: usize,
    /// The walk's memory, estimated per entry by [`entry_cost`]. A `get -r` then plans a
    /// download per file, which holds about as much again twice (its remote name, local path
    /// and directories).
    pub memory: usize,
}

impl Default for TreeLimits {
    /// A million entries and 256 MiB: a million files three levels down fit; a malicious
    /// server's 999k entries 63 levels deep (5 GB before this bound) stop at 0.1 million.
    fn default() -> Self {
        TreeLimits {
            entries: MAX_LIST_ENTRIES,
            memory: 256 << 20,
        }
    }
}

/// What one entry `name` under the components `parent` costs a walk: each component of its
/// path is a `String` of its own (24 bytes and an allocation, ~40 in all, beyond its bytes), and
/// the entry itself a slot in a `Vec` with its size.
fn entry_cost(parent: &[String], name: &str) -> usize {
    const PER_COMPONENT: usize = 40;
    const PER_ENTRY: usize = 48;
    let path: usize = parent.iter().map(|p| p.len() + PER_COMPONENT).sum();
    path + name.len() + PER_COMPONENT + PER_ENTRY
}

/// A directory's listing, as a digest: two listings with equal digests are the same names,
/// kinds, sizes and times.
fn listing_digest(entries: &[Entry]) -> [u8; 32] {
    let mut h = Sha256::new();
    for e in entries {
        h.update((e.name.len() as u64).to_le_bytes());
        h.update(e.name.as_bytes());
        h.update([e.kind as u8]);
        h.update(e.size.to_le_bytes());
        h.update(e.modified.map_or(u64::MAX, |m| m).to_le_bytes());
    }
    h.finalize().into()
}

/// The digests of the directories from the walked one down to a directory to walk.
struct Ancestors {
    digest: [u8; 32],
    parent: Option<Arc<Ancestors>>,
}

impl Ancestors {
    fn contains(self: &Arc<Self>, digest: &[u8; 32]) -> bool {
        let mut at = Some(self);
        while let Some(a) = at {
            if &a.digest == digest {
                return true;
            }
            at = a.parent.as_ref();
        }
        false
    }
}

/// Lists `dir` on the server and everything below it.
pub async fn walk_remote(client: &Client, dir: &str) -> Result<RemoteTree, ClientError> {
    walk_remote_within(client, dir, TreeLimits::default()).await
}

/// [`walk_remote`] within `limits`.
async fn walk_remote_within(
    client: &Client,
    dir: &str,
    limits: TreeLimits,
) -> Result<RemoteTree, ClientError> {
    let mut tree = RemoteTree::default();
    let mut pending: Vec<(Vec<String>, Option<Arc<Ancestors>>)> = vec![(Vec::new(), None)];
    let (mut seen, mut held) = (0usize, 0usize);
    while let Some((rel, above)) = pending.pop() {
        if rel.len() > MAX_DEPTH {
            return Err(ClientError::Protocol(format!(
                "'{}' is nested more than {MAX_DEPTH} directories deep",
                sanitize(dir)
            )));
        }
        let name = rel
            .iter()
            .fold(dir.to_owned(), |acc, part| remote_path::join(&acc, part));
        let entries = client.list(&name).await?;
        let digest = listing_digest(&entries);
        if above.as_ref().is_some_and(|a| a.contains(&digest)) {
            tree.skipped.push(Skipped {
                name,
                reason: "lists exactly as a directory above it: a link back up (not followed)",
            });
            continue;
        }
        seen += entries.len();
        held += entries
            .iter()
            .map(|e| entry_cost(&rel, &e.name))
            .sum::<usize>();
        if seen > limits.entries || held > limits.memory {
            return Err(ClientError::Protocol(format!(
                "'{}' holds more than {} entries or {} MiB of paths; refusing to copy it",
                sanitize(dir),
                limits.entries,
                limits.memory >> 20
            )));
        }
        let here = Arc::new(Ancestors {
            digest,
            parent: above,
        });
        tree.dirs.push(rel.clone());
        // Pushed in reverse so that the stack pops them in name order.
        for entry in entries.into_iter().rev() {
            let mut child = rel.clone();
            child.push(entry.name);
            match entry.kind {
                EntryKind::File => tree.files.push((child, entry.size)),
                EntryKind::Dir => pending.push((child, Some(here.clone()))),
                EntryKind::Other => tree.skipped.push(Skipped {
                    name: remote_path::join(&name, child.last().map_or("", |s| s)),
                    reason: "not a regular file or directory (a link leading outside, a device...)",
                }),
            }
        }
    }
    tree.files.sort();
    tree.skipped.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tree)
}

/// A local tree below a directory.
#[derive(Debug, Default)]
pub struct LocalTree {
    /// Regular files: the path, its components below the walked directory, and its size.
    pub files: Vec<(PathBuf, Vec<String>, u64)>,
    /// Symlinks (never followed), devices, FIFOs, empty directories.
    pub skipped: Vec<Skipped>,
    /// Entries that cannot be sent (unreadable, a name that is not UTF-8).
    pub failed: Vec<ClientError>,
}

/// Walks the local directory `root` without following symlinks. Runs on a blocking thread.
pub async fn walk_local(root: PathBuf) -> LocalTree {
    tokio::task::spawn_blocking(move || {
        let mut tree = LocalTree::default();
        walk_local_into(&root, &mut Vec::new(), &mut tree);
        tree
    })
    .await
    .unwrap_or_else(|e| LocalTree {
        failed: vec![ClientError::Local {
            path: PathBuf::new(),
            source: io::Error::other(e.to_string()),
        }],
        ..LocalTree::default()
    })
}

fn walk_local_into(dir: &Path, rel: &mut Vec<String>, tree: &mut LocalTree) {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(source) => {
            tree.failed.push(ClientError::Local {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    let mut items: Vec<_> = read.filter_map(Result::ok).collect();
    items.sort_by_key(|e| e.file_name());
    if items.is_empty() && !rel.is_empty() {
        tree.skipped.push(Skipped {
            name: dir.display().to_string(),
            reason: "an empty directory (the server makes directories only to hold files)",
        });
    }
    for item in items {
        let path = item.path();
        let Ok(name) = item.file_name().into_string() else {
            tree.failed.push(ClientError::Unsafe {
                path,
                reason: "the name is not UTF-8, so it cannot be sent".into(),
            });
            continue;
        };
        // DirEntry::file_type does not follow symlinks.
        let kind = match item.file_type() {
            Ok(kind) => kind,
            Err(source) => {
                tree.failed.push(ClientError::Local { path, source });
                continue;
            }
        };
        if kind.is_symlink() {
            tree.skipped.push(Skipped {
                name: path.display().to_string(),
                reason: "a symlink (not followed)",
            });
        } else if kind.is_dir() {
            if rel.len() >= MAX_DEPTH {
                tree.failed.push(ClientError::Unsafe {
                    path,
                    reason: format!("nested more than {MAX_DEPTH} directories deep"),
                });
                continue;
            }
            rel.push(name);
            walk_local_into(&path, rel, tree);
            rel.pop();
        } else if kind.is_file() {
            let size = item.metadata().map(|m| m.len()).unwrap_or(0);
            let mut parts = rel.clone();
            parts.push(name);
            tree.files.push((path, parts, size));
        } else {
            tree.skipped.push(Skipped {
                name: path.display().to_string(),
                reason: "not a regular file (a device, FIFO or socket)",
            });
        }
    }
}

/// Makes `base/dirs[0]/dirs[1]/...`, one level at a time, refusing to pass through a symlink or
/// anything that is not a directory: names chosen by a server never lead a write outside `base`.
/// `base` itself is the user's choice and is trusted.
pub fn ensure_dirs(base: &Path, dirs: &[String]) -> Result<PathBuf, ClientError> {
    let mut path = base.to_path_buf();
    for part in dirs {
        path.push(part);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match std::fs::create_dir(&path) {
                    Ok(()) => continue,
                    // Made meanwhile (by a parallel download): check what it is.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        std::fs::symlink_metadata(&path).map_err(ClientError::local(&path))?
                    }
                    Err(source) => return Err(ClientError::Local { path, source }),
                }
            }
            Err(source) => return Err(ClientError::Local { path, source }),
        };
        if meta.file_type().is_symlink() {
            return Err(ClientError::Unsafe {
                path,
                reason: "is a symlink; not writing through it".into(),
            });
        }
        if !meta.is_dir() {
            return Err(ClientError::Unsafe {
                path,
                reason: "exists and is not a directory".into(),
            });
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
