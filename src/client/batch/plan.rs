//! What a many-file command will do, worked out before any transfer starts: the [`Job`]s, the
//! directories of a tree, what was skipped and what already failed. The rules that keep a batch
//! from hurting itself live here: every local place comes from a checked name
//! ([`local_target`]), and two jobs never write one local file or one remote name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::client::bundle;
use crate::client::remote_path::{join, last};
use crate::client::tree::{RemoteTree, Skipped};
use crate::client::ClientError;
use crate::paths::{sanitize, SafeName};

/// One file to move.
#[derive(Debug)]
pub(super) enum Job {
    Download {
        /// The remote name.
        name: String,
        /// Where it goes.
        dest: PathBuf,
        /// For a tree: the chosen directory and the components below it that must be directories
        /// (made, and checked not to be symlinks, just before writing).
        under: Option<(PathBuf, Vec<String>)>,
        /// From the listing, when the name came from one.
        size: Option<u64>,
    },
    Upload {
        /// The local file.
        path: PathBuf,
        /// The remote name.
        name: String,
        /// From the local walk.
        size: Option<u64>,
    },
    /// `get NAME -o -`: the file's bytes onto stdout, verified at the end.
    DownloadToStdout {
        /// The remote name.
        name: String,
    },
    /// `put - --name NAME`: what stdin gives, stored as `name`.
    UploadStdin {
        /// The remote name.
        name: String,
    },
    /// Small files uploaded together on one stream ([`crate::client::bundle`]).
    Bundle {
        /// Each file's local path and remote name.
        files: Vec<(PathBuf, String)>,
        /// Each file's size, from the local walk.
        sizes: Vec<u64>,
    },
}

impl Job {
    /// How the job is named in bars, errors and the summary.
    pub(super) fn label(&self) -> String {
        match self {
            Job::Download { name, .. } | Job::DownloadToStdout { name } => name.clone(),
            Job::Upload { path, .. } => path.display().to_string(),
            Job::UploadStdin { .. } => "stdin".to_owned(),
            Job::Bundle { files, .. } => format!("{} small files", files.len()),
        }
    }

    pub(super) fn size(&self) -> Option<u64> {
        match self {
            Job::Download { size, .. } | Job::Upload { size, .. } => *size,
            Job::DownloadToStdout { .. } | Job::UploadStdin { .. } => None,
            Job::Bundle { sizes, .. } => Some(sizes.iter().sum()),
        }
    }

    /// How many files the job moves.
    pub(super) fn files(&self) -> usize {
        match self {
            Job::Bundle { files, .. } => files.len(),
            _ => 1,
        }
    }

    /// Whether the job downloads (else it uploads).
    pub(super) fn downloads(&self) -> bool {
        matches!(self, Job::Download { .. } | Job::DownloadToStdout { .. })
    }
}

/// What a command will do, worked out before any transfer starts.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The transfers, in the order they start.
    pub(super) jobs: Vec<Job>,
    /// Local directories of a tree (so empty ones are copied too): base and components.
    pub(super) dirs: Vec<(PathBuf, Vec<String>)>,
    /// Entries left out, reported before the transfers start.
    pub(super) skipped: Vec<Skipped>,
    /// Failures found while planning, with the name they concern.
    pub(super) failed: Vec<(String, ClientError)>,
}

impl Plan {
    pub(super) fn fail(&mut self, name: impl Into<String>, e: ClientError) {
        self.failed.push((name.into(), e));
    }

    /// A job refused because it would collide with another of the batch (`path` is where).
    fn refuse(&mut self, name: &str, path: &Path, reason: String) {
        let path = path.to_path_buf();
        self.fail(name, ClientError::Unsafe { path, reason });
    }

    pub(super) fn skip(&mut self, name: String, reason: &'static str) {
        self.skipped.push(Skipped { name, reason });
    }

    pub(super) fn download(
        &mut self,
        name: &str,
        output: Option<&Path>,
        many: bool,
        size: Option<u64>,
    ) {
        match local_target(name, output, many) {
            Ok(dest) => self.jobs.push(Job::Download {
                name: name.to_owned(),
                dest,
                under: None,
                size,
            }),
            Err(e) => self.fail(name, e),
        }
    }

    /// A remote tree `name` goes to `<output or .>/<last part of name>/...`.
    pub(super) fn download_tree(&mut self, name: &str, tree: RemoteTree, output: Option<&Path>) {
        // No "./" in front of the paths shown for the current directory.
        let base = output.unwrap_or(Path::new("")).to_path_buf();
        let top = last(name).to_owned();
        for rel in tree.dirs {
            let mut dirs = vec![top.clone()];
            dirs.extend(rel);
            self.dirs.push((base.clone(), dirs));
        }
        for (rel, size) in tree.files {
            let remote = join(name, &rel.join("/"));
            let mut dirs = vec![top.clone()];
            dirs.extend(rel);
            let file = dirs.pop().unwrap_or_default();
            let mut dest = base.clone();
            dest.extend(&dirs);
            dest.push(&file);
            self.jobs.push(Job::Download {
                name: remote,
                dest,
                under: Some((base.clone(), dirs)),
                size: Some(size),
            });
        }
        self.skipped.extend(tree.skipped);
    }

    /// Two remote files that would land on one local path: the first wins, the others fail
    /// (nothing is silently overwritten by its own batch). The same name twice is sent once.
    pub(super) fn dedupe_downloads(&mut self) {
        let mut seen: HashMap<PathBuf, String> = HashMap::new();
        let mut kept = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if let Job::Download { name, dest, .. } = &job {
                // A file named like another download's partial would be written into it.
                let looks_partial = dest
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".qft-part"));
                if looks_partial {
                    let reason = "a name qft keeps for unfinished downloads; not written";
                    self.refuse(name, dest, reason.to_string());
                    continue;
                }
                match seen.get(dest) {
                    Some(first) if first == name => continue,
                    Some(first) => {
                        let reason = format!(
                            "would also receive '{}' in this batch; not overwriting",
                            sanitize(first)
                        );
                        self.refuse(name, dest, reason);
                        continue;
                    }
                    None => {
                        seen.insert(dest.clone(), name.clone());
                    }
                }
            }
            kept.push(job);
        }
        self.jobs = kept;
    }

    /// Two local files that would be stored under one remote name: the second is refused
    /// rather than racing the first (the last to finish would silently win).
    pub(super) fn dedupe_uploads(&mut self) {
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        let mut kept = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if let Job::Upload { path, name, .. } = &job {
                match seen.get(name) {
                    Some(first) if first == path => continue,
                    Some(first) => {
                        let reason = format!(
                            "would be stored as '{}' like {} in this batch; not sent",
                            sanitize(name),
                            sanitize(&first.display().to_string())
                        );
                        self.refuse(name, path, reason);
                        continue;
                    }
                    None => {
                        seen.insert(name.clone(), path.clone());
                    }
                }
            }
            kept.push(job);
        }
        self.jobs = kept;
    }

    /// Puts small uploads whose size the walk measured into bundles ([`bundle::pack`]): each
    /// bundle one job, on one stream. Larger files and a lone small one stay as they are.
    pub(super) fn bundle_uploads(&mut self) {
        let small = |job: &Job| match job {
            Job::Upload { size: Some(s), .. } if bundle::fits(*s) => Some(*s),
            _ => None,
        };
        let packed = bundle::pack(std::mem::take(&mut self.jobs), small);
        self.jobs = packed
            .into_iter()
            .map(|packed| match packed {
                bundle::Packed::Alone(job) => job,
                bundle::Packed::Bundle(jobs) => {
                    let (files, sizes) = jobs
                        .into_iter()
                        .filter_map(|job| match job {
                            Job::Upload {
                                path,
                                name,
                                size: Some(size),
                            } => Some(((path, name), size)),
                            _ => None,
                        })
                        .unzip();
                    Job::Bundle { files, sizes }
                }
            })
            .collect();
    }
}

/// Where a download of `name` goes: `output` itself for one file, else `output` (or the current
/// directory) joined with the name's last component. Only that plain component comes from the
/// network side, and it was validated, so nothing lands outside the chosen directory.
fn local_target(name: &str, output: Option<&Path>, many: bool) -> Result<PathBuf, ClientError> {
    let safe = SafeName::new(name).map_err(|reason| ClientError::InvalidName {
        name: sanitize(name),
        reason,
    })?;
    let file = safe.file_name();
    Ok(match output {
        None => PathBuf::from(file),
        Some(out) if many || out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') => {
            out.join(file)
        }
        Some(out) => out.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_land_under_the_chosen_place() {
        assert_eq!(
            local_target("a/b.txt", None, false).unwrap(),
            PathBuf::from("b.txt")
        );
        assert_eq!(
            local_target("b.txt", Some(Path::new("/tmp/x.bin")), false).unwrap(),
            PathBuf::from("/tmp/x.bin")
        );
        assert_eq!(
            local_target("d/b.txt", Some(Path::new("out")), true).unwrap(),
            PathBuf::from("out/b.txt")
        );
        assert!(local_target("../b.txt", None, false).is_err());
    }

    #[test]
    fn a_tree_lands_under_its_own_name_in_the_chosen_place() {
        let tree = RemoteTree {
            dirs: vec![vec![], vec!["sub".into()]],
            files: vec![(vec!["sub".into(), "f.txt".into()], 3)],
            skipped: vec![],
        };
        let mut plan = Plan::default();
        plan.download_tree("top/docs", tree, Some(Path::new("out")));
        assert_eq!(
            plan.dirs,
            [
                (PathBuf::from("out"), vec!["docs".to_string()]),
                (PathBuf::from("out"), vec!["docs".into(), "sub".into()])
            ]
        );
        match &plan.jobs[..] {
            [Job::Download {
                name, dest, under, ..
            }] => {
                assert_eq!(name, "top/docs/sub/f.txt");
                assert_eq!(dest, &PathBuf::from("out/docs/sub/f.txt"));
                assert_eq!(
                    under,
                    &Some((PathBuf::from("out"), vec!["docs".into(), "sub".into()]))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_local_files_for_one_remote_name_are_not_both_sent() {
        let mut plan = Plan::default();
        for path in ["a/x", "b/x", "a/x"] {
            plan.jobs.push(Job::Upload {
                path: PathBuf::from(path),
                name: "x".into(),
                size: None,
            });
        }
        plan.dedupe_uploads();
        assert_eq!(plan.jobs.len(), 1, "the first is kept, its repeat dropped");
        assert_eq!(plan.failed.len(), 1, "the other file is refused");
    }

    #[test]
    fn a_remote_file_named_like_a_partial_is_not_downloaded() {
        let mut plan = Plan::default();
        plan.download("f", None, true, None);
        plan.download(".f.qft-part", None, true, None);
        plan.dedupe_downloads();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.failed.len(), 1);
    }

    #[test]
    fn two_names_for_one_local_file_do_not_overwrite_each_other() {
        let mut plan = Plan::default();
        for name in ["a/x", "b/x", "a/x"] {
            plan.download(name, None, true, None);
        }
        plan.dedupe_downloads();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.failed.len(), 1);
        assert_eq!(plan.failed[0].0, "b/x");
    }
}
