//! The files of a sync, sent `jobs` at a time and each reported as it ends. Uploads of small
//! files go in bundles ([`crate::client::bundle`]), as `put -r`'s do: a tree of small files is
//! where rsync's habits meet qft most often.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::ProgressBar;
use tokio::task::JoinSet;

use super::plan::Send;
use super::report::{self, Action};
use super::run::{Ends, Tally, Way};
use crate::client::tree::ensure_dirs;
use crate::client::{bundle, ClientError, TransferReport};

impl Ends {
    /// Sends the file `rel` from the source to the destination.
    async fn send(&self, rel: &str, bar: &ProgressBar) -> Result<TransferReport, ClientError> {
        match self.way {
            Way::Up => {
                let path = self.local_path(rel);
                let name = self.remote_name(rel);
                self.client
                    .upload_keeping(&path, &name, self.keep, bar)
                    .await
            }
            Way::Down => {
                // The directories on the way are made here, and none may be a link: a name from
                // the server never leads a write outside the destination.
                let parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
                let (_, dirs) = parts.split_last().expect("a path has a name");
                let dir = ensure_dirs(&self.local, dirs)?;
                let dest = dir.join(&parts[parts.len() - 1]);
                let name = self.remote_name(rel);
                self.client
                    .download_keeping(&name, &dest, true, self.keep, bar)
                    .await
            }
        }
    }

    /// Sends a group of files: one alone, or small uploads in one bundle. One result each.
    async fn send_group(
        &self,
        group: Vec<Send>,
        bar: &ProgressBar,
    ) -> Vec<(Send, Result<TransferReport, ClientError>)> {
        if group.len() == 1 {
            let send = group.into_iter().next().expect("one");
            let result = self.send(&send.rel, bar).await;
            return vec![(send, result)];
        }
        let files: Vec<(PathBuf, String)> = group
            .iter()
            .map(|s| (self.local_path(&s.rel), self.remote_name(&s.rel)))
            .collect();
        let results = self.client.upload_bundle(&files, self.keep, bar).await;
        group.into_iter().zip(results).collect()
    }
}

/// The sends in the groups they go in ([`bundle::pack`]): small uploads together, up to a
/// bundle's size, and everything else alone.
fn groups(way: Way, sends: Vec<Send>) -> Vec<Vec<Send>> {
    let small = |s: &Send| (way == Way::Up && bundle::fits(s.size)).then_some(s.size);
    bundle::pack(sends, small)
        .into_iter()
        .map(|packed| match packed {
            bundle::Packed::Alone(send) => vec![send],
            bundle::Packed::Bundle(sends) => sends,
        })
        .collect()
}

/// Sends every file of `sends`, `jobs` groups at a time, reporting each file as it ends.
pub(super) async fn send_all(ends: &Ends, sends: Vec<Send>, jobs: usize, tally: &mut Tally<'_>) {
    let out = tally.out;
    let total_bytes: u64 = sends.iter().map(|s| s.size).sum();
    let count = sends.len();
    let total = match count > 1 {
        true => out.progress.total(),
        false => crate::client::progress::Bar::hidden(),
    };
    total.set_length(total_bytes);
    let ends = Arc::new(ends.clone());
    let mut queue = groups(ends.way, sends).into_iter();
    let mut set = JoinSet::new();
    let mut finished = 0;
    loop {
        while set.len() < jobs.max(1) {
            let Some(group) = queue.next() else { break };
            let label = match group.len() {
                1 => group[0].rel.clone(),
                n => format!("{n} small files"),
            };
            let bar = out.progress.bar(&label, Some(&total));
            bar.set_length(group.iter().map(|s| s.size).sum());
            let ends = ends.clone();
            set.spawn(async move { ends.send_group(group, &bar).await });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let ended = match done {
            Ok(ended) => ended,
            Err(e) => {
                let e = ClientError::Interrupted(format!("a transfer task failed: {e}"));
                tally.fail("", &e);
                continue;
            }
        };
        for (send, result) in ended {
            finished += 1;
            total.set_message(format!("sync {finished}/{count} files"));
            total.inc(send.size);
            match result {
                Ok(report) => {
                    report::action(
                        &out,
                        Action::Send,
                        &send.rel,
                        Some(send.why.as_str()),
                        Some(report.bytes),
                        Some(report.sha256),
                        false,
                    );
                    tally.summary.sent += 1;
                    tally.summary.bytes += report.bytes;
                }
                Err(e) => tally.fail(&send.rel, &e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sync::plan::Why;

    fn sends(sizes: &[u64]) -> Vec<Send> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Send {
                rel: format!("f{i}"),
                size,
                why: Why::New,
            })
            .collect()
    }

    fn shape(groups: &[Vec<Send>]) -> Vec<usize> {
        groups.iter().map(Vec::len).collect()
    }

    #[test]
    fn small_uploads_go_together_and_everything_else_alone() {
        let big = bundle::BYTES;
        let up = groups(Way::Up, sends(&[10, 20, big, 30, 40, 50]));
        assert_eq!(
            shape(&up),
            [1, 5],
            "a large file goes alone, the small ones together"
        );
        assert_eq!(up[0][0].size, big);
        let down = groups(Way::Down, sends(&[10, 20, 30]));
        assert_eq!(shape(&down), [1, 1, 1], "downloads never go in bundles");
        let many = groups(Way::Up, sends(&vec![1; bundle::FILES * 2 + 1]));
        assert_eq!(shape(&many), [bundle::FILES, bundle::FILES, 1]);
        // Small enough for a bundle; four of them fill one.
        let heavy = 250_000;
        assert!(bundle::fits(heavy) && 5 * heavy > bundle::BYTES && 4 * heavy <= bundle::BYTES);
        let full = groups(Way::Up, sends(&[heavy; 5]));
        assert_eq!(shape(&full), [4, 1], "no bundle over its bytes");
    }
}
