//! `serve --web`: the browser's way in, on the same UDP port as qft's own clients.
//!
//! - One quinn endpoint, two ALPNs in one rustls config: `qft/1` and `h3`. rustls picks the
//!   certificate by the ALPN the client offers ([`CertByAlpn`]): qft clients get the identity's
//!   certificate, browsers the short-lived one they can pin ([`certs`]); both carry the same key.
//! - After the handshake the connection task looks at the negotiated ALPN; an `h3` connection is
//!   handed to [`session::serve`], which lets `web-transport-quinn` do the HTTP/3 SETTINGS and
//!   CONNECT exchange on our `quinn::Connection`, and then runs the qft protocol itself over the
//!   session's bidirectional streams: every stream is one qft request, answered by the same
//!   command handlers as a QUIC client's (names check, permissions, limits, verify, commit).
//! - A WebTransport session is either the whole server, with the permissions a client without a
//!   key gets ([`crate::server::Access`]), or one share link (`/s/TOKEN`), which grants what the
//!   link says and nothing else ([`crate::share`]).
//! - The page itself (an HTML file and a script, compiled in) is served over HTTP on the same
//!   port number over TCP ([`page`]): `http://localhost:PORT/` is a secure context, which
//!   WebTransport needs; remote browsers reach it through an https proxy.

pub mod certs;
mod fault;
mod page;
mod scope;
mod session;
mod streams;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::share::ShareStore;
use crate::storage::Storage;
use crate::tls::{ClientKeyVerifier, Identity};
pub use certs::WebCerts;
pub(super) use page::serve as serve_page;
pub(in crate::server) use scope::admit;
pub(crate) use scope::Scope;
pub(super) use session::serve;

/// The ALPN of HTTP/3, which WebTransport runs on.
pub const ALPN_H3: &[u8] = b"h3";

/// Unidirectional streams a browser may open: HTTP/3's control stream and the two QPACK streams,
/// with room to spare. qft's own clients never open one (and nothing reads them).
const WEB_UNI_STREAMS: u8 = 8;

/// How a server answers browsers (`serve --web`).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The server's qft home: its share links, and its browser certificates.
    pub home: PathBuf,
    /// Issue short-lived certificates for browsers from the identity's key, which browsers pin
    /// by hash. `false` (with `--cert/--key`): browsers get the identity's own certificate and
    /// check it the usual way, against their certificate authorities.
    pub pinned_certs: bool,
    /// Also serve the page over HTTP on TCP, on the same address and port.
    pub page: bool,
    /// Test-only fault: flip the byte at this offset of every download stream sent to a
    /// browser (after the server hashed it), so a test can see the page refuse the download.
    #[doc(hidden)]
    pub corrupt_downloads_at: Option<u64>,
}

impl WebConfig {
    /// Browsers pin short-lived certificates; the page is served too.
    pub fn new(home: &Path) -> Self {
        WebConfig {
            home: home.to_path_buf(),
            pinned_certs: true,
            page: true,
            corrupt_downloads_at: None,
        }
    }
}

/// What the web side of a running server holds.
#[derive(Debug)]
pub(crate) struct Web {
    /// `None`: browsers get the identity's own certificate.
    certs: Option<Arc<WebCerts>>,
    /// The links `qft share` makes, read for every session (a new or revoked one applies at
    /// once).
    shares: ShareStore,
    /// The served directory as share links name it: a link made for another is unknown here.
    root: String,
    /// The test-only fault ([`WebConfig::corrupt_downloads_at`]).
    corrupt_at: Option<u64>,
}

/// Why the web side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The browser certificates.
    #[error(transparent)]
    Certs(#[from] certs::WebCertError),
    /// rustls refused the configuration.
    #[error("cannot set up TLS for browsers: {0}")]
    Tls(String),
    /// The page's TCP port.
    #[error("cannot serve the page on TCP {addr}: {source}")]
    Page {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl Web {
    pub(super) fn new(
        config: &WebConfig,
        identity: &Identity,
        storage: &Storage,
    ) -> Result<Self, WebError> {
        let certs = match config.pinned_certs {
            true => Some(Arc::new(WebCerts::new(&config.home, identity)?)),
            false => None,
        };
        Ok(Web {
            certs,
            shares: ShareStore::new(&config.home),
            root: root_of(storage),
            corrupt_at: config.corrupt_downloads_at,
        })
    }

    /// The certificate hashes a page should pin for the next while (none: not pinned).
    fn hashes(&self) -> Result<Vec<[u8; 32]>, certs::WebCertError> {
        self.hashes_until(std::time::SystemTime::now() + certs::PERIOD)
    }

    /// The hashes of every certificate a browser may meet from now until `until` (a link's
    /// expiry); none when browsers check the server's own certificate.
    pub(crate) fn hashes_until(
        &self,
        until: std::time::SystemTime,
    ) -> Result<Vec<[u8; 32]>, certs::WebCertError> {
        match &self.certs {
            Some(certs) => certs.hashes_until(until),
            None => Ok(Vec::new()),
        }
    }

    /// The share links this server honours.
    pub(crate) fn shares(&self) -> &ShareStore {
        &self.shares
    }

    /// The served root as its share links name it.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }
}

/// The served directory as share links record it: its canonical path for a local directory.
pub fn root_of(storage: &Storage) -> String {
    match storage.local_root() {
        Some(root) => root_path(root),
        None => storage.to_string(),
    }
}

/// A local directory as share links record it.
pub fn root_path(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.to_string_lossy().into_owned()
}

/// The server's TLS config with `--web`: both ALPNs, the certificate chosen by ALPN, and client
/// certificates asked for but not required at the TLS level (browsers have none); a server with
/// an authorized-clients list still refuses a keyless qft client right after the handshake.
pub(super) fn server_config(
    identity: &Identity,
    web: &Web,
    mut transport: quinn::TransportConfig,
) -> Result<quinn::ServerConfig, WebError> {
    let tls = |e: rustls::Error| WebError::Tls(e.to_string());
    let provider = crate::tls::crypto_provider();
    let qft = CertifiedKey::from_der(identity.certs.clone(), identity.key.clone_key(), &provider)
        .map_err(tls)?;
    // Issue the first browser certificate now, so that a problem shows at start.
    if let Some(certs) = &web.certs {
        certs.current()?;
    }
    let resolver = CertByAlpn {
        qft: Arc::new(qft),
        web: web.certs.clone(),
    };
    let verifier = Arc::new(ClientKeyVerifier::new(false, provider.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![crate::protocol::ALPN.to_vec(), ALPN_H3.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(config)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    transport.max_concurrent_uni_streams(WEB_UNI_STREAMS.into());
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Picks the certificate by the ALPN a client offers.
#[derive(Debug)]
struct CertByAlpn {
    qft: Arc<CertifiedKey>,
    web: Option<Arc<WebCerts>>,
}

impl ResolvesServerCert for CertByAlpn {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let browser = hello.alpn().is_some_and(|mut a| a.any(|p| p == ALPN_H3));
        match &self.web {
            Some(certs) if browser => match certs.current() {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::warn!("no certificate for a browser: {e}");
                    None
                }
            },
            _ => Some(self.qft.clone()),
        }
    }
}

/// Whether `conn` negotiated HTTP/3, i.e. is a browser's WebTransport connection.
pub(super) fn is_browser(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .is_some_and(|p| p == ALPN_H3)
}

/// Binds the page's TCP listener on the endpoint's address and port number.
pub(super) fn bind_page(endpoint: &quinn::Endpoint) -> Result<std::net::TcpListener, WebError> {
    let addr = endpoint.local_addr().map_err(|source| WebError::Page {
        addr: "0.0.0.0:0".parse().expect("an address"),
        source,
    })?;
    let bind = || {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    bind().map_err(|source| WebError::Page { addr, source })
}

/// Serves the page from `listener` until `stop`.
pub(super) fn start_page(
    listener: std::net::TcpListener,
    web: Arc<Web>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => {
            tokio::spawn(serve_page(listener, web, port, stop));
        }
        Err(e) => tracing::warn!("cannot serve the page: {e}"),
    }
}
