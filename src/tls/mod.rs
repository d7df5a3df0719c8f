//! Identity and trust: who a server is ([`Identity`], [`Fingerprint`]), whom a client trusts
//! ([`KnownHosts`], [`FingerprintVerifier`]), and the quinn configurations built from them.

mod identity;
mod known_hosts;
mod verify;

use std::sync::Arc;
use std::time::Duration;

pub use identity::{BadFingerprint, Fingerprint, Identity, IdentityError};
pub use known_hosts::{KnownHost, KnownHosts};
pub use verify::{ClientKeyVerifier, FingerprintVerifier};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::protocol::ALPN;
use crate::tuning::Tuning;

/// File name of the server identity inside the qft home.
pub const SERVER_IDENTITY_FILE: &str = "server-identity.pem";
/// File name of the client identity inside the qft home.
pub const CLIENT_IDENTITY_FILE: &str = "client-identity.pem";
/// File name of the known-hosts file inside the qft home.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);

/// ring, stated explicitly, so that the choice does not depend on which crates enabled which
/// provider feature. ring's AES-GCM uses AES-NI and is fastest where the CPU has it.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: our identity, ALPN `qft/1`, client certificates asked for (and required
/// when `require_client_cert`), and the transport limits chosen by the server.
pub fn server_config(
    identity: &Identity,
    require_client_cert: bool,
    transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, TlsSetupError> {
    let provider = crypto_provider();
    let verifier = Arc::new(ClientKeyVerifier::new(
        require_client_cert,
        provider.clone(),
    ));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(|e| TlsSetupError(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsSetupError(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The fingerprint of the certificate the peer presented, if any.
pub fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    Fingerprint::of_certificate(certs.first()?).ok()
}

/// The client side: the server is checked by `verifier`; the client presents `identity`, if
/// given, so that servers with an authorized-clients list know who it is.
pub fn client_config(
    verifier: Arc<FingerprintVerifier>,
    identity: Option<&Identity>,
    tuning: &Tuning,
) -> Result<quinn::ClientConfig, TlsSetupError> {
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.certs.clone(), id.key.clone_key())
            .map_err(|e| TlsSetupError(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsSetupError(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // An interactive session may sit at the prompt for a long time; keep-alives stop the idle
    // timeout from closing it underneath the user.
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    tuning.apply(&mut transport);
    config.transport_config(Arc::new(transport));
    Ok(config)
}
