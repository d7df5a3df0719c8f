//! The server: an accept loop, a task per connection, a task per stream (one command each).
//!
//! Whatever a client does ends at most its own stream or connection: handlers return errors to
//! the spawn boundary, where they are logged in a span naming the peer and the command. Who may
//! do what is decided per connection ([`auth`]); how much any client may take, by [`limits`]
//! (enforced at the door by [`admission`]).

pub mod admission;
pub mod auth;
mod bundle;
mod connection;
mod delete;
mod delete_tree;
mod dispatch;
mod download;
mod exchange;
mod help;
pub mod limits;
mod list;
pub mod metrics;
mod mkdir;
mod rename;
mod requests;
mod rmdir;
mod share;
mod slots;
mod space;
mod stat;
#[cfg(test)]
mod tests;
mod upload;
mod walk;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::protocol::close;
use crate::tls::{self, Fingerprint, Identity, TlsSetupError};
use crate::tuning::Tuning;

/// What a server serves from: the storage contract's handle (opened by whoever configures it).
pub use crate::storage::Storage;
pub use auth::{Access, Grants, Permissions};
pub use limits::{Limits, Startups};
pub use metrics::Metrics;
pub use web::WebConfig;

use admission::Verdict;

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
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Also answer browsers (WebTransport on the same port, and the page): `serve --web`.
    pub web: Option<WebConfig>,
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
            metrics: None,
            web: None,
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
    /// The browsers' side (`--web`) could not be set up.
    #[error(transparent)]
    Web(#[from] web::WebError),
}

/// What every connection and stream task shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) storage: Storage,
    /// Who may do what, asked again for every command.
    pub(crate) grants: Grants,
    /// Applied on top of every client's permissions.
    pub(crate) mask: Permissions,
    pub(crate) limits: Limits,
    /// Transfer slots (they bound the copy buffers held at once), shared fairly.
    pub(crate) slots: slots::Slots,
    /// Set by an admin's SHUTDOWN.
    pub(crate) shutdown: Notify,
    /// What the server counts, for `--metrics`.
    pub(crate) metrics: Metrics,
    /// With `--web`: what browser sessions need.
    pub(crate) web: Option<Arc<web::Web>>,
    /// The bandwidth limit all connections share (`--bwlimit`).
    pub(crate) rate: Option<crate::rate::Limiter>,
    /// The UDP port the server listens on (what a share link's browser reaches).
    pub(crate) port: u16,
    /// The endpoint's QUIC config and the tuning in it, for connections whose route takes
    /// smaller packets ([`Context::config_for`]).
    pub(crate) quic: Option<(quinn::ServerConfig, Tuning)>,
}

impl Context {
    /// The QUIC config for a connection from `peer` whose route takes smaller packets than the
    /// endpoint's config allows ([`Tuning::for_peer`]), so that its MTU discovery starts where
    /// the path is; `None`: the endpoint's own.
    pub(crate) fn config_for(&self, peer: SocketAddr) -> Option<Arc<quinn::ServerConfig>> {
        let (base, tuning) = self.quic.as_ref()?;
        let bounded = tuning.for_peer(peer);
        if bounded == *tuning {
            return None;
        }
        let transport = self.limits.transport_with(&bounded);
        let mut config = base.clone();
        config.transport_config(Arc::new(transport));
        Some(Arc::new(config))
    }

    fn new(storage: Storage, access: Access, mask: Permissions, limits: Limits) -> Self {
        // Where a list vets keys, a client is its key for its fair share; elsewhere anyone can
        // make keys, so it is its address.
        let keyed = matches!(access, Access::Authorized(_));
        let metrics = Metrics::default();
        let rate = limits
            .bwlimit
            .map(|rate| crate::rate::Limiter::new(rate).counted(metrics.bwlimited("server")));
        Context {
            storage,
            grants: Grants::new(access),
            mask,
            slots: slots::Slots::new(&limits, keyed),
            rate,
            limits,
            shutdown: Notify::new(),
            metrics,
            web: None,
            port: 0,
            quic: None,
        }
    }

    /// The bandwidth limits a new connection's file bodies draw from (a QUIC client's or a
    /// browser's alike): the server's, shared by all, and one of the connection's own.
    pub(crate) fn paced(&self) -> Arc<[crate::rate::Limiter]> {
        let own = self.limits.bwlimit_per_connection.map(|rate| {
            crate::rate::Limiter::new(rate).counted(self.metrics.bwlimited("connection"))
        });
        self.rate.iter().cloned().chain(own).collect()
    }
}

/// What a connection passes on its way in: its place among the handshakes in progress, held
/// until the handshake ends, then a slot among the admitted connections.
#[derive(Debug)]
pub(crate) struct Gate {
    place: admission::Handshake,
    admitted: admission::Connections,
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
    /// The Prometheus endpoint, bound, if one was asked for.
    metrics: Option<std::net::TcpListener>,
    /// With `--web`: the page's TCP listener, on the endpoint's address and port.
    page: Option<std::net::TcpListener>,
}

/// How often expired partial uploads are looked for while the server runs.
const PARTIAL_SWEEP: Duration = Duration::from_secs(3600);

impl Server {
    /// Binds the endpoint; after this, clients can connect (their handshakes wait for `run`).
    pub fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let require_cert = matches!(config.access, Access::Authorized(_));
        let transport = config.limits.transport_with(&config.tuning);
        let web = match &config.web {
            Some(web) => Some(Arc::new(web::Web::new(
                web,
                &config.identity,
                &config.storage,
            )?)),
            None => None,
        };
        let mut quic = match &web {
            Some(web) => web::server_config(&config.identity, web, transport)?,
            None => tls::server_config(&config.identity, require_cert, transport)?,
        };
        // A backstop behind the handshake gate: attempts waiting for the accept loop.
        quic.max_incoming(config.limits.startups.full.max(1));
        let mask = if config.read_only {
            Permissions::READ.union(Permissions::ADMIN)
        } else {
            Permissions::ALL
        };
        // The page listens on TCP with the QUIC port's number. When any free port was asked for
        // (port 0), that number may already be taken on TCP: take another pair, a few times.
        let mut tries = 0;
        let (endpoint, page) = loop {
            let endpoint = config
                .tuning
                .endpoint(config.listen, Some(quic.clone()))
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
            let page = match config.web.as_ref().filter(|w| w.page) {
                Some(_) => match web::bind_page(&endpoint) {
                    Ok(listener) => Some(listener),
                    Err(_) if config.listen.port() == 0 && tries < 16 => {
                        tries += 1;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            break (endpoint, page);
        };
        let metrics = match config.metrics {
            Some(addr) => Some(
                metrics::bind_metrics(addr).map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let mut context = Context::new(config.storage, config.access, mask, config.limits);
        context.web = web;
        context.quic = Some((quic, config.tuning.clone()));
        context.port = endpoint.local_addr().map(|a| a.port()).unwrap_or(0);
        Ok(Server {
            endpoint,
            metrics,
            page,
            fingerprint: config.identity.fingerprint(),
            grace: config.grace,
            max_send_window: config.tuning.send_window,
            context: Arc::new(context),
        })
    }

    /// The address of the Prometheus endpoint, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
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
            metrics,
            page,
            ..
        } = self;
        // Ends with this function: the endpoint lives as long as the server runs.
        let _metrics = match metrics.map(tokio::net::TcpListener::from_std) {
            Some(Ok(listener)) => Some(AbortOnDrop(tokio::spawn(
                context.metrics.clone().serve(listener),
            ))),
            Some(Err(e)) => {
                warn!("cannot serve metrics: {e}");
                None
            }
            None => None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        if let (Some(page), Some(web)) = (page, context.web.clone()) {
            web::start_page(page, web, stop_rx.clone());
        }
        let counts = admission::Connections::new(context.limits.send_buffers, max_send_window);
        let handshakes = admission::Handshakes::default();
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
                    let ip = incoming.remote_address().ip();
                    let proven = incoming.remote_address_validated();
                    match handshakes.consider(ip, proven, &context.limits, rand::random_range(0..100)) {
                        Verdict::Proceed(place) => {
                            let gate = Gate { place, admitted: counts.clone() };
                            connections.spawn(connection::handle(incoming, context.clone(), stop_rx.clone(), gate));
                        }
                        // Costs the client one round trip and us nothing: no state, no crypto.
                        Verdict::Retry if incoming.may_retry() => {
                            context.metrics.attempt(metrics::Attempt::Retry);
                            let _ = incoming.retry();
                        }
                        Verdict::Retry | Verdict::Drop => {
                            context.metrics.attempt(metrics::Attempt::Dropped);
                            incoming.ignore();
                        }
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

/// A task that is stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
