//! The server: an accept loop, a task per connection, a task per stream (one command each).
//!
//! Whatever a client does ends at most its own stream or connection: handlers return errors to
//! the spawn boundary, where they are logged in a span naming the peer and the command.

mod connection;
mod delete;
mod download;
mod help;
mod list;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::protocol::close;
use crate::storage::Storage;
use crate::tls::{self, Fingerprint, Identity, TlsSetupError};

/// How long a new stream may take to send its request before it is dropped: a peer's
/// keep-alives reset QUIC's idle timer, so the server needs its own deadline.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The served directory.
    pub storage: Storage,
    /// Who the server is.
    pub identity: Identity,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// On shutdown, how long running commands may take to finish.
    pub grace: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// TLS or QUIC configuration failed.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound server, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    storage: Storage,
    fingerprint: Fingerprint,
    grace: Duration,
}

impl Server {
    /// Binds the endpoint; after this, clients can connect (their handshakes wait for `run`).
    pub fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let quic = tls::server_config(&config.identity)?;
        let endpoint =
            quinn::Endpoint::server(quic, config.listen).map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Server {
            endpoint,
            storage: config.storage,
            fingerprint: config.identity.fingerprint(),
            grace: config.grace,
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The fingerprint clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Serves until `shutdown` completes, then stops accepting, gives running commands the grace
    /// period to finish, and closes every connection cleanly.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            endpoint,
            storage,
            grace,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    connections.spawn(connection::handle(incoming, storage.clone(), stop_rx.clone()));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut shutdown => {
                    info!("shutting down: no new connections");
                    break;
                }
            }
        }
        // Refuse new connections while the old ones drain.
        endpoint.set_server_config(None);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = connections.len(),
                "commands still running after {grace:?}; closing anyway"
            );
            connections.abort_all();
        }
        endpoint.close(close::NORMAL.into(), b"server shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        info!("server stopped");
    }
}
