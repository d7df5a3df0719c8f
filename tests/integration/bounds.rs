//! What one client can take from everyone, bounded (issue 17): partials it abandons, names the
//! disk cannot hold, responses it never reads, disk space it announced.

use std::time::Duration;

use qft::protocol::{
    close, read_frame, write_frame, ErrorCode, Request, Response, Resume, Trailer,
};
use sha2::{Digest, Sha256};

use crate::cli::{Served, World};
use crate::support::{no_progress, random_bytes, RawPeer, TestServer};

/// Starts a resumable upload by hand and returns the streams and the server's first answer.
async fn begin_resumable(
    peer: &RawPeer,
    name: &str,
    size: u64,
) -> (quinn::SendStream, quinn::RecvStream, Response) {
    let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
    let request = Request::ResumeUpload {
        name: name.into(),
        size,
    };
    write_frame(&mut send, &request).await.unwrap();
    let first = read_frame::<Response, _>(&mut recv).await.unwrap();
    (send, recv, first)
}

/// The partials the server keeps.
fn partials(server: &TestServer) -> usize {
    server
        .staged()
        .iter()
        .filter(|(name, _)| name.starts_with("partial-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_resumable_uploads_are_bounded_per_client_and_in_all() {
    let server = TestServer::start_with_config(|c| {
        c.limits.max_partials_per_client = 2;
        c.limits.max_partials = 3;
    })
    .await;
    // One client starts resumable uploads and drops each after the server's answer.
    let peer = server.raw().await;
    let mut kept = Vec::new();
    for i in 0..2 {
        let (send, recv, first) = begin_resumable(&peer, &format!("f{i}"), 5 << 20).await;
        assert!(matches!(first, Response::Held { .. }), "{first:?}");
        kept.push((send, recv));
    }
    let (_s, _r, third) = begin_resumable(&peer, "f2", 5 << 20).await;
    match third {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Unsupported, "{message}");
            assert!(message.contains("without resuming"), "{message}");
        }
        other => panic!("a third partial of one client: {other:?}"),
    }
    drop(kept);
    let other = server.raw().await;
    let (_s, _r, first) = begin_resumable(&other, "g0", 5 << 20).await;
    assert!(matches!(first, Response::Held { .. }), "{first:?}");
    let (_s, _r, over) = begin_resumable(&other, "g1", 5 << 20).await;
    assert!(
        matches!(
            over,
            Response::Error {
                code: ErrorCode::Unsupported,
                ..
            }
        ),
        "past the total: {over:?}"
    );
    assert_eq!(partials(&server), 3);

    // An honest client is not refused: its upload goes plain, and arrives whole.
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20);
    std::fs::write(local.path().join("big"), &data).unwrap();
    client
        .upload(&local.path().join("big"), "big", &no_progress())
        .await
        .unwrap();
    assert_eq!(server.read("big").unwrap(), data);
    assert_eq!(partials(&server), 3, "and left no partial behind");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_upload_leaves_no_empty_directory() {
    let server = TestServer::start().await;
    let peer = server.raw().await;
    // Accepted, then never sent: the directories it names are not made for it.
    let (send, recv) = peer.begin_upload("plain/deep/f", 5 << 20).await;
    let (rsend, rrecv, first) = begin_resumable(&peer, "resumed/deep/f", 5 << 20).await;
    assert!(matches!(first, Response::Held { .. }), "{first:?}");
    assert!(!server.exists("plain") && !server.exists("resumed"));
    drop((send, recv, rsend, rrecv));
    assert_eq!(server.names(""), Vec::<String>::new());
    // A finished upload makes them, as before.
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("f"), b"data").unwrap();
    client
        .upload(&local.path().join("f"), "plain/deep/f", &no_progress())
        .await
        .unwrap();
    assert_eq!(server.read("plain/deep/f").unwrap(), b"data");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_byte_name_component_is_an_invalid_name_before_ready_not_internal_after() {
    let server = TestServer::start().await;
    let peer = server.raw().await;
    let long = "x".repeat(300);
    for name in [long.clone(), format!("dir/{long}"), format!("{long}/f")] {
        let requests = [
            Request::Upload {
                name: name.clone(),
                size: 5 << 20,
            },
            Request::ResumeUpload {
                name: name.clone(),
                size: 5 << 20,
            },
            Request::Download { name: name.clone() },
            Request::Delete { name: name.clone() },
            Request::List { dir: name.clone() },
        ];
        for request in requests {
            match peer.exchange(&request, &[]).await {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::InvalidName, "{request:?}: {message}");
                    assert!(message.contains("longer than 255 bytes"), "{message}");
                }
                other => panic!("{request:?}: {other:?}"),
            }
        }
    }
    assert!(server.names("").is_empty() && server.staged().is_empty());
    server.stop().await;
}

/// Reads a stream until it ends or fails; true if the server reset it as too slow.
async fn cut_off_as_too_slow(recv: &mut quinn::RecvStream) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(quinn::ReadError::Reset(code)) => return code == close::TOO_SLOW.into(),
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_nobody_reads_is_cut_off_at_the_stall_timeout() {
    let server =
        TestServer::start_with_config(|c| c.limits.stall_timeout = Duration::from_millis(500))
            .await;
    // More than the client's stream window of pages: the server must wait for the reader.
    let dir = server.local_root().join("many");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..8000 {
        std::fs::write(dir.join(format!("{i:05}-{}", "n".repeat(200))), b"").unwrap();
    }
    let peer = server.raw().await;
    let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
    write_frame(&mut send, &Request::List { dir: "many".into() })
        .await
        .unwrap();
    send.finish().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        cut_off_as_too_slow(&mut recv).await,
        "a listing that nobody reads does not hold the server"
    );
    peer.list_root().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_never_sends_its_trailer_is_cut_off() {
    let server =
        TestServer::start_with_config(|c| c.limits.stall_timeout = Duration::from_millis(500))
            .await;
    let peer = server.raw().await;
    let body = random_bytes(2 << 20);
    let (mut send, mut recv) = peer.begin_upload("f", body.len() as u64).await;
    send.write_all(&body).await.unwrap();
    // No trailer, and the stream stays open.
    let reset = tokio::time::timeout(Duration::from_secs(10), cut_off_as_too_slow(&mut recv));
    assert!(reset.await.expect("cut off in time"), "reset as too slow");
    assert!(!server.exists("f") && server.staged().is_empty());
    drop(send);
    server.stop().await;
}

/// Runs the shell `script` (`$0` is the served directory) inside the namespace of a server on
/// a small disk of its own; returns its output.
fn in_server_disk(server: &Served, world: &World, script: &str) -> String {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &server.pid().to_string(), "-U", "-m"])
        .args(["--preserve-credentials", "sh", "-c", script])
        .arg(world.path("served"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A raw peer of a server started by [`Served`].
async fn raw_peer(server: &Served) -> RawPeer {
    RawPeer::connect(
        server.addr().parse().unwrap(),
        server.fingerprint.parse().unwrap(),
    )
    .await
}

/// Sends the rest of an upload's body and its trailer, and returns the server's verdict.
async fn finish_upload(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    rest: &[u8],
    whole: &[u8],
) -> Response {
    let _ = send.write_all(rest).await;
    let sha256 = Sha256::digest(whole).into();
    let _ = write_frame(&mut send, &Trailer { sha256 }).await;
    let _ = send.finish();
    read_frame::<Response, _>(&mut recv).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uploads_are_never_promised_the_same_free_space() {
    let w = World::new();
    let server = Served::start_on_small_disk(&w.path("server-home"), &w.path("served"), "4m");
    let peer = raw_peer(&server).await;
    // A (3 MiB) is accepted and starts sending.
    let a = random_bytes(3 << 20);
    let (mut send, recv) = peer.begin_upload("a", a.len() as u64).await;
    send.write_all(&a[..1 << 20]).await.unwrap();
    // B (2 MiB) fits in what is free, but not beside what A still needs: refused up front,
    // rather than both failing halfway and leaving the disk full.
    let b = Request::Upload {
        name: "b".into(),
        size: 2 << 20,
    };
    match peer.exchange(&b, &[]).await {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::NoSpace, "{message}");
            assert!(
                message.contains("promised to uploads in progress"),
                "{message}"
            );
        }
        other => panic!("B was accepted: {other:?}"),
    }
    // A gets the space it was promised.
    let done = finish_upload(send, recv, &a[1 << 20..], &a).await;
    assert!(matches!(done, Response::Done { .. }), "{done:?}");
    let seen = in_server_disk(&server, &w, r#"cd "$0" && ls -A . .qft/tmp && wc -c < a"#);
    assert!(seen.contains("3145728"), "A whole: {seen}");
    assert!(!seen.contains("upload-"), "nothing staged: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumable_upload_that_fails_for_space_frees_its_partial() {
    let w = World::new();
    let server = Served::start_on_small_disk(&w.path("server-home"), &w.path("served"), "4m");
    let peer = raw_peer(&server).await;
    let a = random_bytes(3 << 20);
    let (mut send, recv, first) = begin_resumable(&peer, "a", a.len() as u64).await;
    assert!(matches!(first, Response::Held { .. }), "{first:?}");
    write_frame(&mut send, &Resume { from: 0 }).await.unwrap();
    send.write_all(&a[..1 << 20]).await.unwrap();
    // Something else on the machine takes the space A still needs.
    in_server_disk(&server, &w, r#"head -c 2621440 /dev/urandom > "$0/filler""#);
    match finish_upload(send, recv, &a[1 << 20..], &a).await {
        Response::Error { code, message } => assert_eq!(code, ErrorCode::NoSpace, "{message}"),
        other => panic!("expected no space, got {other:?}"),
    }
    let staged = in_server_disk(&server, &w, r#"ls -A "$0/.qft/tmp""#);
    assert!(
        !staged.contains("partial-"),
        "the partial was freed: {staged}"
    );
    // Once the other file goes, the disk is as free as before: another 3 MiB fits.
    in_server_disk(&server, &w, r#"rm "$0/filler""#);
    let c = random_bytes(3 << 20);
    let (send, recv) = peer.begin_upload("c", c.len() as u64).await;
    let done = finish_upload(send, recv, &c, &c).await;
    assert!(matches!(done, Response::Done { .. }), "{done:?}");
}

/// Sends upload requests of `size` bytes by hand, without their bodies: the first `ready` are
/// accepted (each awaited before the next is sent), the others wait for a slot.
async fn uploads_that_send_nothing(
    peer: &RawPeer,
    count: usize,
    ready: usize,
    size: u64,
) -> Vec<(quinn::SendStream, quinn::RecvStream)> {
    let mut streams = Vec::new();
    for i in 0..count {
        let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
        let request = Request::Upload {
            name: format!("idle-{i}"),
            size,
        };
        write_frame(&mut send, &request).await.unwrap();
        if i < ready {
            let first = read_frame::<Response, _>(&mut recv).await.unwrap();
            assert_eq!(first, Response::Ready);
        }
        streams.push((send, recv));
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_get_is_not_queued_behind_uploads_that_send_nothing() {
    let server = TestServer::start_with_config(|c| {
        c.limits.max_transfers = 2;
        // Nothing is cut off for being slow during this test.
        c.limits.stall_timeout = Duration::from_secs(3600);
    })
    .await;
    server.put("small", b"small!");
    let peer = server.raw().await;
    let _idle = uploads_that_send_nothing(&peer, 6, 2, 100 << 20).await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("small");
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        client.download("small", &dest, false, &no_progress()),
    )
    .await
    .expect("a 6-byte get does not wait for 100 MB uploads that send nothing");
    got.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"small!");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_transfer_slot() {
    let server = TestServer::start_with_config(|c| {
        c.limits.max_transfers = 4;
        c.limits.max_transfers_per_client = 2;
        c.limits.stall_timeout = Duration::from_secs(3600);
    })
    .await;
    // Another address: another client on a server without a list of keys.
    let greedy = RawPeer::connect_from(
        server.addr,
        server.fingerprint,
        "127.0.0.2".parse().unwrap(),
    )
    .await;
    let _idle = uploads_that_send_nothing(&greedy, 6, 2, 100 << 20).await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20);
    std::fs::write(local.path().join("big"), &data).unwrap();
    let both = async {
        client
            .upload(&local.path().join("big"), "big", &no_progress())
            .await
            .unwrap();
        let dest = local.path().join("back");
        client
            .download("big", &dest, false, &no_progress())
            .await
            .unwrap();
        std::fs::read(dest).unwrap()
    };
    let back = tokio::time::timeout(Duration::from_secs(20), both)
        .await
        .expect("another client's large transfers still get slots");
    assert_eq!(back, data);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_claiming_a_whole_file_cannot_make_the_server_hash_it_again_and_again() {
    let mib = 1u64 << 20;
    let server = TestServer::start_with_config(|c| c.limits.resume_hash_allowance = 4 * mib).await;
    let data = random_bytes(8 << 20);
    server.put("f", &data);
    let peer = server.raw().await;
    // Asks to resume `name` as if holding `have` bytes; returns the pieces hashed, and the
    // streams after answering `from`.
    let resume = |have: u64, from: u64| {
        let peer = &peer;
        async move {
            let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
            let request = Request::ResumeDownload {
                name: "f".into(),
                have,
            };
            write_frame(&mut send, &request).await.unwrap();
            let Response::Prefix { hashes, .. } = read_frame(&mut recv).await.unwrap() else {
                panic!("no prefix");
            };
            write_frame(&mut send, &Resume { from }).await.unwrap();
            let mut first = [0u8; 1];
            recv.read_exact(&mut first).await.unwrap();
            (hashes.len(), recv)
        }
    };
    // An honest resume uses what was hashed, and is charged nothing.
    let (hashed, mut recv) = resume(3 * mib, 3 * mib).await;
    assert_eq!(hashed, 3);
    let mut rest = vec![0u8; (5 << 20) - 1];
    recv.read_exact(&mut rest).await.unwrap();
    // Claiming the whole file and resuming at 0: hashed up to the allowance, then no more.
    let (hashed, _recv) = resume(1 << 62, 0).await;
    assert_eq!(hashed, 4, "no more than the allowance");
    let (hashed, _recv) = resume(1 << 62, 0).await;
    assert_eq!(hashed, 0, "the allowance is spent");
    server.stop().await;
}
