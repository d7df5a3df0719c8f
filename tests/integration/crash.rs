//! kill -9 of the client or the server in the middle of transfers, through the binary: every
//! file is then its old content or its new content, never truncated, zero-filled or mixed, and
//! running the same command again resumes and verifies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{stderr, Served, World, BIN};
use crate::support::random_bytes;

const SIZE: usize = 96 * 1024 * 1024;

/// `qft connect ... ARGS` running in the background.
fn start(w: &World, server: &Served, args: &[&str]) -> Child {
    Command::new(BIN)
        .args([
            "connect",
            &server.addr(),
            "--fingerprint",
            &server.fingerprint,
        ])
        .args(args)
        .env("QFT_HOME", w.path("client-home"))
        .current_dir(w.path("local"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(w.path("client.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Waits until `size()` reaches `at` while `child` still runs (so the kill lands mid-transfer).
fn wait_for(w: &World, child: &mut Child, at: u64, size: impl Fn() -> u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while size() < at {
        if let Some(status) = child.try_wait().unwrap() {
            let said = std::fs::read_to_string(w.path("client.log")).unwrap_or_default();
            panic!(
                "finished ({status}) before the kill point at {at} (reached {}): {said}",
                size()
            );
        }
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The largest server-side partial upload.
fn server_partial(served: &Path) -> u64 {
    std::fs::read_dir(served.join(".qft/tmp"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("partial-"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn local_partial(w: &World) -> PathBuf {
    qft::client::resume::partial_path(&w.path("local/big"))
}

fn log(w: &World) -> String {
    std::fs::read_to_string(w.path("server-home/serve.log")).unwrap()
}

#[test]
fn killing_the_client_or_the_server_mid_upload_loses_nothing_and_resumes() {
    let w = World::new();
    let old = b"the old version".to_vec();
    std::fs::write(w.path("served/big"), &old).unwrap();
    let new = random_bytes(SIZE);
    std::fs::write(w.path("local/big"), &new).unwrap();
    let mut server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");

    // The client dies at two points of its upload.
    for fraction in [5, 12] {
        let mut put = start(&w, &server, &["put", "big"]);
        wait_for(&w, &mut put, (SIZE * fraction / 20) as u64, || {
            server_partial(&w.path("served"))
        });
        put.kill().unwrap();
        put.wait().unwrap();
        assert_eq!(
            std::fs::read(w.path("served/big")).unwrap(),
            old,
            "the old file, whole"
        );
    }

    // The server dies in the middle of the next attempt, and comes back.
    let mut put = start(&w, &server, &["put", "big"]);
    wait_for(&w, &mut put, (SIZE * 3 / 4) as u64, || {
        server_partial(&w.path("served"))
    });
    server.kill();
    // The client would notice only at its idle timeout (a dead server says nothing): end it.
    put.kill().unwrap();
    put.wait().unwrap();
    assert_eq!(
        std::fs::read(w.path("served/big")).unwrap(),
        old,
        "still the old file"
    );
    server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");

    let done = w.connect(&server, &["put", "big"]).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        log(&w).contains("resumed upload"),
        "resumed, not restarted: {}",
        log(&w)
    );
    assert!(
        std::fs::read(w.path("served/big")).unwrap() == new,
        "the new file, whole"
    );
    assert_eq!(server_partial(&w.path("served")), 0, "no partial left");
}

#[test]
fn killing_the_client_or_the_server_mid_download_loses_nothing_and_resumes() {
    let w = World::new();
    let data = random_bytes(SIZE);
    std::fs::write(w.path("served/big"), &data).unwrap();
    let mut server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    let size = || {
        std::fs::metadata(local_partial(&w))
            .map(|m| m.len())
            .unwrap_or(0)
    };

    for fraction in [5, 12] {
        let mut get = start(&w, &server, &["get", "big"]);
        wait_for(&w, &mut get, (SIZE * fraction / 20) as u64, size);
        get.kill().unwrap();
        get.wait().unwrap();
        assert!(!w.path("local/big").exists(), "nothing under the real name");
    }

    let mut get = start(&w, &server, &["get", "big"]);
    wait_for(&w, &mut get, (SIZE * 3 / 4) as u64, size);
    server.kill();
    get.kill().unwrap();
    get.wait().unwrap();
    assert!(!w.path("local/big").exists());
    assert!(
        local_partial(&w).exists(),
        "the partial waits for the next attempt"
    );
    server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");

    let done = w.connect(&server, &["get", "big"]).output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        log(&w).contains("resumed download"),
        "resumed, not restarted: {}",
        log(&w)
    );
    assert!(
        std::fs::read(w.path("local/big")).unwrap() == data,
        "the whole file"
    );
    assert!(!local_partial(&w).exists(), "no partial left");
}
