//! What one client can take from everyone, bounded (issue 17): partials it abandons, names the
//! disk cannot hold, responses it never reads.

use std::time::Duration;

use qft::protocol::{close, read_frame, write_frame, ErrorCode, Request, Response};

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
