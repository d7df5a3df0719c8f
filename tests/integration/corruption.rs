//! Lying and broken peers: a corrupt or mis-sized body is caught and leaves no file behind.

use std::net::SocketAddr;

use qft::client::{Client, ClientError, ConnectConfig, Target, Trust};
use qft::protocol::{encode_frame, read_frame, write_frame, ErrorCode, Request, Response, Trailer};
use qft::tls::Fingerprint;
use sha2::{Digest, Sha256};

use crate::support::{fake_server, list_dir, no_progress, TestServer};

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn refused_with(response: Response, want: ErrorCode) {
    match response {
        Response::Error { code, message } => {
            assert_eq!(code, want, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

/// Sends a whole upload (request, body, trailer) without waiting for Ready, as the client does
/// for files smaller than one resume piece. A refusal may stop the stream under the writes.
async fn upload_at_once(
    peer: &crate::support::RawPeer,
    name: &str,
    body: &[u8],
) -> quinn::RecvStream {
    let (mut send, recv) = peer.conn.open_bi().await.unwrap();
    let request = Request::Upload {
        name: name.into(),
        size: body.len() as u64,
    };
    write_frame(&mut send, &request).await.unwrap();
    let trailer = Trailer { sha256: sha(body) };
    if send.write_all(body).await.is_ok() && write_frame(&mut send, &trailer).await.is_ok() {
        let _ = send.finish();
    }
    recv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_body_sent_before_ready_is_stored_or_refused_whole() {
    let server = TestServer::start_with_config(|c| c.limits.max_upload = Some(1000)).await;
    let peer = server.raw().await;

    let body = crate::support::random_bytes(600);
    let mut recv = upload_at_once(&peer, "small", &body).await;
    assert_eq!(
        read_frame::<Response, _>(&mut recv).await.unwrap(),
        Response::Ready
    );
    assert_eq!(
        read_frame::<Response, _>(&mut recv).await.unwrap(),
        Response::Done { sha256: sha(&body) }
    );
    assert_eq!(server.read("small").unwrap(), body);

    // Over the server's limit: refused with the reason, the body already sent thrown away.
    let big = crate::support::random_bytes(5000);
    let mut recv = upload_at_once(&peer, "big", &big).await;
    refused_with(read_frame(&mut recv).await.unwrap(), ErrorCode::TooLarge);
    assert!(!server.exists("big"));
    assert!(server.staged().is_empty(), "nothing staged");
    // The unread body broke nothing: the connection goes on.
    peer.list_root().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_with_a_wrong_hash_is_refused_and_the_old_file_kept() {
    let server = TestServer::start().await;
    server.put("f", b"old");
    let peer = server.raw().await;
    let body = b"tampered in transit";
    let (mut send, mut recv) = peer.begin_upload("f", body.len() as u64).await;
    send.write_all(body).await.unwrap();
    write_frame(
        &mut send,
        &Trailer {
            sha256: sha(b"what was really sent"),
        },
    )
    .await
    .unwrap();
    send.finish().unwrap();
    refused_with(
        read_frame(&mut recv).await.unwrap(),
        ErrorCode::HashMismatch,
    );
    assert_eq!(server.read("f").unwrap(), b"old");
    assert!(server.staged().is_empty(), "temp file removed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_shorter_or_longer_than_declared_is_refused() {
    let server = TestServer::start().await;
    let peer = server.raw().await;

    // Declares 100, sends 10 and finishes.
    let (mut send, mut recv) = peer.begin_upload("short", 100).await;
    send.write_all(&[1; 10]).await.unwrap();
    send.finish().unwrap();
    refused_with(
        read_frame(&mut recv).await.unwrap(),
        ErrorCode::SizeMismatch,
    );

    // Declares 10, sends 100 (the extra bytes land where the trailer should be).
    let (mut send, mut recv) = peer.begin_upload("long", 10).await;
    send.write_all(&[1; 100]).await.unwrap();
    let _ = send.finish();
    refused_with(
        read_frame(&mut recv).await.unwrap(),
        ErrorCode::SizeMismatch,
    );

    // A correct body and trailer followed by junk.
    let (mut send, mut recv) = peer.begin_upload("junk", 3).await;
    send.write_all(b"abc").await.unwrap();
    write_frame(
        &mut send,
        &Trailer {
            sha256: sha(b"abc"),
        },
    )
    .await
    .unwrap();
    send.write_all(b"more").await.unwrap();
    send.finish().unwrap();
    refused_with(read_frame(&mut recv).await.unwrap(), ErrorCode::BadRequest);

    assert_eq!(server.names(""), Vec::<String>::new(), "nothing was stored");
    assert!(server.staged().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_end_only_their_stream() {
    let server = TestServer::start().await;
    server.put("f", b"x");
    let peer = server.raw().await;

    // Garbage.
    let r = peer
        .exchange_bytes(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    refused_with(r, ErrorCode::BadRequest);
    // A length prefix of 2^32 - 1: refused without allocating 4 GiB.
    let r = peer
        .exchange_bytes(&[0xff, 0xff, 0xff, 0xff, 0])
        .await
        .unwrap();
    refused_with(r, ErrorCode::BadRequest);
    // A well-formed request of a kind this server does not know (a newer client).
    let r = peer.exchange_bytes(&[0, 0, 0, 2, 42, 0]).await.unwrap();
    refused_with(r, ErrorCode::Unsupported);
    // A truncated frame: the stream just ends.
    let cut = &encode_frame(&Request::Help).unwrap()[..3];
    assert!(peer.exchange_bytes(cut).await.is_err());

    // The same connection still works.
    let (entries, last) = peer.list_root().await;
    assert!(last && entries.len() == 1, "{entries:?}");
    server.stop().await;
}

/// A server that answers every download with `body` but announces `size` and trails `digest`.
async fn lying_server(
    size: u64,
    body: Vec<u8>,
    digest: [u8; 32],
) -> (SocketAddr, Fingerprint, quinn::Endpoint) {
    let body = std::sync::Arc::new(body);
    fake_server(move |request, mut send, mut recv| {
        let body = body.clone();
        async move {
            // Lies the same way in both exchanges: the resumable one (what clients use first)
            // and the plain one.
            let header = match request {
                Request::ResumeDownload { .. } => Response::Prefix {
                    size,
                    modified: None,
                    chunk: 1 << 20,
                    hashes: Vec::new(),
                },
                _ => Response::FileHeader {
                    size,
                    modified: None,
                },
            };
            write_frame(&mut send, &header).await.unwrap();
            if matches!(header, Response::Prefix { .. }) {
                let _ = read_frame::<qft::protocol::Resume, _>(&mut recv).await;
            }
            let _ = send.write_all(&body).await;
            if body.len() as u64 == size {
                let _ = write_frame(&mut send, &Trailer { sha256: digest }).await;
            }
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    })
    .await
}

async fn client_for(addr: SocketAddr, fingerprint: Fingerprint) -> Client {
    let trust = Trust {
        pin: Some(fingerprint),
        ..Trust::default()
    };
    Client::connect(&ConnectConfig::new(
        Target::parse(&addr.to_string()).unwrap(),
        trust,
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_hash_does_not_match_leaves_no_file() {
    let body = crate::support::random_bytes(3 * 1024 * 1024);
    let (addr, fp, _server) =
        lying_server(body.len() as u64, body.clone(), sha(b"something else")).await;
    let client = client_for(addr, fp).await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    let err = client
        .download("f", &dest, false, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::HashMismatch(_)), "{err}");
    assert!(err.to_string().contains("verification failed"), "{err}");
    assert!(
        list_dir(local.path()).is_empty(),
        "neither the file nor its temp remains"
    );

    // The same with --force over an existing file: the old file stays intact.
    std::fs::write(&dest, b"precious").unwrap();
    let err = client
        .download("f", &dest, true, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::HashMismatch(_)), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    assert_eq!(list_dir(local.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_short_leaves_nothing_under_its_name_and_keeps_its_partial() {
    let (addr, fp, _server) = lying_server(1_000_000, vec![7; 1000], [0; 32]).await;
    let client = client_for(addr, fp).await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    let err = client
        .download("f", &dest, false, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Interrupted(_)), "{err}");
    // Nothing under the real name; what arrived waits in the hidden partial, to resume.
    assert!(!dest.exists());
    let left = list_dir(local.path());
    assert_eq!(left, [qft::client::resume::partial_path(&dest)], "{left:?}");
    assert_eq!(std::fs::metadata(&left[0]).unwrap().len(), 1000);
}

/// A server that answers every request with `answer`.
async fn scripted_server(answer: Response) -> (SocketAddr, Fingerprint, quinn::Endpoint) {
    fake_server(move |_, mut send, _| {
        let answer = answer.clone();
        async move {
            let _ = write_frame(&mut send, &answer).await;
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_messages_from_a_hostile_server_cannot_drive_the_terminal() {
    let evil = "clear\x1b[2J\x1b]0;pwned\x07";
    let listing = Response::ListPage {
        entries: vec![qft::protocol::Entry {
            name: evil.into(),
            kind: qft::protocol::EntryKind::File,
            size: 1,
            modified: None,
        }],
        last: true,
    };
    let (addr, fp, _server) = scripted_server(listing).await;
    let err = client_for(addr, fp).await.list("").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidName { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    assert!(
        shown.contains("\\u{1b}[2J"),
        "escaped, still readable: {shown}"
    );

    let refusal = Response::Error {
        code: ErrorCode::NotFound,
        message: format!("no such file {evil}"),
    };
    let (addr, fp, _server) = scripted_server(refusal).await;
    let err = client_for(addr, fp).await.delete("x").await.unwrap_err();
    let shown = err.to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    assert!(shown.starts_with("no such file clear\\u{1b}"), "{shown}");
}
