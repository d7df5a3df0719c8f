//! Running a sync: read both sides, plan, then (unless `--dry-run`) change the destination in
//! the order that never loses anything a step later needs: what is in the way, directories,
//! files (`jobs` at a time, each on its own stream), and last what the source no longer has.

use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::exclude::Excludes;
use super::plan::{plan, Plan, Remove, Send, Why};
use super::report::{self, Action, UNCHANGED};
use super::send;
use super::spec::{Side, SyncSpec};
use super::tree::{self, join, local_path, Tree};
use crate::client::json::SyncSummary;
use crate::client::output::Output;
use crate::client::session::Session;
use crate::client::tree::ensure_dirs;
use crate::client::{keep, Client, ClientError, Keep};
use crate::protocol::EntryKind;

/// Which way the files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// From this machine to the server.
    Up,
    /// From the server to this machine.
    Down,
}

/// The two directories of a sync, and the connection between them.
#[derive(Debug, Clone)]
pub(super) struct Ends {
    pub(super) client: Client,
    pub(super) way: Way,
    /// The local directory (the user's choice: trusted as given, links and all).
    pub(super) local: PathBuf,
    /// The remote directory ("" the top).
    remote: String,
    /// What files keep besides their bytes: always the time; the bits with `--perms`.
    pub(super) keep: Keep,
}

impl Ends {
    pub(super) fn remote_name(&self, rel: &str) -> String {
        join(&self.remote, rel)
    }

    pub(super) fn local_path(&self, rel: &str) -> PathBuf {
        local_path(&self.local, rel)
    }

    /// Makes the directory `rel` on the destination (its parents are there, or made).
    async fn make_dir(&self, rel: &str) -> Result<(), ClientError> {
        match self.way {
            Way::Up => self.client.make_dir(&self.remote_name(rel), true).await,
            Way::Down => {
                let parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
                ensure_dirs(&self.local, &parts).map(|_| ())
            }
        }
    }

    /// Downloads: gives each local directory the time its remote one has, deepest first and
    /// after every file is in place (writing into a directory changes its time), as rsync -t
    /// does. Uploads leave remote directories with the server's own times: the protocol sets a
    /// time only with a file's bytes, and an object store has no directories to hold one.
    async fn keep_dir_times(&self, src: &Tree, excludes: &Excludes, tally: &mut Tally<'_>) {
        let dirs: Vec<(String, PathBuf, u64)> = src
            .iter()
            .rev()
            .filter(|(rel, node)| node.kind == EntryKind::Dir && !excludes.excludes(rel, true))
            .filter_map(|(rel, node)| Some((rel.clone(), self.local_path(rel), node.modified?)))
            .collect();
        let failed = tokio::task::spawn_blocking(move || {
            dirs.into_iter()
                .filter_map(|(rel, path, secs)| match keep::set_dir_time(&path, secs) {
                    Ok(()) => None,
                    Err(e) => Some((rel, ClientError::Local { path, source: e })),
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (rel, e) in failed {
            tally.fail(&rel, &e);
        }
    }

    /// Removes `what` from the destination: a link itself, never what it leads to.
    async fn remove(&self, what: &Remove) -> Result<u64, ClientError> {
        match self.way {
            Way::Up => {
                let name = self.remote_name(&what.rel);
                match what.tree {
                    true => self.client.delete_tree(&name).await,
                    false => self.client.delete(&name).await.map(|()| 1),
                }
            }
            Way::Down => {
                let path = self.local_path(&what.rel);
                let files = what.files;
                tokio::task::spawn_blocking(move || {
                    let meta = std::fs::symlink_metadata(&path)?;
                    // A real directory only (not a link to one): remove_dir_all never follows
                    // the links inside either.
                    match meta.is_dir() {
                        true => std::fs::remove_dir_all(&path)?,
                        false => std::fs::remove_file(&path)?,
                    }
                    if let Some(parent) = path.parent() {
                        let _ = crate::fsutil::sync_dir(parent);
                    }
                    Ok(files)
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                .map_err(ClientError::local(&self.local_path(&what.rel)))
            }
        }
    }

    /// The SHA-256 of `rel` on the side `local` or not, known (`node`'s) or read.
    async fn digest(
        &self,
        rel: &str,
        local: bool,
        known: Option<[u8; 32]>,
    ) -> Result<[u8; 32], ClientError> {
        if let Some(sha256) = known {
            return Ok(sha256);
        }
        if !local {
            let info = self.client.stat(&self.remote_name(rel), true).await?;
            return info.sha256.ok_or_else(|| {
                ClientError::Protocol("a STAT without the SHA-256 asked for".into())
            });
        }
        let path = self.local_path(rel);
        let hashed = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<[u8; 32]> {
                use std::io::Read;
                let mut file = std::fs::File::open(&path)?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    match file.read(&mut buf)? {
                        0 => break,
                        n => hasher.update(&buf[..n]),
                    }
                }
                Ok(hasher.finalize().into())
            })
        };
        hashed
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(ClientError::local(&path))
    }
}

/// A sync's running totals and what failed.
pub(super) struct Tally<'a> {
    pub(super) out: Output<'a>,
    pub(super) summary: SyncSummary,
}

impl Tally<'_> {
    pub(super) fn fail(&mut self, name: &str, e: &ClientError) {
        self.out.failure(Some(name), e);
        self.summary.failures.push(name.to_owned());
    }
}

impl Session {
    /// SYNC: makes `spec.dst` hold what `spec.src` holds (see [`super`]). Returns how many
    /// operations failed (each already reported).
    pub async fn sync(&self, spec: &SyncSpec) -> usize {
        let started = Instant::now();
        let mut tally = Tally {
            out: self.output(),
            summary: SyncSummary {
                dry_run: spec.dry_run,
                ..SyncSummary::default()
            },
        };
        if let Err(e) = self.sync_inner(spec, &mut tally).await {
            tally.fail("", &e);
        }
        let mut summary = tally.summary;
        summary.failed = summary.failures.len();
        summary.seconds = started.elapsed().as_secs_f64();
        report::summary(&tally.out, &summary);
        summary.failed
    }

    async fn sync_inner(&self, spec: &SyncSpec, tally: &mut Tally<'_>) -> Result<(), ClientError> {
        let excludes =
            Excludes::with_files(&spec.excludes, &spec.exclude_from).map_err(ClientError::Usage)?;
        let (way, local, remote) = match (&spec.src, &spec.dst) {
            (Side::Local(l), Side::Remote(r)) => (Way::Up, l, r),
            (Side::Remote(r), Side::Local(l)) => (Way::Down, l, r),
            _ => {
                return Err(ClientError::Usage(
                    "SYNC needs exactly one remote side".into(),
                ))
            }
        };
        let ends = Ends {
            client: self.client.clone(),
            way,
            local: local.clone(),
            remote: remote.clone(),
            keep: Keep {
                time: true,
                perms: spec.perms,
            },
        };
        // Both sides, whole, before anything changes.
        let local_side = tree::local(local.clone()).await?;
        let remote_tree = tree::remote(&self.client, remote).await?;
        let local_found = local_side.is_some();
        let remote_found = remote_tree.is_some();
        let (local_tree, local_failed) = match local_side {
            Some(side) => (side.tree, side.failed),
            None => (Tree::new(), Vec::new()),
        };
        for (name, e) in &local_failed {
            tally.fail(name, e);
        }
        let (src, dst) = match way {
            Way::Up if !local_found => {
                let e = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(ClientError::Local {
                    path: local.clone(),
                    source: e,
                });
            }
            Way::Down if !remote_found => {
                return Err(ClientError::Remote {
                    code: crate::protocol::ErrorCode::NotFound,
                    message: format!("'{}' does not exist", crate::paths::sanitize(remote)),
                })
            }
            Way::Up => (local_tree, remote_tree.unwrap_or_default()),
            Way::Down => (remote_tree.unwrap_or_default(), local_tree),
        };
        let mut plan = plan(&src, &dst, &excludes, spec.delete, spec.checksum);
        if spec.checksum {
            self.check(&ends, &src, &dst, &mut plan, tally).await;
        }
        let out = tally.out;
        for (name, why) in &plan.failed {
            tally.fail(name, &ClientError::Usage(why.clone()));
        }
        for (name, why) in &plan.skipped {
            report::action(
                &out,
                Action::Skip,
                name,
                Some(why),
                None,
                None,
                spec.dry_run,
            );
        }
        for name in &plan.unchanged {
            report::action(
                &out,
                Action::Skip,
                name,
                Some(UNCHANGED),
                None,
                None,
                spec.dry_run,
            );
        }
        tally.summary.skipped = plan.unchanged.len();
        if spec.dry_run {
            for r in plan.clear.iter().chain(&plan.remove) {
                report::action(
                    &out,
                    Action::Delete,
                    &r.rel,
                    None,
                    Some(r.files),
                    None,
                    true,
                );
                tally.summary.deleted += r.files;
            }
            for dir in &plan.dirs {
                report::action(&out, Action::Mkdir, dir, None, None, None, true);
            }
            for s in &plan.send {
                report::action(
                    &out,
                    Action::Send,
                    &s.rel,
                    Some(s.why.as_str()),
                    Some(s.size),
                    None,
                    true,
                );
                tally.summary.bytes += s.size;
            }
            tally.summary.made = plan.dirs.len();
            tally.summary.sent = plan.send.len();
            return Ok(());
        }
        // The destination itself, if it is not there yet.
        match way {
            Way::Up if !remote_found && !remote.is_empty() => {
                self.client.make_dir(remote, true).await?;
            }
            Way::Down if !local_found => {
                std::fs::create_dir_all(local).map_err(ClientError::local(local))?;
            }
            _ => {}
        }
        for r in &plan.clear {
            match ends.remove(r).await {
                Ok(files) => {
                    report::action(
                        &out,
                        Action::Delete,
                        &r.rel,
                        Some("in the way"),
                        Some(files),
                        None,
                        false,
                    );
                    tally.summary.deleted += files;
                }
                Err(e) => tally.fail(&r.rel, &e),
            }
        }
        for dir in &plan.dirs {
            match ends.make_dir(dir).await {
                Ok(()) => {
                    report::action(&out, Action::Mkdir, dir, None, None, None, false);
                    tally.summary.made += 1;
                }
                Err(e) => tally.fail(dir, &e),
            }
        }
        let sends = std::mem::take(&mut plan.send);
        send::send_all(&ends, sends, self.jobs, tally).await;
        for r in &plan.remove {
            match ends.remove(r).await {
                Ok(files) => {
                    report::action(&out, Action::Delete, &r.rel, None, Some(files), None, false);
                    tally.summary.deleted += files;
                }
                Err(e) => tally.fail(&r.rel, &e),
            }
        }
        if way == Way::Down {
            ends.keep_dir_times(&src, &excludes, tally).await;
        }
        Ok(())
    }

    /// `--checksum`: the files of equal size are compared by SHA-256 (the server's where it
    /// knows it, so an unchanged remote file is not read again), `jobs` at a time.
    async fn check(
        &self,
        ends: &Ends,
        src: &Tree,
        dst: &Tree,
        plan: &mut Plan,
        tally: &mut Tally<'_>,
    ) {
        let mut set = JoinSet::new();
        let mut queue = std::mem::take(&mut plan.check).into_iter();
        let src_local = ends.way == Way::Up;
        loop {
            while set.len() < self.jobs.max(1) {
                let Some((rel, size)) = queue.next() else {
                    break;
                };
                let ends = ends.clone();
                let (a, b) = (src[&rel].sha256, dst[&rel].sha256);
                set.spawn(async move {
                    let ours = ends.digest(&rel, src_local, a).await;
                    let theirs = ends.digest(&rel, !src_local, b).await;
                    (rel, size, ours.and_then(|x| theirs.map(|y| x == y)))
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            match done {
                Ok((rel, _, Ok(true))) => plan.unchanged.push(rel),
                Ok((rel, size, Ok(false))) => plan.send.push(Send {
                    rel,
                    size,
                    why: Why::Content,
                }),
                Ok((rel, _, Err(e))) => tally.fail(&rel, &e),
                Err(e) => tally.fail("", &ClientError::Interrupted(e.to_string())),
            }
        }
        plan.unchanged.sort();
        plan.send.sort_by(|a, b| a.rel.cmp(&b.rel));
    }
}
