//! Identity and trust: who a server is ([`Identity`], [`Fingerprint`]), whom a client trusts
//! ([`KnownHosts`], [`FingerprintVerifier`]), and the quinn configurations built from them.

mod identity;
mod known_hosts;
mod verify;

use std::sync::Arc;
use std::time::Duration;

pub use identity::{BadFingerprint, Fingerprint, Identity, IdentityError};
pub use known_hosts::{KnownHost, KnownHosts};
pub use verify::FingerprintVerifier;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::protocol::ALPN;

/// File name of the server identity inside the qft home.
pub const SERVER_IDENTITY_FILE: &str = "server-identity.pem";
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

/// The server side: our identity, ALPN `qft/1`, and limits that keep one client from taking
/// more than its share.
pub fn server_config(identity: &Identity) -> Result<quinn::ServerConfig, TlsSetupError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(|e| TlsSetupError(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsSetupError(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // Every command is a bidirectional stream; unidirectional ones have no use here.
    transport.max_concurrent_uni_streams(0u8.into());
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The client side: the server must present `expected` (or anything, when `None`, for a first
/// use that the caller records).
pub fn client_config(
    verifier: Arc<FingerprintVerifier>,
) -> Result<quinn::ClientConfig, TlsSetupError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsSetupError(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // An interactive session may sit at the prompt for a long time; keep-alives stop the idle
    // timeout from closing it underneath the user.
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
