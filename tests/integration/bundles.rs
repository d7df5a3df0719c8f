//! Many small uploads on one stream (UploadBundle): each file of a bundle lands whole and
//! verified or is refused alone; a bundle that lies about its framing leaves nothing; a client
//! sends trees of small files in bundles, and one by one to a server that lacks them.

use std::sync::{Arc, Mutex};

use qft::protocol::{
    read_frame, write_frame, BundleItem, ErrorCode, FileMeta, Request, Response, Trailer,
    MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES,
};
use sha2::{Digest, Sha256};

use crate::shell::Shell;
use crate::support::{mtime, random_bytes, set_mtime, RawPeer, TestServer};

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// One file of a hand-made bundle: its item, body, and the hash its trailer claims.
struct Part {
    name: &'static str,
    body: Vec<u8>,
    claimed: [u8; 32],
    meta: Option<FileMeta>,
}

impl Part {
    fn good(name: &'static str, body: Vec<u8>) -> Self {
        let claimed = sha(&body);
        Part {
            name,
            body,
            claimed,
            meta: None,
        }
    }
}

/// Sends the request announcing `files` and `bytes`, then every part, then finishes; returns
/// the stream the answers come on.
async fn send_bundle(peer: &RawPeer, files: u32, bytes: u64, parts: &[Part]) -> quinn::RecvStream {
    let (mut send, recv) = peer.conn.open_bi().await.unwrap();
    write_frame(&mut send, &Request::UploadBundle { files, bytes })
        .await
        .unwrap();
    for part in parts {
        let item = BundleItem {
            name: part.name.into(),
            size: part.body.len() as u64,
            meta: part.meta,
        };
        // The server may stop reading a broken bundle part way.
        if write_frame(&mut send, &item).await.is_err()
            || send.write_all(&part.body).await.is_err()
            || write_frame(
                &mut send,
                &Trailer {
                    sha256: part.claimed,
                },
            )
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = send.finish();
    recv
}

fn total(parts: &[Part]) -> u64 {
    parts.iter().map(|p| p.body.len() as u64).sum()
}

/// The stream ends without an answer for any file: the server reset it (a reset may overtake
/// the Ready before it).
async fn reset_after_ready(recv: &mut quinn::RecvStream) {
    match read_frame::<Response, _>(recv).await {
        Ok(first) => assert_eq!(first, Response::Ready),
        Err(e) => return assert!(e.to_string().contains("reset"), "{e}"),
    }
    let read = recv.read_to_end(1 << 20).await;
    assert!(read.is_err(), "the stream is reset, not finished: {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_file_of_a_bundle_is_answered_alone_in_order() {
    let server = TestServer::start().await;
    server.put("old", b"the old content");
    let peer = server.raw().await;
    let when = 1_500_000_000;
    let mut with_time = Part::good("d/timed", random_bytes(3000));
    with_time.meta = Some(FileMeta {
        modified: Some(when),
        mode: None,
    });
    let mut lying = Part::good("old", random_bytes(100));
    lying.claimed = sha(b"something else");
    let parts = [
        Part::good("a", random_bytes(10)),
        lying,
        Part::good("../escape", b"x".to_vec()),
        with_time,
        Part::good("d/e/deep", Vec::new()),
    ];
    let mut recv = send_bundle(&peer, parts.len() as u32, total(&parts), &parts).await;
    assert_eq!(
        read_frame::<Response, _>(&mut recv).await.unwrap(),
        Response::Ready
    );
    let mut answers = Vec::new();
    for _ in &parts {
        answers.push(read_frame::<Response, _>(&mut recv).await.unwrap());
    }
    let rest = recv.read_to_end(1 << 20).await.unwrap();
    assert!(rest.is_empty(), "one answer per file, then the end");

    let codes: Vec<Option<ErrorCode>> = answers
        .iter()
        .map(|a| match a {
            Response::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(ErrorCode::HashMismatch),
            Some(ErrorCode::InvalidName),
            None,
            None
        ],
        "{answers:?}"
    );
    for i in [0, 3, 4] {
        let want = Response::Done {
            sha256: sha(&parts[i].body),
        };
        assert_eq!(answers[i], want, "{}", parts[i].name);
        assert_eq!(server.read(parts[i].name).unwrap(), parts[i].body);
    }
    assert_eq!(
        server.read("old").unwrap(),
        b"the old content",
        "a lying file replaces nothing"
    );
    assert!(!server.local_outside().join("escape").exists());
    assert_eq!(mtime(&server.local_root().join("d/timed")), when);
    assert!(server.staged().is_empty(), "no temp file left");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_lies_about_its_framing_stores_nothing() {
    let server = TestServer::start().await;
    let peer = server.raw().await;
    let two = || {
        [
            Part::good("x1", random_bytes(500)),
            Part::good("x2", random_bytes(500)),
        ]
    };

    // Files larger than announced.
    let parts = two();
    let mut recv = send_bundle(&peer, 2, 600, &parts).await;
    reset_after_ready(&mut recv).await;
    // Smaller than announced.
    let mut recv = send_bundle(&peer, 2, 5000, &parts).await;
    reset_after_ready(&mut recv).await;
    // Fewer files than announced: the stream ends after the first.
    let parts = two();
    let mut recv = send_bundle(&peer, 3, total(&parts) + 1, &parts).await;
    reset_after_ready(&mut recv).await;
    // Bytes after the last trailer.
    let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
    let parts = two();
    write_frame(
        &mut send,
        &Request::UploadBundle {
            files: 2,
            bytes: total(&parts),
        },
    )
    .await
    .unwrap();
    for part in &parts {
        let item = BundleItem {
            name: part.name.into(),
            size: part.body.len() as u64,
            meta: None,
        };
        write_frame(&mut send, &item).await.unwrap();
        send.write_all(&part.body).await.unwrap();
        write_frame(
            &mut send,
            &Trailer {
                sha256: part.claimed,
            },
        )
        .await
        .unwrap();
    }
    send.write_all(b"more").await.unwrap();
    send.finish().unwrap();
    reset_after_ready(&mut recv).await;

    assert!(
        !server.exists("x1") && !server.exists("x2"),
        "nothing stored"
    );
    // The server is fine, and so is the connection.
    let parts = two();
    let mut recv = send_bundle(&peer, 2, total(&parts), &parts).await;
    assert_eq!(
        read_frame::<Response, _>(&mut recv).await.unwrap(),
        Response::Ready
    );
    for part in &parts {
        let want = Response::Done {
            sha256: sha(&part.body),
        };
        assert_eq!(read_frame::<Response, _>(&mut recv).await.unwrap(), want);
    }
    assert!(server.staged().is_empty(), "no temp file left");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_over_the_limits_or_without_write_permission_is_refused_whole() {
    let server = TestServer::start().await;
    let peer = server.raw().await;
    let cases = [
        (0, 0, "no files"),
        (MAX_BUNDLE_FILES + 1, 100, "too many files"),
        (2, MAX_BUNDLE_BYTES + 1, "too many bytes"),
    ];
    for (files, bytes, what) in cases {
        let mut recv = send_bundle(&peer, files, bytes, &[]).await;
        match read_frame::<Response, _>(&mut recv).await.unwrap() {
            Response::Error { code, message } => {
                assert_eq!(code, ErrorCode::BadRequest, "{what}: {message}");
                assert!(message.contains("a bundle holds"), "{what}: {message}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    server.stop().await;

    let server = TestServer::start_with_config(|c| c.read_only = true).await;
    let peer = server.raw().await;
    let parts = [Part::good("f", random_bytes(10))];
    let mut recv = send_bundle(&peer, 1, 10, &parts).await;
    match read_frame::<Response, _>(&mut recv).await.unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
        other => panic!("{other:?}"),
    }
    assert!(!server.exists("f"));
    server.stop().await;
}

#[test]
fn put_r_sends_small_files_in_bundles_and_they_land_whole_with_their_times() {
    let sh = Shell::start();
    let src = sh.local().join("tree");
    let mut want = Vec::new();
    for i in 0..150 {
        let name = format!("d{}/f{i}", i % 3);
        let body = random_bytes(i * 53);
        std::fs::create_dir_all(src.join(format!("d{}", i % 3))).unwrap();
        std::fs::write(src.join(&name), &body).unwrap();
        set_mtime(&src.join(&name), 1_400_000_000 + i as u64);
        want.push((name, body));
    }
    // Beside them, files too large for a bundle.
    for (name, len) in [("big", 3 << 20), ("mid", 300 << 10)] {
        let body = random_bytes(len);
        std::fs::write(src.join(name), &body).unwrap();
        want.push((name.to_owned(), body));
    }
    let out = sh.qft(&["put", "-r", "-p", "tree"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.starts_with("uploaded\t"))
            .count(),
        152,
        "{lines}"
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("152 files"),
        "one summary for every file: {summary}"
    );
    for (name, body) in &want {
        let served = format!("tree/{name}");
        assert_eq!(sh.served().read(&served).as_ref(), Some(body), "{name}");
    }
    let root = sh.served().local_root();
    assert_eq!(mtime(&root.join("tree/d1/f7")), 1_400_000_007);
    assert!(sh.served().staged().is_empty());
}

#[test]
fn a_server_without_bundles_gets_the_files_one_by_one() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let stored = Arc::new(Mutex::new(Vec::new()));
    let (seen, kept) = (asked.clone(), stored.clone());
    let sh = Shell::fake(move |request, mut send, mut recv| {
        let (seen, kept) = (seen.clone(), kept.clone());
        async move {
            match request {
                Request::Upload { name, size } => {
                    seen.lock().unwrap().push("Upload".to_owned());
                    write_frame(&mut send, &Response::Ready).await.unwrap();
                    let mut body = vec![0u8; size as usize];
                    recv.read_exact(&mut body).await.unwrap();
                    let trailer: Trailer = read_frame(&mut recv).await.unwrap();
                    assert_eq!(trailer.sha256, sha(&body));
                    kept.lock().unwrap().push((name, body));
                    let done = Response::Done {
                        sha256: trailer.sha256,
                    };
                    write_frame(&mut send, &done).await.unwrap();
                }
                other => {
                    let kind = format!("{other:?}");
                    seen.lock()
                        .unwrap()
                        .push(kind.split([' ', '{']).next().unwrap().to_owned());
                    let no = Response::Error {
                        code: ErrorCode::Unsupported,
                        message: "unknown request".into(),
                    };
                    write_frame(&mut send, &no).await.unwrap();
                }
            }
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    });
    let src = sh.local().join("t");
    std::fs::create_dir_all(&src).unwrap();
    let mut want = Vec::new();
    for i in 0..100 {
        let body = random_bytes(10 + i);
        std::fs::write(src.join(format!("f{i:03}")), &body).unwrap();
        want.push((format!("t/f{i:03}"), body));
    }
    // One at a time, so that the first bundle's answer comes before a second is sent.
    let out = sh.qft(&["put", "-r", "-j", "1", "t"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked[0], "UploadBundle", "{asked:?}");
    assert_eq!(
        asked[1..],
        vec!["Upload".to_owned(); 100],
        "asked once, then remembered"
    );
    let mut stored = stored.lock().unwrap().clone();
    stored.sort();
    assert_eq!(stored, want);
}

#[test]
fn a_tree_of_small_files_goes_up_in_bundles_to_an_s3_server_and_comes_back() {
    let config = crate::seaweed::config();
    let sh = Shell::start_over(|| crate::seaweed::open(&config));
    let src = sh.local().join("s");
    let mut want = Vec::new();
    for i in 0..40 {
        let name = format!("s/d{}/f{i}", i % 2);
        let body = random_bytes(i * 101);
        let path = sh.local().join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        set_mtime(&path, 1_600_000_000 + i as u64);
        want.push((name, body));
    }
    let out = sh.qft(&["put", "-r", "-p", "s"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&src).unwrap();
    let out = sh.qft(&["get", "-r", "-p", "s"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, (name, body)) in want.iter().enumerate() {
        let path = sh.local().join(name);
        assert_eq!(std::fs::read(&path).unwrap(), *body, "{name}");
        assert_eq!(
            mtime(&path),
            1_600_000_000 + i as u64,
            "{name} kept its time"
        );
    }
}
