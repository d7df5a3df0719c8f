//! Trust on first use and pinning, through the library: an unknown key is refused unless the
//! user allows recording it, a changed key is refused loudly, a wrong pin is refused, and a
//! copied certificate without its private key is refused.

use std::sync::Arc;

use qft::client::{Client, ClientError, Trust, TrustError};
use qft::tls::{self, Identity, KnownHosts};

use crate::support::TestServer;

fn known_hosts() -> (tempfile::TempDir, KnownHosts) {
    let dir = tempfile::tempdir().unwrap();
    let kh = KnownHosts::new(dir.path().join("known_hosts"));
    (dir, kh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_server_is_refused_and_nothing_is_recorded() {
    let server = TestServer::start().await;
    let (_dir, kh) = known_hosts();
    let trust = Trust {
        known_hosts: Some(kh.clone()),
        ..Trust::default()
    };
    match Client::connect(&server.config(trust)).await {
        Err(ClientError::Trust(TrustError::Unknown { fingerprint, host })) => {
            assert_eq!(fingerprint, server.fingerprint);
            assert_eq!(host, server.addr.to_string());
        }
        other => panic!("expected an unknown-host refusal, got {other:?}"),
    }
    assert!(!kh.path().exists(), "a refusal records nothing");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_records_the_key_then_refuses_a_changed_one() {
    let (_dir, kh) = known_hosts();
    let trust = Trust {
        known_hosts: Some(kh.clone()),
        accept_new: true,
        ..Trust::default()
    };
    // On an address of its own: the impostor below binds the same port again, which another
    // test's server on 127.0.0.1 could have taken meanwhile.
    let own = "127.0.0.91:0".parse().unwrap();
    let first = TestServer::start_on(Identity::generate().unwrap(), own).await;
    let client = Client::connect(&first.config(trust.clone())).await.unwrap();
    assert_eq!(client.newly_recorded, Some(first.fingerprint));
    client.list("").await.unwrap();
    client.close().await;
    let host = first.target().key();
    let recorded = kh.lookup(&host).unwrap().unwrap();
    assert_eq!(recorded.fingerprint, first.fingerprint);

    // Known now: a second connection records nothing new.
    let again = Client::connect(&first.config(trust.clone())).await.unwrap();
    assert_eq!(again.newly_recorded, None);
    again.close().await;
    let (addr, old) = (first.addr, first.fingerprint);
    first.stop().await;

    // Another key at the same address: refused, even with accept_new.
    let impostor = TestServer::start_on(Identity::generate().unwrap(), addr).await;
    let err = Client::connect(&impostor.config(trust)).await.unwrap_err();
    match &err {
        ClientError::Trust(TrustError::Changed {
            known,
            presented,
            line,
            file,
            ..
        }) => {
            assert_eq!(*known, old);
            assert_eq!(*presented, impostor.fingerprint);
            assert_eq!(*line, recorded.line);
            assert_eq!(file, kh.path());
        }
        other => panic!("expected a changed-key refusal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("CHANGED") && text.contains("remove line 1"),
        "{text}"
    );
    assert!(text.contains(&old.to_string()) && text.contains(&impostor.fingerprint.to_string()));
    assert_eq!(
        kh.lookup(&host).unwrap().unwrap().fingerprint,
        old,
        "the record is not replaced"
    );
    impostor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_and_the_right_one_accepted() {
    let server = TestServer::start().await;
    let wrong = Identity::generate().unwrap().fingerprint();
    let err = Client::connect(&server.config(Trust {
        pin: Some(wrong),
        ..Trust::default()
    }))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::Trust(TrustError::PinMismatch { expected, presented, .. })
            if *expected == wrong && *presented == server.fingerprint),
        "{err:?}"
    );
    let ok = server.client().await;
    ok.list("").await.unwrap();
    server.stop().await;
}

/// Serves one fixed certificate and key, whether or not they belong together.
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_copied_the_certificate_but_lacks_the_key_is_refused() {
    let real = Identity::generate().unwrap();
    let thief = Identity::generate().unwrap();
    let provider = tls::crypto_provider();
    let key = provider
        .key_provider
        .load_private_key(thief.key.clone_key())
        .unwrap();
    // The real server's certificate (so the fingerprint matches), signed with another key.
    let forged = rustls::sign::CertifiedKey::new(real.certs.clone(), key);
    let mut tls_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(forged))));
    tls_config.alpn_protocols = vec![qft::protocol::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls_config).unwrap();
    let endpoint = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(quic)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    let handshakes = tokio::spawn(async move {
        let incoming = accepting.accept().await.unwrap();
        incoming.await.is_ok()
    });
    let trust = Trust {
        pin: Some(real.fingerprint()),
        ..Trust::default()
    };
    let target = qft::client::Target::parse(&addr.to_string()).unwrap();
    let config = qft::client::ConnectConfig {
        timeout: std::time::Duration::from_secs(5),
        ..qft::client::ConnectConfig::new(target, trust)
    };
    let err = Client::connect(&config).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(
        !handshakes.await.unwrap(),
        "the handshake must not complete"
    );
}
