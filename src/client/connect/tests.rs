use super::*;

#[test]
fn targets_parse_in_every_form() {
    let t = |s: &str| Target::parse(s).map(|t| (t.host, t.port));
    assert_eq!(t("example.org:99").unwrap(), ("example.org".into(), 99));
    assert_eq!(
        t("Example.ORG").unwrap(),
        ("example.org".into(), DEFAULT_PORT)
    );
    assert_eq!(t("[::1]:5000").unwrap(), ("::1".into(), 5000));
    assert_eq!(t("[::1]").unwrap(), ("::1".into(), DEFAULT_PORT));
    assert_eq!(t("::1").unwrap(), ("::1".into(), DEFAULT_PORT));
    assert_eq!(Target::parse("[::1]:7").unwrap().key(), "[::1]:7");
    let user = Target::parse("ann@files.example:4433")
        .unwrap_err()
        .to_string();
    assert!(
        user.contains("no user names") && user.contains("'files.example:4433'"),
        "{user}"
    );
    for bad in ["", ":80", "host:", "host:99999", "[::1", "[::1]x", "a b:1"] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_tried_in_order_until_one_answers() {
    use crate::server::{Server, ServerConfig};
    let dir = tempfile::tempdir().unwrap();
    let identity = crate::tls::Identity::generate().unwrap();
    let storage = crate::server::Storage::open(dir.path()).unwrap();
    let server = Server::bind(ServerConfig::new(
        storage,
        identity,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap();
    let (live, fingerprint) = (server.local_addr().unwrap(), server.fingerprint());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    // A port nobody answers on (bound, then released).
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = Target::parse("several.example:4433").unwrap();
    let trust = Trust {
        pin: Some(fingerprint),
        ..Trust::default()
    };
    let config = |trust: &Trust, timeout: Duration| ConnectConfig {
        timeout,
        ..ConnectConfig::new(target.clone(), trust.clone())
    };
    let short = Duration::from_millis(500);
    // A generous timeout: the dead first address must not be allowed all of it.
    let started = std::time::Instant::now();
    let (_, conn, _) = connect_any(&[dead, live], &config(&trust, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        conn.remote_address(),
        live,
        "the second address, after the first gave nothing"
    );
    conn.close(0u32.into(), b"");

    match connect_any(&[dead], &config(&trust, short)).await {
        Err(ClientError::Unreachable { addr, .. }) => assert_eq!(addr, dead),
        other => panic!("expected unreachable, got {:?}", other.map(|_| ())),
    }
    // A wrong key at the first address is final: the next one is not tried.
    let wrong = Trust {
        pin: Some(crate::tls::Identity::generate().unwrap().fingerprint()),
        ..Trust::default()
    };
    let refused = connect_any(&[live, dead], &config(&wrong, short)).await;
    assert!(matches!(
        refused,
        Err(ClientError::Trust(TrustError::PinMismatch { .. }))
    ));
    let _ = stop.send(());
    serving.await.unwrap();
}
