use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Choice, Way, EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::paths::SafeName;
use crate::storage::local::Local;
use crate::storage::StorageError;

/// Begins uploads of `count` small files named by `name` (each holding its name), calls
/// `meanwhile`, then commits them all at once; returns each one's result.
async fn commit_at_once(
    local: &Local,
    count: usize,
    name: fn(usize) -> String,
    meanwhile: impl FnOnce(),
) -> Vec<Result<(), StorageError>> {
    let mut uploads = Vec::new();
    for i in 0..count {
        let safe = SafeName::new(&name(i)).unwrap();
        uploads.push(local.begin_upload(safe, 0).await.unwrap());
    }
    meanwhile();
    let tasks: Vec<_> = (uploads.into_iter().enumerate())
        .map(|(i, upload)| {
            let body = name(i).into_bytes();
            let sha256 = Sha256::digest(&body).into();
            tokio::spawn(upload.commit_whole(vec![Bytes::from(body)], sha256))
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn staged(local: &Local) -> usize {
    std::fs::read_dir(local.root().join(".qft/tmp"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_arriving_together_share_rounds_and_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let local = Local::open(tmp.path()).unwrap();
    let name = |i: usize| format!("d{}/f{i}", i % 3);
    let results = commit_at_once(&local, 64, name, || {}).await;
    for (i, result) in results.into_iter().enumerate() {
        result.unwrap();
        let got = std::fs::read(local.root().join(name(i))).unwrap();
        assert_eq!(got, name(i).into_bytes());
    }
    // Alone, each commit would take two rounds of its own.
    let rounds = local.inner.commits.rounds.load(Ordering::Relaxed);
    assert!(rounds < 64, "64 commits took {rounds} rounds: none shared");
    assert_eq!(staged(&local), 0, "no temp file left");
    // The leader hands the lead back once it finds nothing left, just after the answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while local.inner.commits.lock().leading {
        assert!(
            std::time::Instant::now() < deadline,
            "the lead was never handed back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_fsyncs_of_each_file_are_quicker_members_do_them_and_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let local = Local::open(tmp.path()).unwrap();
    // Each file measured as quicker, lately: rounds fsync each file.
    let choice = Choice {
        now: Way::Syncfs,
        since: Instant::now() - EPOCH,
        took: [
            Some((Duration::from_secs(1), Instant::now())),
            Some((Duration::ZERO, Instant::now())),
        ],
    };
    local.inner.commits.lock().choice = choice;
    let name = |i: usize| format!("d{}/f{i}", i % 2);
    let results = commit_at_once(&local, 32, name, || {}).await;
    for (i, result) in results.into_iter().enumerate() {
        result.unwrap();
        let got = std::fs::read(local.root().join(name(i))).unwrap();
        assert_eq!(got, name(i).into_bytes());
    }
    assert_eq!(staged(&local), 0, "no temp file left");
    assert_eq!(local.inner.commits.lock().choice.now, Way::EachFile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_rename_fails_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let local = Local::open(tmp.path()).unwrap();
    // f7's place becomes a non-empty directory after its upload began (the check at the
    // start passed): its rename, in the middle of a round, fails.
    let name = |i: usize| format!("f{i}");
    let trap = local.root().join("f7");
    let made = || std::fs::create_dir_all(trap.join("inside")).unwrap();
    let results = commit_at_once(&local, 32, name, made).await;
    for (i, result) in results.into_iter().enumerate() {
        if i == 7 {
            let e = result.expect_err("f7 is a directory now");
            assert!(e.to_string().contains("is a directory"), "{e}");
            assert!(trap.join("inside").is_dir(), "the directory is untouched");
        } else {
            result.unwrap();
            assert_eq!(
                std::fs::read(local.root().join(name(i))).unwrap(),
                name(i).into_bytes()
            );
        }
    }
    assert_eq!(
        staged(&local),
        0,
        "the failed member's temp file is gone too"
    );
}
