//! Small uploads committed together (group commit): they share their flushes to disk, and each
//! still lands whole and verified or not at all, whatever happens to the others.

use std::time::{Duration, Instant};

use qft::protocol::{read_frame, write_frame, ErrorCode, Request, Response, Trailer};
use sha2::{Digest, Sha256};

use crate::support::{random_bytes, RawPeer, TestServer};

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Sends a whole small upload (request, body, trailer claiming `claimed`) at once, as the client
/// does for small files; returns the stream its answers come on.
async fn send_upload(
    peer: &RawPeer,
    name: &str,
    body: &[u8],
    claimed: [u8; 32],
) -> quinn::RecvStream {
    let (mut send, recv) = peer.conn.open_bi().await.unwrap();
    let request = Request::Upload {
        name: name.into(),
        size: body.len() as u64,
    };
    write_frame(&mut send, &request).await.unwrap();
    send.write_all(body).await.unwrap();
    write_frame(&mut send, &Trailer { sha256: claimed })
        .await
        .unwrap();
    send.finish().unwrap();
    recv
}

/// The answer after Ready.
async fn verdict(recv: &mut quinn::RecvStream) -> Response {
    assert_eq!(
        read_frame::<Response, _>(recv).await.unwrap(),
        Response::Ready
    );
    read_frame(recv).await.unwrap()
}

/// `count` distinct small bodies (a few bytes to a few KiB).
fn bodies(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| random_bytes(1 + i * 97 % 8000))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_small_uploads_all_land_whole_and_verified() {
    let server = TestServer::start().await;
    let peers = [server.raw().await, server.raw().await, server.raw().await];
    let bodies = bodies(120);
    let mut streams = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let peer = &peers[i % peers.len()];
        streams.push(send_upload(peer, &format!("d{}/f{i}", i % 4), body, sha(body)).await);
    }
    for (i, recv) in streams.iter_mut().enumerate() {
        let want = Response::Done {
            sha256: sha(&bodies[i]),
        };
        assert_eq!(verdict(recv).await, want, "f{i}");
    }
    for (i, body) in bodies.iter().enumerate() {
        let got = server.read(&format!("d{}/f{i}", i % 4));
        assert!(got.as_ref() == Some(body), "f{i} is not what was sent");
    }
    assert!(server.staged().is_empty(), "no temp file left");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_member_whose_hash_fails_does_not_land_and_fails_no_other() {
    let server = TestServer::start().await;
    server.put("f5", b"the old f5");
    let peer = server.raw().await;
    let bodies = bodies(16);
    let mut streams = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        // f5's trailer does not match its body: changed in transit.
        let claimed = if i == 5 {
            sha(b"something else")
        } else {
            sha(body)
        };
        streams.push(send_upload(&peer, &format!("f{i}"), body, claimed).await);
    }
    for (i, recv) in streams.iter_mut().enumerate() {
        match verdict(recv).await {
            Response::Error { code, message } if i == 5 => {
                assert_eq!(code, ErrorCode::HashMismatch, "{message}")
            }
            Response::Done { sha256 } if i != 5 => assert_eq!(sha256, sha(&bodies[i])),
            other => panic!("f{i}: {other:?}"),
        }
    }
    for (i, body) in bodies.iter().enumerate() {
        let got = server.read(&format!("f{i}")).unwrap();
        if i == 5 {
            assert_eq!(got, b"the old f5", "the old file stays");
        } else {
            assert_eq!(&got, body, "f{i}");
        }
    }
    assert!(server.staged().is_empty(), "no temp file left");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_batch_loses_no_other_file() {
    let server = TestServer::start().await;
    let leaving = server.raw().await;
    let staying = server.raw().await;
    let bodies = bodies(64);
    // The leaving client's uploads are in flight, and some already committing, when it goes.
    let mut gone = Vec::new();
    for (i, body) in bodies.iter().enumerate().take(32) {
        gone.push(send_upload(&leaving, &format!("gone/f{i}"), body, sha(body)).await);
    }
    let mut streams = Vec::new();
    for (i, body) in bodies.iter().enumerate().skip(32) {
        streams.push(send_upload(&staying, &format!("kept/f{i}"), body, sha(body)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.names("gone").is_empty() {
        assert!(
            Instant::now() < deadline,
            "none of the leaving client's files landed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    leaving.conn.close(0u32.into(), b"gone");
    drop(gone);
    for (recv, i) in streams.iter_mut().zip(32..) {
        let want = Response::Done {
            sha256: sha(&bodies[i]),
        };
        assert_eq!(verdict(recv).await, want, "kept/f{i}");
        assert_eq!(server.read(&format!("kept/f{i}")).unwrap(), bodies[i]);
    }
    // Each of the leaving client's files is there whole or not at all, and none stays staged.
    while !server.staged().is_empty() {
        assert!(
            Instant::now() < deadline,
            "temp files left: {:?}",
            server.staged()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (i, body) in bodies.iter().enumerate().take(32) {
        if let Some(got) = server.read(&format!("gone/f{i}")) {
            assert_eq!(&got, body, "gone/f{i} landed, but not whole");
        }
    }
    server.stop().await;
}
