//! Many files at once: `get a b c`, `get '*.log'`, `put *.txt`, `get -r DIR`, `put -r DIR`.
//!
//! A command is first turned into a plan, argument by argument here (patterns matched, trees
//! walked), with local places chosen and collisions refused by `plan`; then `run` runs its
//! transfers in parallel, each as its own task on its own QUIC stream of the one connection, at
//! most `jobs` at a time. One failure never stops the others; each is reported as it happens and
//! named again in the summary. Cancelling (dropping the returned future) aborts every task, and
//! each aborted download removes its temp file as it is dropped.
//!
//! A batch gets what it needs from its caller as a [`Batch`] and prints through
//! [`super::output`]; it never sees the session that made it.

mod identical;
mod plan;
mod run;

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::output::Output;
use super::pattern::{expand_local, has_wildcards, RemotePattern};
use super::pipe;
use super::remote_path::{join, last};
use super::tree::{walk_local, walk_remote};
use super::{Client, ClientError};
use crate::paths::{sanitize, NameError, SafeName};
use crate::protocol::{EntryKind, ErrorCode};
use plan::{Job, Plan};

/// What a batch needs from whoever runs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batch<'a> {
    /// The connection; each transfer runs on a clone of it.
    pub client: &'a Client,
    /// Where results, failures, bars and the summary go.
    pub out: Output<'a>,
    /// Replace existing local files on download.
    pub force: bool,
    /// How many transfers run at once.
    pub jobs: usize,
    /// What each file keeps besides its bytes (`-p`, `--perms`).
    pub keep: crate::client::Keep,
}

impl Batch<'_> {
    /// GET: downloads `names` (patterns expanded against the server's listing, directories copied
    /// whole with `recursive`) into `output` or the current directory. Returns how many failed.
    pub async fn get(&self, names: &[String], output: Option<&Path>, recursive: bool) -> usize {
        let started = Instant::now();
        if pipe::to_stdout(output) {
            return self.get_to_stdout(names, recursive, started).await;
        }
        let many = names.len() > 1 || recursive || names.iter().any(|n| has_wildcards(n));
        let mut plan = Plan::default();
        for name in names {
            plan_get(self.client, name, output, recursive, many, &mut plan).await;
        }
        plan.dedupe_downloads();
        self.run(plan, started).await
    }

    /// PUT: uploads local `paths` (patterns expanded on the local disk, directories sent whole
    /// with `recursive`) into the remote directory `into` ("" for the root), or to `output`
    /// (relative to `into`), which is read as `get -o` reads a local path: a directory for
    /// several files, a tree, a trailing `/` or a directory that exists; otherwise one file's
    /// remote name. Returns how many failed.
    pub async fn put(
        &self,
        paths: &[PathBuf],
        recursive: bool,
        into: &str,
        output: Option<&str>,
    ) -> usize {
        let started = Instant::now();
        if pipe::from_stdin(paths) {
            return self
                .put_stdin(paths, recursive, into, output, started)
                .await;
        }
        let mut plan = Plan::default();
        let mut expanded = Vec::new();
        for arg in paths {
            match expand_local(arg) {
                Ok(found) => expanded.extend(found),
                Err(e) => plan.fail(arg.display().to_string(), e),
            }
        }
        let many = expanded.len() > 1 || recursive;
        let (dir, rename) = match output {
            None => (into.to_owned(), None),
            Some(output) => match self.remote_target(into, output, many).await {
                Ok(target) => target,
                Err(e) => {
                    plan.fail(output, e);
                    return self.run(plan, started).await;
                }
            },
        };
        for path in expanded {
            plan_put(path, recursive, &dir, rename.as_deref(), &mut plan).await;
        }
        plan.dedupe_uploads();
        plan.bundle_uploads();
        self.run(plan, started).await
    }

    /// `get NAME -o -`: the file onto stdout; every result goes to stderr.
    async fn get_to_stdout(&self, names: &[String], recursive: bool, started: Instant) -> usize {
        let mut plan = Plan::default();
        match pipe::check_get(names, recursive) {
            Ok(()) => plan.jobs.push(Job::DownloadToStdout {
                name: names[0].clone(),
            }),
            Err(e) => plan.fail(pipe::STD_STREAM, e),
        }
        let out = Output {
            data_on_stdout: true,
            ..self.out
        };
        Batch { out, ..*self }.run(plan, started).await
    }

    /// `put - --name NAME`: what stdin gives, stored as NAME (relative to `into`).
    async fn put_stdin(
        &self,
        paths: &[PathBuf],
        recursive: bool,
        into: &str,
        output: Option<&str>,
        started: Instant,
    ) -> usize {
        let mut plan = Plan::default();
        let name = pipe::check_put(paths, recursive, output)
            .and_then(|()| super::remote_path::resolve(into, output.unwrap_or_default()));
        match name {
            Ok(name) => plan.jobs.push(Job::UploadStdin { name }),
            Err(e) => plan.fail("stdin", e),
        }
        self.run(plan, started).await
    }

    /// Where `put -o OUTPUT` stores: a remote directory, and for one file perhaps a name.
    async fn remote_target(
        &self,
        into: &str,
        output: &str,
        many: bool,
    ) -> Result<(String, Option<String>), ClientError> {
        let target = super::remote_path::resolve(into, output)?;
        if many || output.ends_with('/') || target.is_empty() {
            return Ok((target, None));
        }
        // One file: into `target` if that is a directory on the server, else named `target`.
        let (parent, name) = target.rsplit_once('/').unwrap_or(("", &target));
        let is_dir = match self.client.list(parent).await {
            Ok(entries) => entries
                .iter()
                .any(|e| e.name == name && e.kind == EntryKind::Dir),
            // A parent that does not exist yet is made by the upload.
            Err(ClientError::Remote {
                code: ErrorCode::NotFound,
                ..
            }) => false,
            Err(e) => return Err(e),
        };
        Ok(match is_dir {
            true => (target, None),
            false => (parent.to_owned(), Some(target)),
        })
    }
}

/// Adds what one GET argument stands for to `plan`.
async fn plan_get(
    client: &Client,
    name: &str,
    output: Option<&Path>,
    recursive: bool,
    many: bool,
    plan: &mut Plan,
) {
    if name.is_empty() {
        let e = ClientError::InvalidName {
            name: String::new(),
            reason: NameError::Empty,
        };
        return plan.fail(name, e);
    }
    if has_wildcards(name) {
        let pattern = match RemotePattern::new(name) {
            Ok(p) => p,
            Err(e) => return plan.fail(name, e),
        };
        let entries = match client.list(&pattern.dir).await {
            Ok(entries) => entries,
            Err(e) => return plan.fail(name, e),
        };
        let mut matched: Vec<_> = entries
            .iter()
            .filter(|e| pattern.matches(&e.name))
            .collect();
        if matched.is_empty() {
            // A name that merely contains a wildcard character is itself.
            matched.extend(entries.iter().find(|e| e.name == last(name)));
        }
        if matched.is_empty() {
            let e = ClientError::NoMatch {
                pattern: sanitize(name),
                remote: true,
            };
            return plan.fail(name, e);
        }
        for entry in matched {
            let full = join(&pattern.dir, &entry.name);
            match entry.kind {
                EntryKind::File => plan.download(&full, output, many, Some(entry.size)),
                EntryKind::Dir if recursive => match walk_remote(client, &full).await {
                    Ok(tree) => plan.download_tree(&full, tree, output),
                    Err(e) => plan.fail(full, e),
                },
                EntryKind::Dir => plan.skip(full, "a directory (use -r to copy it)"),
                EntryKind::Other => plan.skip(full, "not a regular file or directory"),
            }
        }
    } else if recursive {
        if let Err(reason) = SafeName::new(name) {
            let e = ClientError::InvalidName {
                name: sanitize(name),
                reason,
            };
            return plan.fail(name, e);
        }
        match walk_remote(client, name).await {
            Ok(tree) => plan.download_tree(name, tree, output),
            // `get -r FILE` copies the file, as `cp -r` does.
            Err(ClientError::Remote {
                code: ErrorCode::NotADirectory,
                ..
            }) => plan.download(name, output, many, None),
            Err(e) => plan.fail(name, e),
        }
    } else {
        plan.download(name, output, many, None);
    }
}

/// Adds what one local path (already expanded) stands for to `plan`: stored in `into`, under
/// its own name or, for a file, as `rename`.
async fn plan_put(
    path: PathBuf,
    recursive: bool,
    into: &str,
    rename: Option<&str>,
    plan: &mut Plan,
) {
    let label = path.display().to_string();
    // A path named on the command line is followed if it is a link, as every shell tool does;
    // links inside a directory being sent are not.
    let meta = match tokio::fs::metadata(&path).await {
        Ok(meta) => meta,
        Err(source) => return plan.fail(label, ClientError::Local { path, source }),
    };
    let Some(top) = top_name(&path) else {
        let e = ClientError::Unsafe {
            path,
            reason: "has no file name to store it under".into(),
        };
        return plan.fail(label, e);
    };
    let top = join(into, &top);
    if meta.is_file() {
        let top = rename.map_or(top, str::to_owned);
        plan.jobs.push(Job::Upload {
            path,
            name: top,
            size: Some(meta.len()),
        });
    } else if meta.is_dir() && recursive {
        let tree = walk_local(path.clone()).await;
        if tree.files.is_empty() && tree.skipped.is_empty() && tree.failed.is_empty() {
            plan.skip(
                label.clone(),
                "an empty directory (the server makes directories only to hold files)",
            );
        }
        for (file, rel, size) in tree.files {
            plan.jobs.push(Job::Upload {
                path: file,
                name: join(&top, &rel.join("/")),
                size: Some(size),
            });
        }
        plan.skipped.extend(tree.skipped);
        for e in tree.failed {
            plan.fail(label.clone(), e);
        }
    } else if meta.is_dir() {
        let e = ClientError::Unsafe {
            path,
            reason: "is a directory; use -r to send it".into(),
        };
        plan.fail(label, e);
    } else {
        let e = ClientError::Unsafe {
            path,
            reason: "is not a regular file".into(),
        };
        plan.fail(label, e);
    }
}

/// The name a local file or directory is stored under: its last component, or for `.` and `..`
/// the name of the directory they stand for.
fn top_name(path: &Path) -> Option<String> {
    match path.file_name() {
        Some(name) => name.to_str().map(str::to_owned),
        None => path
            .canonicalize()
            .ok()?
            .file_name()?
            .to_str()
            .map(str::to_owned),
    }
}
