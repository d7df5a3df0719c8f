//! Directory trees for `get -r` and `put -r`: walking the server's tree through LIST, walking a
//! local tree without following symlinks, and creating local directories without following them.
//!
//! A remote tree is walked whole before anything is written, so a tree that cannot be walked
//! (too deep, too large: a server can fake endless nesting with links inside its root) fails
//! without leaving half a copy. Every remote name comes from [`Client::list`], which accepts only
//! plain single components; joined, they stay under the directory asked for, and locally under
//! the directory chosen for the copy.

use std::io;
use std::path::{Path, PathBuf};

use super::{remote_path, Client, ClientError, MAX_LIST_ENTRIES};
use crate::paths::sanitize;
use crate::protocol::EntryKind;

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

/// The most bytes of paths a tree walk keeps (the paths of every file it will fetch).
const MAX_TREE_BYTES: usize = 256 << 20;

/// Lists `dir` on the server and everything below it.
pub async fn walk_remote(client: &Client, dir: &str) -> Result<RemoteTree, ClientError> {
    let mut tree = RemoteTree::default();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = 0usize;
    let mut held = 0usize;
    while let Some(rel) = pending.pop() {
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
        seen += entries.len();
        // Every file's path is kept: bound their bytes too, not just their number.
        held += entries
            .iter()
            .map(|e| name.len() + e.name.len())
            .sum::<usize>();
        if seen > MAX_LIST_ENTRIES || held > MAX_TREE_BYTES {
            return Err(ClientError::Protocol(format!(
                "'{}' holds more than {MAX_LIST_ENTRIES} entries or {MAX_TREE_BYTES} bytes of names",
                sanitize(dir)
            )));
        }
        tree.dirs.push(rel.clone());
        // Pushed in reverse so that the stack pops them in name order.
        for entry in entries.into_iter().rev() {
            let mut child = rel.clone();
            child.push(entry.name);
            match entry.kind {
                EntryKind::File => tree.files.push((child, entry.size)),
                EntryKind::Dir => pending.push(child),
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
mod tests {
    use super::*;

    fn parts(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn directories_are_made_but_never_through_a_link() {
        let base = tempfile::tempdir().unwrap();
        let made = ensure_dirs(base.path(), &parts(&["a", "b"])).unwrap();
        assert!(made.is_dir() && made.ends_with("a/b"));
        assert_eq!(ensure_dirs(base.path(), &parts(&["a", "b"])).unwrap(), made);
        std::fs::write(base.path().join("file"), b"x").unwrap();
        let err = ensure_dirs(base.path(), &parts(&["file", "x"])).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), base.path().join("link")).unwrap();
            let err = ensure_dirs(base.path(), &parts(&["link", "x"])).unwrap_err();
            assert!(err.to_string().contains("symlink"), "{err}");
            assert!(!outside.path().join("x").exists());
        }
    }

    #[test]
    fn a_local_walk_lists_files_and_skips_links_and_empty_dirs() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("d/e")).unwrap();
        std::fs::create_dir(root.path().join("empty")).unwrap();
        std::fs::write(root.path().join("d/e/f.txt"), b"abc").unwrap();
        std::fs::write(root.path().join("top"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tree = rt.block_on(walk_local(root.path().to_path_buf()));
        let files: Vec<_> = tree
            .files
            .iter()
            .map(|(_, p, s)| (p.join("/"), *s))
            .collect();
        assert_eq!(
            files,
            [("d/e/f.txt".to_string(), 3), ("top".to_string(), 0)]
        );
        let reasons: Vec<_> = tree.skipped.iter().map(|s| s.reason).collect();
        assert!(reasons.iter().any(|r| r.contains("empty")), "{reasons:?}");
        #[cfg(unix)]
        assert!(reasons.iter().any(|r| r.contains("symlink")), "{reasons:?}");
        assert!(tree.failed.is_empty());
    }
}
