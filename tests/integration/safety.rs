//! Data safety under concurrency and full disks: every file is one whole version, never a mix,
//! and a failure leaves nothing half-written behind.

use std::sync::Arc;

use qft::protocol::{read_frame, write_frame, ErrorCode, Request, Response, Trailer};
use sha2::{Digest, Sha256};

use crate::support::{no_progress, random_bytes, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uploads_to_one_name_leave_exactly_one_of_them() {
    // The rule: each upload is committed by an atomic rename when it is verified, so the last
    // to finish wins, whole; the other's data is never mixed in.
    let server = TestServer::start().await;
    let local = tempfile::tempdir().unwrap();
    let (a, b) = (
        random_bytes(3 * 1024 * 1024),
        random_bytes(3 * 1024 * 1024 + 1),
    );
    std::fs::write(local.path().join("a"), &a).unwrap();
    std::fs::write(local.path().join("b"), &b).unwrap();
    let client = Arc::new(server.client().await);
    for _ in 0..3 {
        let (ca, cb) = (client.clone(), client.clone());
        let (pa, pb) = (local.path().join("a"), local.path().join("b"));
        let ta = tokio::spawn(async move { ca.upload(&pa, "same", &no_progress()).await });
        let tb = tokio::spawn(async move { cb.upload(&pb, "same", &no_progress()).await });
        ta.await.unwrap().unwrap();
        tb.await.unwrap().unwrap();
        let got = server.read("same").unwrap();
        assert!(
            got == a || got == b,
            "a whole upload, not a mix ({} bytes)",
            got.len()
        );
    }
    assert!(server.staged().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_or_replaced_during_a_download_arrives_whole_and_old() {
    let server = TestServer::start().await;
    let old = random_bytes(8 * 1024 * 1024);
    server.put("f", &old);
    let peer = server.raw().await;
    for change in ["delete", "replace"] {
        let (mut recv, size) = peer.begin_download("f").await;
        let mut first = vec![0u8; 1024 * 1024];
        recv.read_exact(&mut first).await.unwrap();
        // Mid-download, the file changes under the server.
        match change {
            "delete" => server.remove("f"),
            _ => server.put("f", random_bytes(100)),
        }
        let mut rest = vec![0u8; size as usize - first.len()];
        recv.read_exact(&mut rest).await.unwrap();
        first.extend_from_slice(&rest);
        let trailer: Trailer = read_frame(&mut recv).await.unwrap();
        assert_eq!(first, old, "{change}: the complete old content");
        assert_eq!(
            trailer.sha256,
            <[u8; 32]>::from(Sha256::digest(&old)),
            "{change}: and verified"
        );
        server.put("f", &old);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_mid_upload_fails_that_upload_cleanly_and_serves_the_rest() {
    use crate::cli::{Served, World};
    let w = World::new();
    // The server's directory is a 4 MiB disk of its own (a tmpfs in its mount namespace).
    let server = Served::start_on_small_disk(&w.path("server-home"), &w.path("served"), "4m");
    let addr = server.addr().parse().unwrap();
    let fp = server.fingerprint.parse().unwrap();
    let peer = crate::support::RawPeer::connect(addr, fp).await;

    // Upload A (3 MiB) passes the free-space check, sends 1 MiB, and pauses.
    let a = random_bytes(3 * 1024 * 1024);
    let (mut send, mut recv) = peer.begin_upload("a", a.len() as u64).await;
    send.write_all(&a[..1024 * 1024]).await.unwrap();
    // Something else on the machine (not an upload: those have their space set aside) takes
    // 2 MiB, and with it the space A still needs.
    let fill = std::process::Command::new("nsenter")
        .args([
            "-t",
            &server.pid().to_string(),
            "-U",
            "-m",
            "--preserve-credentials",
        ])
        .args(["sh", "-c", r#"head -c 2097152 /dev/urandom > "$0/b""#])
        .arg(w.path("served"))
        .status()
        .unwrap();
    assert!(fill.success());
    // A's remaining bytes meet the full disk while being written.
    let _ = send.write_all(&a[1024 * 1024..]).await;
    let _ = write_frame(
        &mut send,
        &Trailer {
            sha256: Sha256::digest(&a).into(),
        },
    )
    .await;
    let _ = send.finish();
    match read_frame::<Response, _>(&mut recv).await.unwrap() {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::NoSpace, "{message}");
            assert_eq!(message, "no space left on the server");
        }
        other => panic!("expected no space, got {other:?}"),
    }

    // Inside the server's namespace: B whole, no A, and no temp file left behind.
    let look = std::process::Command::new("nsenter")
        .args([
            "-t",
            &server.pid().to_string(),
            "-U",
            "-m",
            "--preserve-credentials",
            "sh",
            "-c",
        ])
        .arg(r#"cd "$0" && ls -A . .qft/tmp && wc -c < b"#)
        .arg(w.path("served"))
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&look.stdout).into_owned();
    assert!(!seen.contains("upload-"), "temp file removed: {seen}");
    assert!(!seen.lines().any(|l| l == "a"), "no partial A: {seen}");
    assert!(seen.contains("2097152"), "B whole: {seen}");

    // The server still serves everyone.
    let (entries, _) = peer.list_root().await;
    assert_eq!(entries.len(), 1, "{entries:?}");
}

#[test]
fn a_full_local_disk_fails_the_download_cleanly() {
    use crate::cli::{Served, World};
    let w = World::new();
    let server = Served::start(&w.path("server-home"), &w.path("served"), "127.0.0.1:0");
    std::fs::write(w.path("served/big"), random_bytes(3 * 1024 * 1024)).unwrap();
    // The client runs with a 1 MiB disk as its current directory.
    let out = std::process::Command::new("unshare")
        .args(["-r", "-m", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=1m tmpfs "$1" && cd "$1" && "$0" connect "$2" --fingerprint "$3" get big; echo "rc=$?"; ls -A"#)
        .args([crate::cli::BIN, w.path("local").to_str().unwrap(), &server.addr(), &server.fingerprint])
        .env("QFT_HOME", w.path("client-home"))
        .output()
        .unwrap();
    let (stdout, stderr) = (crate::cli::stdout(&out), crate::cli::stderr(&out));
    assert_eq!(
        stdout.trim(),
        "rc=1",
        "failed, and nothing left in the directory: {stdout}"
    );
    assert!(
        stderr.starts_with("qft: no space left on this machine to write big"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_cannot_fit_is_refused_before_any_data_moves() {
    let server = TestServer::start_with_config(|c| c.limits.min_free = u64::MAX / 4).await;
    let peer = server.raw().await;
    let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
    write_frame(
        &mut send,
        &Request::Upload {
            name: "f".into(),
            size: 10,
        },
    )
    .await
    .unwrap();
    match read_frame::<Response, _>(&mut recv).await.unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::NoSpace),
        other => panic!("expected no space before Ready, got {other:?}"),
    }
    let client = server.client().await;
    assert!(matches!(client.list("").await, Ok(ref l) if l.is_empty()));
    assert!(server.names("").is_empty() && server.staged().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holds_for_a_resumed_download() {
    // The resumable exchange reads the file twice (piece hashes, then the body): a change in
    // between must not reach the client unnoticed.
    let server = TestServer::start().await;
    let old = random_bytes(8 * 1024 * 1024);
    server.put("f", &old);
    let peer = server.raw().await;
    for change in ["delete", "replace"] {
        let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
        let have = 2 * 1024 * 1024;
        let request = Request::ResumeDownload {
            name: "f".into(),
            have,
        };
        write_frame(&mut send, &request).await.unwrap();
        let Response::Prefix {
            size,
            chunk,
            hashes,
            ..
        } = read_frame(&mut recv).await.unwrap()
        else {
            panic!("no prefix")
        };
        assert_eq!((size, chunk, hashes.len()), (old.len() as u64, 1 << 20, 2));
        match change {
            "delete" => server.remove("f"),
            _ => server.put("f", random_bytes(100)),
        }
        write_frame(&mut send, &qft::protocol::Resume { from: have })
            .await
            .unwrap();
        send.finish().unwrap();
        let mut rest = vec![0u8; old.len() - have as usize];
        recv.read_exact(&mut rest).await.unwrap();
        let trailer: Trailer = read_frame(&mut recv).await.unwrap();
        assert!(
            rest[..] == old[have as usize..],
            "{change}: the old content"
        );
        assert_eq!(
            trailer.sha256,
            <[u8; 32]>::from(Sha256::digest(&old)),
            "{change}: its whole hash"
        );
        server.put("f", &old);
    }
    server.stop().await;
}
