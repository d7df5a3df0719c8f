//! Transfers across a bad network: loss with reordering, a blackout, and a client that moves to
//! a new address mid-transfer (QUIC connection migration, which scp, sftp and rsync cannot do).

use std::time::Duration;

use qft::client::{Client, Trust};
use qft::tls::Identity;

use crate::relay::{Faults, Relay};
use crate::support::{no_progress, random_bytes, TestServer};

/// A client of `server` that reaches it through `relay`.
async fn client_via(server: &TestServer, relay: &Relay) -> Client {
    let mut config = server.config(Trust {
        pin: Some(server.fingerprint),
        ..Trust::default()
    });
    config.target = qft::client::Target::parse(&relay.addr.to_string()).unwrap();
    config.identity = Some(Identity::generate().unwrap());
    Client::connect(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_complete_and_verify_under_five_percent_loss_with_reordering() {
    let server = TestServer::start().await;
    let relay = Relay::start(
        server.addr,
        Faults {
            loss: 0.05,
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(8),
            ..Faults::default()
        },
    )
    .await;
    let client = client_via(&server, &relay).await;
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(1024 * 1024 + 3);
    let src = local.path().join("up");
    std::fs::write(&src, &data).unwrap();
    let up = tokio::time::timeout(
        Duration::from_secs(120),
        client.upload(&src, "f", &no_progress()),
    )
    .await
    .expect("upload finishes")
    .unwrap();
    assert_eq!(server.read("f").unwrap(), data);
    let dest = local.path().join("down");
    let down = tokio::time::timeout(
        Duration::from_secs(120),
        client.download("f", &dest, false, &no_progress()),
    )
    .await
    .expect("download finishes")
    .unwrap();
    assert_eq!(down.sha256, up.sha256);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let counts = relay.counts();
    assert!(
        counts.dropped > 20,
        "the relay really dropped packets: {counts:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_survives_a_two_second_blackout() {
    let server = TestServer::start().await;
    // Small: after a blackout quinn's default congestion control (cubic) climbs back at about
    // 1 MiB/s on this 30 ms path (measured here), so a big file would only slow the suite.
    let data = random_bytes(3 * 1024 * 1024);
    server.put("f", &data);
    // Enough delay that the transfer is still running when the lights go out.
    let relay = Relay::start(
        server.addr,
        Faults {
            delay: Duration::from_millis(15),
            ..Faults::default()
        },
    )
    .await;
    let client = std::sync::Arc::new(client_via(&server, &relay).await);
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    let progress = no_progress();
    let running = {
        let (client, dest, progress) = (client.clone(), dest.clone(), progress.clone());
        tokio::spawn(async move { client.download("f", &dest, false, &progress).await })
    };
    while progress.position() < 512 * 1024 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.set(|f| f.blackout = true);
    let at_blackout = progress.position();
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.set(|f| f.blackout = false);
    let report = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("finishes after the blackout")
        .unwrap()
        .unwrap();
    assert!(
        at_blackout < data.len() as u64,
        "the blackout fell mid-transfer"
    );
    assert_eq!(report.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(
        relay.counts().dropped > 0,
        "packets were lost in the blackout"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_moves_to_a_new_address_mid_transfer() {
    let server = TestServer::start().await;
    let data = random_bytes(12 * 1024 * 1024);
    server.put("f", &data);
    // Directly to the server (a relay would hide the move from it): the server must see the
    // client's new address and validate it, as when a laptop changes networks.
    let client = std::sync::Arc::new(server.client().await);
    let before = client.local_addr().unwrap();
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    let progress = no_progress();
    let running = {
        let (client, dest, progress) = (client.clone(), dest.clone(), progress.clone());
        tokio::spawn(async move { client.download("f", &dest, false, &progress).await })
    };
    while progress.position() == 0 {
        tokio::task::yield_now().await;
    }
    client
        .rebind(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let at_move = progress.position();
    let report = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("finishes after the move")
        .unwrap()
        .unwrap();
    assert_ne!(
        client.local_addr().unwrap().port(),
        before.port(),
        "it really moved"
    );
    assert!(
        at_move < data.len() as u64,
        "the move fell mid-transfer ({at_move} bytes in)"
    );
    assert_eq!(report.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // And the connection goes on at the new address.
    assert_eq!(client.list("").await.unwrap().len(), 1);
    server.stop().await;
}
