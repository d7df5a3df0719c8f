//! Hostile and greedy clients. For each: a clear error to that client, nothing touched in the
//! served directory, other clients unaffected, and the server's resources given back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qft::client::{Client, ClientError};
use qft::protocol::{close, ErrorCode, Request, Response};
use qft::server::Access;
use qft::tls::{self, FingerprintVerifier, Identity};

use crate::support::{no_progress, random_bytes, RawPeer, TestServer};

/// A file in the served dir's parent listing `(identity, permissions)` lines.
fn authorized(dir: &Path, grants: &[(&Identity, &str)]) -> std::path::PathBuf {
    let path = dir.join("authorized_clients");
    let text: String = grants
        .iter()
        .map(|(id, perms)| format!("{} {perms} test client\n", id.fingerprint()))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn denied(result: Result<impl std::fmt::Debug, ClientError>, what: &str) {
    match result {
        Err(ClientError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::PermissionDenied, "{what}: {message}");
            assert!(
                message.starts_with("permission denied"),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: expected permission denied, got {other:?}"),
    }
}

async fn server_with_list(grants: &[(&Identity, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = authorized(&dir, grants);
    TestServer::start_with_config(|c| c.access = Access::Authorized(file)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_client_is_refused_before_it_can_do_anything() {
    let listed = Identity::generate().unwrap();
    let stranger = Identity::generate().unwrap();
    let server = server_with_list(&[(&listed, "read,write,delete")]).await;
    server.put("f", b"x");

    let client = server.client_as(stranger.clone()).await;
    let err = client.list("").await.unwrap_err();
    match &err {
        ClientError::Refused(reason) => {
            assert!(
                reason.contains(&stranger.fingerprint().to_string()),
                "{reason}"
            );
            assert!(reason.contains("qft id"), "says how to get added: {reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(client.delete("f").await.is_err());
    assert!(server.exists("f"));

    let ok = server.client_as(listed).await;
    assert_eq!(
        ok.list("").await.unwrap().len(),
        1,
        "a listed client is unaffected"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_without_its_permission_is_denied_and_changes_nothing() {
    let reader = Identity::generate().unwrap();
    let writer = Identity::generate().unwrap();
    let deleter = Identity::generate().unwrap();
    let server =
        server_with_list(&[(&reader, "read"), (&writer, "write"), (&deleter, "delete")]).await;
    server.put("f", b"original");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"replacement").unwrap();
    let dest = local.path().join("got");

    let (r, w, d) = (
        server.client_as(reader).await,
        server.client_as(writer).await,
        server.client_as(deleter).await,
    );
    for (who, c) in [("writer", &w), ("deleter", &d)] {
        denied(c.list("").await, &format!("{who} LIST"));
        denied(
            c.download("f", &dest, false, &no_progress()).await,
            &format!("{who} DOWNLOAD"),
        );
    }
    for (who, c) in [("reader", &r), ("deleter", &d)] {
        denied(
            c.upload(&src, "f", &no_progress()).await,
            &format!("{who} UPLOAD"),
        );
        denied(
            c.upload(&src, "new", &no_progress()).await,
            &format!("{who} UPLOAD new"),
        );
    }
    for (who, c) in [("reader", &r), ("writer", &w)] {
        denied(c.delete("f").await, &format!("{who} DELETE"));
    }
    for (who, c) in [("reader", &r), ("writer", &w), ("deleter", &d)] {
        denied(c.shutdown().await, &format!("{who} SHUTDOWN"));
        assert!(!c.help().await.unwrap().is_empty(), "HELP is for everyone");
    }
    assert_eq!(server.read("f").unwrap(), b"original");
    assert!(!server.exists("new") && !dest.exists());
    assert!(server.staged().is_empty());

    // And each may do what it was granted.
    r.download("f", &dest, false, &no_progress()).await.unwrap();
    w.upload(&src, "new", &no_progress()).await.unwrap();
    d.delete("new").await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_the_list_applies_to_new_and_live_connections() {
    let client_id = Identity::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = authorized(dir.path(), &[(&client_id, "read")]);
    let list_file = file.clone();
    let server = TestServer::start_with_config(|c| c.access = Access::Authorized(list_file)).await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"x").unwrap();

    let before = server.client_as(client_id.clone()).await;
    denied(
        before.upload(&src, "f", &no_progress()).await,
        "read-only grant",
    );
    authorized(dir.path(), &[(&client_id, "read,write")]);
    // A live connection gets the new permissions at its next command (sessions.rs has the
    // revocation side).
    before.upload(&src, "f", &no_progress()).await.unwrap();
    let after = server.client_as(client_id.clone()).await;
    after.upload(&src, "f", &no_progress()).await.unwrap();

    std::fs::write(&file, "# nobody\n").unwrap();
    let removed = server.client_as(client_id).await;
    assert!(matches!(
        removed.list("").await,
        Err(ClientError::Refused(_))
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serves_listings_and_downloads_only() {
    let server = TestServer::start_with_config(|c| c.read_only = true).await;
    server.put("f", b"x");
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("up");
    std::fs::write(&src, b"y").unwrap();
    assert_eq!(client.list("").await.unwrap().len(), 1);
    client
        .download("f", &local.path().join("f"), false, &no_progress())
        .await
        .unwrap();
    denied(client.upload(&src, "up", &no_progress()).await, "UPLOAD");
    denied(client.delete("f").await, "DELETE");
    assert_eq!(server.names(""), ["f"], "f only");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_can_shut_the_server_down_and_it_stops_as_on_ctrl_c() {
    let admin = Identity::generate().unwrap();
    let server = server_with_list(&[(&admin, "read,admin")]).await;
    let client = server.client_as(admin).await;
    client.shutdown().await.unwrap();
    // The server finishes on its own: no stop signal is sent.
    let task = server.into_task();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops after SHUTDOWN")
        .unwrap();
    assert!(client.list("").await.is_err(), "and it serves nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_refuse_with_a_reason_and_spare_the_others() {
    let server = TestServer::start_with_config(|c| {
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    let first = server.client().await;
    let second = server.client().await;
    first.list("").await.unwrap();
    second.list("").await.unwrap();
    let third = server.client().await;
    match third.list("").await {
        Err(ClientError::Refused(reason)) => {
            assert!(
                reason.contains("too many connections from 127.0.0.1"),
                "{reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    first.list("").await.unwrap();
    second.list("").await.unwrap();
    // A closed connection gives its slot back.
    first.close().await;
    let mut fourth = None;
    for _ in 0..50 {
        let c = server.client().await;
        if c.list("").await.is_ok() {
            fourth = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fourth.is_some(),
        "a freed slot is given to a new connection"
    );
    server.stop().await;

    let total = TestServer::start_with_config(|c| c.limits.max_connections = 1).await;
    let only = total.client().await;
    only.list("").await.unwrap();
    let over = total.client().await;
    match over.list("").await {
        Err(ClientError::Refused(reason)) => {
            assert!(reason.contains("limit of 1 connections"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    only.list("").await.unwrap();
    total.stop().await;
}

/// Reads a stream until it ends or fails; true if the server reset it (with `code`, if given).
async fn was_reset(recv: &mut quinn::RecvStream, code: Option<u32>) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(_)) => continue,
            Ok(None) => return false,
            Err(quinn::ReadError::Reset(c)) => return code.is_none_or(|want| c == want.into()),
            Err(_) => return code.is_none(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_never_send_a_request_are_dropped_and_others_served() {
    let server = TestServer::start_with_config(|c| {
        c.limits.request_timeout = Duration::from_millis(300);
        c.limits.max_streams = 4;
    })
    .await;
    let peer = server.raw().await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let (mut send, recv) = peer.conn.open_bi().await.unwrap();
        // One byte of a length prefix: the stream exists for the server, the request never comes.
        send.write_all(&[0]).await.unwrap();
        idle.push((send, recv));
    }
    let other = server.client().await;
    assert!(
        other.list("").await.unwrap().is_empty(),
        "another client is served meanwhile"
    );
    for (_send, mut recv) in idle {
        let reset = tokio::time::timeout(
            Duration::from_secs(10),
            was_reset(&mut recv, Some(close::TOO_SLOW)),
        );
        assert!(reset.await.expect("dropped in time"), "reset as too slow");
    }
    // With the idle streams gone, this connection can be used again.
    peer.list_root().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_is_cut_off_and_nothing_is_stored() {
    let server =
        TestServer::start_with_config(|c| c.limits.stall_timeout = Duration::from_millis(400))
            .await;
    let peer = server.raw().await;
    // A body streamed block by block, and one small enough to be received whole.
    for size in [1 << 20, 1000] {
        let (mut send, mut recv) = peer.begin_upload("slow", size).await;
        let trickle = tokio::spawn(async move {
            // A byte every 100 ms: alive, but never a block within the stall timeout.
            for _ in 0..100 {
                if send.write_all(b"x").await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        assert!(tokio::time::timeout(
            Duration::from_secs(10),
            was_reset(&mut recv, Some(close::TOO_SLOW))
        )
        .await
        .expect("cut off in time"));
        assert!(
            trickle.await.unwrap(),
            "the server stopped reading too ({size})"
        );
        assert!(!server.exists("slow"));
        assert!(server.staged().is_empty(), "the partial upload was removed");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_a_download_gives_its_transfer_slot_back() {
    let server = TestServer::start_with_config(|c| {
        c.limits.stall_timeout = Duration::from_millis(400);
        c.limits.max_transfers = 1;
    })
    .await;
    let data = random_bytes(16 * 1024 * 1024);
    server.put("big", &data);
    let peer = server.raw().await;
    let (mut recv, _) = peer.begin_download("big").await;
    // Not reading: the server blocks on flow control, then gives up. With one transfer slot,
    // another client's download can only succeed once the slot is given back.
    let other = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("big");
    let fetched = tokio::time::timeout(
        Duration::from_secs(20),
        other.download("big", &dest, false, &no_progress()),
    )
    .await
    .expect("the stalled transfer's slot is released");
    fetched.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(
        was_reset(&mut recv, Some(close::TOO_SLOW)).await,
        "the stalled one was reset"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_alpn_is_refused_and_the_server_goes_on() {
    let server = TestServer::start().await;
    let verifier = Arc::new(FingerprintVerifier::new(
        Some(server.fingerprint),
        false,
        tls::crypto_provider(),
    ));
    let mut tls_config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls_config.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let attempt = endpoint.connect(server.addr, "qft").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("answered");
    let err = result.expect_err("no common ALPN, no connection");
    assert!(err.to_string().contains("handshake"), "{err}");
    server.client().await.list("").await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_space_limits_refuse_uploads_before_any_data_moves() {
    let server = TestServer::start_with_config(|c| c.limits.max_upload = Some(1000)).await;
    let peer = server.raw().await;
    // Refused on the request alone: no Ready, so the client never sends the body.
    let r = peer
        .exchange(
            &Request::Upload {
                name: "big".into(),
                size: 1001,
            },
            &[],
        )
        .await;
    assert!(
        matches!(&r, Response::Error { code: ErrorCode::TooLarge, message } if message.contains("larger than")),
        "{r:?}"
    );
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let small = local.path().join("small");
    std::fs::write(&small, vec![1u8; 1000]).unwrap();
    client
        .upload(&small, "small", &no_progress())
        .await
        .unwrap();
    server.stop().await;

    // A reserve larger than any disk: every upload would eat into it.
    let full = TestServer::start_with_config(|c| c.limits.min_free = u64::MAX / 2).await;
    let client = full.client().await;
    match client.upload(&small, "small", &no_progress()).await {
        Err(ClientError::Remote {
            code: ErrorCode::NoSpace,
            message,
        }) => {
            assert!(
                message.starts_with("no space left on the server"),
                "{message}"
            )
        }
        other => panic!("expected no space, got {other:?}"),
    }
    assert!(!full.exists("small") && full.staged().is_empty());
    full.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_limit_is_the_servers_to_set() {
    let server = TestServer::start_with_config(|c| c.limits.max_frame = 64).await;
    let peer = server.raw().await;
    let long = "n".repeat(100);
    let r = peer.exchange(&Request::Download { name: long }, &[]).await;
    assert!(
        matches!(&r, Response::Error { code: ErrorCode::BadRequest, message } if message.contains("64-byte limit")),
        "{r:?}"
    );
    // Small requests still pass.
    peer.list_root().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_mode_validates_addresses_and_still_admits_clients() {
    let server = TestServer::start_with_config(|c| c.limits.retry = true).await;
    let client = server.client().await;
    assert!(client.list("").await.unwrap().is_empty());
    let peer = RawPeer::connect(server.addr, server.fingerprint).await;
    assert!(matches!(
        peer.exchange(&Request::Help, &[]).await,
        Response::Help { .. }
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_cannot_reach_a_server_with_a_list() {
    let listed = Identity::generate().unwrap();
    let server = server_with_list(&[(&listed, "read")]).await;
    let mut config = server.config(qft::client::Trust {
        pin: Some(server.fingerprint),
        ..Default::default()
    });
    config.identity = None;
    let outcome = match Client::connect(&config).await {
        Err(e) => Err(e),
        Ok(c) => c.list("").await.map(|_| ()),
    };
    assert!(outcome.is_err(), "an anonymous client is not admitted");
    server.stop().await;
}
