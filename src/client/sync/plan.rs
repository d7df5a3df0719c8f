//! What a sync will do, decided from the two sides before anything changes: files to send (new,
//! or changed: size or time differ; with `--checksum`, size or SHA-256), directories to make,
//! and with `--delete` what the destination has and the source does not. Excluded names take
//! no part on either side: never sent, never deleted.

use super::exclude::Excludes;
use super::tree::{Node, Tree};
use crate::protocol::EntryKind;

/// Why a file is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The destination does not have it.
    New,
    /// Its size or time differs.
    Changed,
    /// Its SHA-256 differs (`--checksum`).
    Content,
}

impl Why {
    /// As records and lines say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::New => "new",
            Why::Changed => "changed",
            Why::Content => "content differs",
        }
    }
}

/// A file to send.
#[derive(Debug, Clone)]
pub struct Send {
    /// Its path below the synced directory.
    pub rel: String,
    /// Its size on the source.
    pub size: u64,
    pub why: Why,
}

/// Something of the destination to remove.
#[derive(Debug, Clone)]
pub struct Remove {
    pub rel: String,
    /// A directory, with everything in it.
    pub tree: bool,
    /// Files it holds (1 for a file), for the count.
    pub files: u64,
}

/// A sync's plan.
#[derive(Debug, Default)]
pub struct Plan {
    /// Directories to make on the destination, parents first.
    pub dirs: Vec<String>,
    /// Entries of the destination in the way of what the source has there (a file where a
    /// directory goes, or the other way round): removed first, with `--delete` only.
    pub clear: Vec<Remove>,
    /// Files to send.
    pub send: Vec<Send>,
    /// Files of the same size on both sides whose SHA-256 decides (`--checksum`).
    pub check: Vec<(String, u64)>,
    /// Files the same on both sides.
    pub unchanged: Vec<String>,
    /// What the source has that cannot be synced (links, devices), and why.
    pub skipped: Vec<(String, &'static str)>,
    /// With `--delete`: what the destination has and the source does not.
    pub remove: Vec<Remove>,
    /// What cannot be done, and why.
    pub failed: Vec<(String, String)>,
}

/// Compares `src` with `dst`.
pub fn plan(src: &Tree, dst: &Tree, excludes: &Excludes, delete: bool, checksum: bool) -> Plan {
    let mut plan = Plan::default();
    let mut cleared: Vec<String> = Vec::new();
    for (rel, s) in src {
        if excludes.excludes(rel, s.kind == EntryKind::Dir) {
            continue;
        }
        let there = dst.get(rel);
        let in_the_way = there.is_some_and(|d| d.kind != s.kind || s.kind == EntryKind::Other);
        if s.kind == EntryKind::Other {
            plan.skipped.push((
                rel.clone(),
                "not a regular file or directory (a link is not followed)",
            ));
            continue;
        }
        if in_the_way {
            let d = there.expect("checked above");
            if !delete {
                let what = match d.kind {
                    EntryKind::Dir => "a directory",
                    EntryKind::File => "a file",
                    EntryKind::Other => "something not a file or directory",
                };
                plan.failed.push((
                    rel.clone(),
                    format!("the destination has {what} there; --delete replaces it"),
                ));
                continue;
            }
            plan.clear.push(removal(rel, d, dst));
            cleared.push(rel.clone());
        }
        let there = there.filter(|_| !in_the_way);
        match s.kind {
            EntryKind::Dir if there.is_none() => plan.dirs.push(rel.clone()),
            EntryKind::Dir => {}
            _ => match there {
                None => plan.send.push(Send {
                    rel: rel.clone(),
                    size: s.size,
                    why: Why::New,
                }),
                Some(d) if d.size != s.size => plan.send.push(Send {
                    rel: rel.clone(),
                    size: s.size,
                    why: if checksum { Why::Content } else { Why::Changed },
                }),
                Some(_) if checksum => plan.check.push((rel.clone(), s.size)),
                Some(d) if !same_time(s, d) => plan.send.push(Send {
                    rel: rel.clone(),
                    size: s.size,
                    why: Why::Changed,
                }),
                Some(_) => plan.unchanged.push(rel.clone()),
            },
        }
    }
    if delete {
        let mut gone: Vec<&str> = Vec::new();
        for (rel, d) in dst {
            let below_gone = gone
                .iter()
                .any(|g| rel.strip_prefix(g).is_some_and(|r| r.starts_with('/')));
            if below_gone || src.contains_key(rel) {
                continue;
            }
            if excludes.excludes(rel, d.kind == EntryKind::Dir) {
                continue;
            }
            // A directory goes whole unless something excluded is inside, which stays (and the
            // directory with it); then what else is inside goes one by one.
            if d.kind == EntryKind::Dir && holds_excluded(rel, dst, excludes) {
                continue;
            }
            plan.remove.push(removal(rel, d, dst));
            if d.kind == EntryKind::Dir {
                gone.push(rel);
            }
        }
    }
    // A cleared directory's contents are gone with it: nothing below it is removed again.
    plan.remove.retain(|r| {
        !cleared.iter().any(|c| {
            r.rel == *c
                || r.rel
                    .strip_prefix(c.as_str())
                    .is_some_and(|x| x.starts_with('/'))
        })
    });
    plan
}

/// Whether the two times are the same second (a side that does not know its time differs).
fn same_time(a: &Node, b: &Node) -> bool {
    a.modified.is_some() && a.modified == b.modified
}

/// Removing `rel` (which is `d`) of the destination `dst`.
fn removal(rel: &str, d: &Node, dst: &Tree) -> Remove {
    match d.kind {
        EntryKind::Dir => Remove {
            rel: rel.to_owned(),
            tree: true,
            files: below(rel, dst)
                .filter(|(_, n)| n.kind != EntryKind::Dir)
                .count() as u64,
        },
        _ => Remove {
            rel: rel.to_owned(),
            tree: false,
            files: 1,
        },
    }
}

/// The entries of `tree` below the directory `dir`.
fn below<'t>(dir: &str, tree: &'t Tree) -> impl Iterator<Item = (&'t String, &'t Node)> {
    let prefix = format!("{dir}/");
    tree.range(prefix.clone()..)
        .take_while(move |(k, _)| k.starts_with(&prefix))
}

fn holds_excluded(dir: &str, tree: &Tree, excludes: &Excludes) -> bool {
    below(dir, tree).any(|(k, n)| excludes.excludes(k, n.kind == EntryKind::Dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, modified: u64) -> Node {
        Node {
            kind: EntryKind::File,
            size,
            modified: Some(modified),
            mode: None,
            sha256: None,
        }
    }

    fn dir() -> Node {
        Node {
            kind: EntryKind::Dir,
            size: 0,
            modified: None,
            mode: None,
            sha256: None,
        }
    }

    fn tree(items: &[(&str, Node)]) -> Tree {
        items
            .iter()
            .map(|(k, n)| (k.to_string(), n.clone()))
            .collect()
    }

    fn names(items: &[Send]) -> Vec<(&str, Why)> {
        items.iter().map(|s| (s.rel.as_str(), s.why)).collect()
    }

    #[test]
    fn new_and_changed_files_are_sent_the_rest_counted() {
        let src = tree(&[
            ("same", file(1, 10)),
            ("bigger", file(2, 10)),
            ("touched", file(1, 11)),
            ("new", file(1, 10)),
            ("d", dir()),
            ("d/empty", dir()),
            ("skip.tmp", file(1, 10)),
        ]);
        let dst = tree(&[
            ("same", file(1, 10)),
            ("bigger", file(1, 10)),
            ("touched", file(1, 10)),
            ("d", dir()),
            ("old", file(1, 10)),
            ("skip2.tmp", file(1, 10)),
        ]);
        let ex = Excludes::new(&["*.tmp".into()]).unwrap();
        let p = plan(&src, &dst, &ex, false, false);
        assert_eq!(
            names(&p.send),
            [
                ("bigger", Why::Changed),
                ("new", Why::New),
                ("touched", Why::Changed)
            ]
        );
        assert_eq!(p.unchanged, ["same"]);
        assert_eq!(p.dirs, ["d/empty"]);
        assert!(p.remove.is_empty(), "nothing removed without --delete");
        let p = plan(&src, &dst, &ex, true, false);
        let removed: Vec<_> = p.remove.iter().map(|r| r.rel.as_str()).collect();
        assert_eq!(removed, ["old"], "excluded names are never deleted");
        let p = plan(&src, &dst, &ex, false, true);
        assert_eq!(
            names(&p.send),
            [("bigger", Why::Content), ("new", Why::New)]
        );
        let checked: Vec<_> = p.check.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(checked, ["same", "touched"]);
    }

    #[test]
    fn a_directory_goes_whole_unless_it_holds_something_excluded() {
        let src = tree(&[]);
        let dst = tree(&[
            ("gone", dir()),
            ("gone/a", file(1, 1)),
            ("gone/sub", dir()),
            ("gone/sub/b", file(1, 1)),
            ("keep", dir()),
            ("keep/x.tmp", file(1, 1)),
            ("keep/y", file(1, 1)),
        ]);
        let ex = Excludes::new(&["*.tmp".into()]).unwrap();
        let p = plan(&src, &dst, &ex, true, false);
        let removed: Vec<_> = p
            .remove
            .iter()
            .map(|r| (r.rel.as_str(), r.tree, r.files))
            .collect();
        assert_eq!(removed, [("gone", true, 2), ("keep/y", false, 1)]);
    }

    #[test]
    fn what_is_in_the_way_is_replaced_only_with_delete() {
        let src = tree(&[("x", dir()), ("x/f", file(1, 1)), ("y", file(1, 1))]);
        let dst = tree(&[("x", file(1, 1)), ("y", dir()), ("y/z", file(1, 1))]);
        let p = plan(&src, &dst, &Excludes::default(), false, false);
        assert_eq!(p.failed.len(), 2);
        assert!(p.send.iter().all(|s| s.rel == "x/f"));
        let p = plan(&src, &dst, &Excludes::default(), true, false);
        let cleared: Vec<_> = p.clear.iter().map(|r| (r.rel.as_str(), r.tree)).collect();
        assert_eq!(cleared, [("x", false), ("y", true)]);
        assert_eq!(p.dirs, ["x"]);
        assert_eq!(names(&p.send), [("x/f", Why::New), ("y", Why::New)]);
        assert!(p.remove.is_empty(), "{:?}", p.remove);
    }
}
