//! The server: an accept loop, a task per connection, a task per stream (one command each).
//!
//! Whatever a client does ends at most its own stream or connection: handlers return errors to
//! the spawn boundary, where they are logged in a span naming the peer and the command. Who may
//! do what is decided per connection ([`auth`]); how much any client may take, by [`limits`].

pub mod auth;
mod connection;
mod delete;
mod download;
mod exchange;
mod help;
pub mod limits;
mod list;
mod slots;
#[cfg(test)]
mod tests;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::protocol::close;
use crate::tls::{self, Fingerprint, Identity, TlsSetupError};
use crate::tuning::Tuning;

/// What a server serves from: the storage contract's handle (opened by whoever configures it).
pub use crate::storage::Storage;
pub use auth::{Access, Permissions};
pub use limits::Limits;

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
    /// Who may connect and what they may do.
    pub access: Access,
    /// Serve listings and downloads only, whatever a client's permissions.
    pub read_only: bool,
    /// Connection, stream, time and size limits.
    pub limits: Limits,
    /// Congestion control, windows and packet size.
    pub tuning: Tuning,
}

impl ServerConfig {
    /// A server for `storage` as `identity` on `listen`, open to everyone, default limits.
    pub fn new(storage: Storage, identity: Identity, listen: SocketAddr) -> Self {
        ServerConfig {
            storage,
            identity,
            listen,
            grace: Duration::from_secs(5),
            access: Access::Open,
            read_only: false,
            limits: Limits::default(),
            tuning: Tuning::default(),
        }
    }
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

/// What every connection and stream task shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) storage: Storage,
    pub(crate) access: Access,
    /// Applied on top of every client's permissions.
    pub(crate) mask: Permissions,
    pub(crate) limits: Limits,
    /// Transfer slots (they bound the copy buffers held at once), shared fairly.
    pub(crate) slots: slots::Slots,
    /// Set by an admin's SHUTDOWN.
    pub(crate) shutdown: Notify,
}

impl Context {
    fn new(storage: Storage, access: Access, mask: Permissions, limits: Limits) -> Self {
        Context {
            storage,
            access,
            mask,
            slots: slots::Slots::new(&limits),
            limits,
            shutdown: Notify::new(),
        }
    }
}

/// A bound server, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    context: Arc<Context>,
    fingerprint: Fingerprint,
    grace: Duration,
    /// The most send buffer one connection gets (when few share the budget).
    max_send_window: u64,
}

/// How often expired partial uploads are looked for while the server runs.
const PARTIAL_SWEEP: Duration = Duration::from_secs(3600);

/// Rejections (handshake, then a close with the reason) in progress at once; past this, new
/// connections over the limits are refused without a reason rather than costing a handshake.
const MAX_REJECTING: usize = 32;

impl Server {
    /// Binds the endpoint; after this, clients can connect (their handshakes wait for `run`).
    pub fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let require_cert = matches!(config.access, Access::Authorized(_));
        let mut transport = config.limits.transport();
        config.tuning.apply(&mut transport);
        let quic = tls::server_config(&config.identity, require_cert, transport)?;
        let endpoint = config
            .tuning
            .endpoint(config.listen, Some(quic))
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let mask = if config.read_only {
            Permissions::READ.union(Permissions::ADMIN)
        } else {
            Permissions::ALL
        };
        Ok(Server {
            endpoint,
            fingerprint: config.identity.fingerprint(),
            grace: config.grace,
            max_send_window: config.tuning.send_window,
            context: Arc::new(Context::new(
                config.storage,
                config.access,
                mask,
                config.limits,
            )),
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

    /// Serves until `shutdown` completes (or an admin sends SHUTDOWN), then stops accepting,
    /// gives running commands the grace period to finish, and closes every connection cleanly.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            endpoint,
            context,
            grace,
            max_send_window,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let counts = limits::Connections::new(context.limits.send_buffers, max_send_window);
        let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
        let mut connections = JoinSet::new();
        // Partials are also swept at start and whenever a resumable upload begins; this covers a
        // server that runs for weeks without either.
        // The first tick is at once: what expired while the server was down goes at start.
        let mut sweep = tokio::time::interval(PARTIAL_SWEEP);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    if context.limits.retry && !incoming.remote_address_validated() {
                        // Costs the client one round trip and us nothing: no state, no crypto.
                        let _ = incoming.retry();
                        continue;
                    }
                    match counts.admit(incoming.remote_address().ip(), &context.limits) {
                        Ok(slot) => {
                            connections.spawn(connection::handle(incoming, context.clone(), stop_rx.clone(), slot));
                        }
                        Err(reason) => match rejecting.clone().try_acquire_owned() {
                            Ok(permit) => {
                                tokio::spawn(connection::reject(incoming, reason, permit));
                            }
                            Err(_) => incoming.refuse(),
                        },
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut shutdown => {
                    info!("shutting down: no new connections");
                    break;
                }
                _ = sweep.tick() => {
                    let (storage, ttl) = (context.storage.clone(), context.limits.partial_ttl);
                    tokio::spawn(async move { storage.expire_partials(ttl).await });
                }
                () = context.shutdown.notified() => {
                    info!("shutting down at an admin's request: no new connections");
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
