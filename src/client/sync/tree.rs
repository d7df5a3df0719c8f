//! Both sides of a sync as one shape: every entry below the synced directory, by its path from
//! there (`/`-separated), with what is compared (kind, size, time, permission bits, SHA-256 when
//! known). The local side is walked here without following links; the remote side comes from
//! one WALK ([`crate::client::Client::walk`]), whose names are checked as every name from a
//! server is.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::client::keep::local_mode;
use crate::client::tree::MAX_DEPTH;
use crate::client::{Client, ClientError, MAX_LIST_ENTRIES};
use crate::paths::SafeName;
use crate::protocol::{EntryKind, ErrorCode};

/// One entry of a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// File, directory, or anything else (a link, never followed; a device...).
    pub kind: EntryKind,
    /// Bytes (files only).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub modified: Option<u64>,
    /// Permission bits.
    pub mode: Option<u32>,
    /// SHA-256, when known without reading (the server's, where it keeps one).
    pub sha256: Option<[u8; 32]>,
}

/// A side: path below the synced directory → entry. Sorted, so a directory comes before what
/// it holds.
pub type Tree = BTreeMap<String, Node>;

/// A local side as walked, and what could not be walked or named.
#[derive(Debug, Default)]
pub struct LocalSide {
    /// What was found.
    pub tree: Tree,
    /// Entries that cannot take part (unreadable, a name the server would refuse).
    pub failed: Vec<(String, ClientError)>,
}

/// Whether `name` is a download's hidden partial (`.NAME.qft-part`): qft's own, never synced,
/// never deleted by a sync (a later download resumes it).
pub fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".qft-part")
}

/// Walks the local directory `root`; `None` if there is nothing there.
pub async fn local(root: PathBuf) -> Result<Option<LocalSide>, ClientError> {
    let walked = tokio::task::spawn_blocking(move || {
        let meta = match std::fs::metadata(&root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ClientError::Local { path: root, source }),
        };
        if !meta.is_dir() {
            return Err(ClientError::Unsafe {
                path: root,
                reason: "is not a directory; sync copies directories".into(),
            });
        }
        let mut side = LocalSide::default();
        walk(&root, "", 0, &mut side)?;
        Ok(Some(side))
    });
    walked
        .await
        .unwrap_or_else(|e| Err(ClientError::Interrupted(e.to_string())))
}

fn walk(dir: &Path, rel: &str, depth: usize, side: &mut LocalSide) -> Result<(), ClientError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(source) => {
            let path = dir.to_path_buf();
            side.failed
                .push((rel.to_owned(), ClientError::Local { path, source }));
            return Ok(());
        }
    };
    let mut items: Vec<_> = read.filter_map(Result::ok).collect();
    items.sort_by_key(|i| i.file_name());
    for item in items {
        let path = item.path();
        let Ok(name) = item.file_name().into_string() else {
            let reason = "the name is not UTF-8, so the server cannot hold it".into();
            side.failed.push((
                path.display().to_string(),
                ClientError::Unsafe { path, reason },
            ));
            continue;
        };
        if is_partial(&name) {
            continue;
        }
        let below = join(rel, &name);
        if let Err(reason) = SafeName::new(&below) {
            let e = ClientError::InvalidName {
                name: crate::paths::sanitize(&below),
                reason,
            };
            side.failed.push((below, e));
            continue;
        }
        // Not followed: a link is an entry of its own.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(source) => {
                side.failed
                    .push((below, ClientError::Local { path, source }));
                continue;
            }
        };
        let kind = if meta.is_file() {
            EntryKind::File
        } else if meta.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::Other
        };
        side.tree.insert(
            below.clone(),
            Node {
                kind,
                size: if kind == EntryKind::File {
                    meta.len()
                } else {
                    0
                },
                modified: crate::fsutil::mtime(&meta),
                mode: local_mode(&meta),
                sha256: None,
            },
        );
        if side.tree.len() > MAX_LIST_ENTRIES {
            return Err(ClientError::Unsafe {
                path,
                reason: format!("the tree holds more than {MAX_LIST_ENTRIES} entries"),
            });
        }
        if kind == EntryKind::Dir {
            if depth + 1 >= MAX_DEPTH {
                let reason = format!("nested more than {MAX_DEPTH} directories deep");
                side.failed
                    .push((below, ClientError::Unsafe { path, reason }));
                continue;
            }
            walk(&path, &below, depth + 1, side)?;
        }
    }
    Ok(())
}

/// The remote directory `dir` ("" the top) as a side; `None` if there is nothing there.
pub async fn remote(client: &Client, dir: &str) -> Result<Option<Tree>, ClientError> {
    let entries = match client.walk(dir).await {
        Ok(entries) => entries,
        Err(ClientError::Remote {
            code: ErrorCode::NotFound,
            ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut tree = Tree::new();
    for e in entries {
        let node = Node {
            kind: e.kind,
            size: e.size,
            modified: e.modified,
            mode: e.mode,
            sha256: e.sha256,
        };
        tree.insert(e.name, node);
    }
    // A name below a directory the walk did not list (a server that lies) has no place here.
    let orphans: Vec<String> = tree
        .keys()
        .filter(|name| {
            name.rsplit_once('/').is_some_and(|(parent, _)| {
                tree.get(parent).is_none_or(|p| p.kind != EntryKind::Dir)
            })
        })
        .cloned()
        .collect();
    if let Some(name) = orphans.first() {
        return Err(ClientError::Protocol(format!(
            "the server's walk named '{}' without the directory it is in",
            crate::paths::sanitize(name)
        )));
    }
    Ok(Some(tree))
}

/// `dir/name`, or `name` at the top.
pub fn join(dir: &str, name: &str) -> String {
    match dir.is_empty() {
        true => name.to_owned(),
        false => format!("{dir}/{name}"),
    }
}

/// Where the entry `rel` of a local side at `root` is.
pub fn local_path(root: &Path, rel: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(rel.split('/'));
    path
}
