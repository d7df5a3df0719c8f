//! Races against a local user who swaps directories for symlinks while the server works: the
//! check-then-open window that once let an upload land, a download read and a delete remove
//! outside the served directory (issue 17, item 1).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{list_dir, no_progress, TestServer};

/// Operations of each kind (get, put, list, delete) raced against the swaps in one run.
const ROUNDS: usize = 150;

/// Everything under `dir`, recursively, with contents (links as their target).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in list_dir(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&entry).unwrap();
            out.push((entry, target.into_os_string().into_encoded_bytes()));
        } else if meta.is_dir() {
            out.push((entry.clone(), Vec::new()));
            out.extend(snapshot(&entry));
        } else {
            out.push((entry.clone(), std::fs::read(&entry).unwrap()));
        }
    }
    out
}

/// Swaps `d` for a symlink to `elsewhere` and back, as fast as it can, until told to stop;
/// leaves `d` a directory again.
fn swap_until(d: PathBuf, elsewhere: PathBuf, stop: Arc<AtomicBool>) -> usize {
    let old = d.with_extension("old");
    let mut swaps = 0;
    while !stop.load(Ordering::Relaxed) {
        let _ = std::fs::rename(&d, &old);
        let _ = std::os::unix::fs::symlink(&elsewhere, &d);
        std::thread::sleep(std::time::Duration::from_micros(50));
        let _ = std::fs::remove_file(&d);
        let _ = std::fs::rename(&old, &d);
        std::thread::sleep(std::time::Duration::from_micros(50));
        swaps += 1;
    }
    if std::fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(&d);
    }
    let _ = std::fs::rename(&old, &d);
    swaps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_never_lets_get_put_list_or_delete_outside() {
    let server = TestServer::start().await;
    let elsewhere = server.local_outside().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("big.bin"), b"OUTSIDE: must never be read").unwrap();
    std::fs::write(elsewhere.join("outside-only"), b"OUTSIDE").unwrap();
    for i in 0..ROUNDS {
        std::fs::write(elsewhere.join(format!("victim-{i}")), b"OUTSIDE").unwrap();
        server.put(&format!("tree/d/victim-{i}"), b"inside");
    }
    server.put("tree/d/big.bin", b"inside");
    let before = snapshot(&elsewhere);

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = std::thread::spawn({
        let (d, elsewhere, stop) = (
            server.local_root().join("tree/d"),
            elsewhere.clone(),
            stop.clone(),
        );
        move || swap_until(d, elsewhere, stop)
    });

    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let small = local.path().join("small");
    std::fs::write(&small, b"uploaded").unwrap();
    // Large enough to take the resumable path (a partial, committed by its own rename).
    let large = local.path().join("large");
    std::fs::write(&large, vec![7u8; (1 << 20) + 5]).unwrap();

    let gets = {
        let (client, dir) = (client.clone(), local.path().to_path_buf());
        tokio::spawn(async move {
            let mut read = 0;
            for i in 0..ROUNDS {
                let dest = dir.join(format!("got-{i}"));
                let got = client
                    .download("tree/d/big.bin", &dest, true, &no_progress())
                    .await;
                if got.is_ok() {
                    let got = std::fs::read(&dest).unwrap();
                    assert_eq!(got, b"inside", "round {i}: read outside the root");
                    read += 1;
                }
            }
            read
        })
    };
    let puts = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let from = if i % 10 == 0 { &large } else { &small };
                let _ = client
                    .upload(from, &format!("tree/d/up-{i}"), &no_progress())
                    .await;
            }
        })
    };
    let lists = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                if let Ok(entries) = client.list("tree/d").await {
                    assert!(
                        entries.iter().all(|e| e.name != "outside-only"),
                        "round {i}: listed outside the root"
                    );
                }
            }
        })
    };
    let deletes = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let _ = client.delete(&format!("tree/d/victim-{i}")).await;
            }
        })
    };
    let read = gets.await.unwrap();
    puts.await.unwrap();
    lists.await.unwrap();
    deletes.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();

    assert_eq!(
        snapshot(&elsewhere),
        before,
        "nothing outside was written or deleted"
    );
    assert!(
        swaps > 0 && read > 0,
        "the race ran: {swaps} swaps, {read} reads"
    );
    server.stop().await;
}
