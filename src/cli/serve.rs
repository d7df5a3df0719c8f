//! `qft serve` and `qft fingerprint`: the server's identity, its configuration from the flags,
//! binding (falling back to IPv4 where there is no IPv6), the port file for scripts, and the
//! signal that stops it.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use super::args::{FingerprintArgs, ServeArgs};
use crate::client::display::emit;
use crate::home::qft_home;
use crate::server::{Access, Server, ServerConfig, Storage, WebConfig};
use crate::storage::object::ObjectConfig;
use crate::tls::{Fingerprint, Identity, SERVER_IDENTITY_FILE};

/// Serves `args.dir` until Ctrl-C or SIGTERM.
pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let storage = open_storage(&args.dir, args.s3_endpoint.clone(), args.s3_allow_http).await?;
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Identity::from_pem_files(cert, key)?,
        _ => server_identity()?,
    };
    let access = match &args.authorized_clients {
        Some(path) => Access::Authorized(path.clone()),
        None => Access::Open,
    };
    // Fail at start, not at the first client, if the list cannot be read or has a line that
    // grants nothing: a server that silently admits fewer clients than its operator listed
    // locks people out without a word.
    let (listed, warnings) = access.check().await?;
    if let (Access::Authorized(path), false) = (&access, warnings.is_empty()) {
        anyhow::bail!(
            "{} has lines that grant nothing; fix or remove them (or comment them out with #): {}",
            path.display(),
            warnings.join("; ")
        );
    }
    let web = match args.web {
        true => Some(WebConfig {
            // Browsers pin certificates made from the kept identity's key; the user's own
            // certificate (--cert) they check themselves.
            pinned_certs: args.cert.is_none(),
            ..WebConfig::new(&qft_home().context("cannot find the qft home")?)
        }),
        false => None,
    };
    let mut config = ServerConfig {
        web,
        access,
        read_only: args.read_only,
        limits: args.limits(),
        tuning: args.tuning.tuning(),
        metrics: args.metrics,
        ..ServerConfig::new(storage, identity, args.listen)
    };
    let server = match Server::bind(config.clone()) {
        // The default "[::]" needs IPv6; on a host without it, fall back to IPv4 only.
        Err(_) if args.listen.ip().is_unspecified() && args.listen.is_ipv6() => {
            config.listen = SocketAddr::from(([0, 0, 0, 0], args.listen.port()));
            Server::bind(config.clone())?
        }
        other => other?,
    };
    let addr = server.local_addr()?;
    let fingerprint = server.fingerprint();
    match &config.access {
        Access::Open if !addr.ip().is_loopback() => tracing::warn!(
            "no --authorized-clients: anyone who can reach {addr} may list, upload, download and delete"
        ),
        Access::Authorized(path) => tracing::info!("{listed} authorized clients in {}", path.display()),
        Access::Open => {}
    }
    let host = match addr {
        a if a.ip().is_unspecified() && a.is_ipv4() => "127.0.0.1".to_string(),
        a if a.ip().is_unspecified() => "localhost".to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    emit(&format!(
        "Serving {} on {addr}\nFingerprint: {fingerprint}\nConnect with: qft connect {host}:{} --fingerprint {fingerprint}",
        config.storage,
        addr.port()
    ));
    if let Some(web) = &config.web {
        let page = format!("http://{host}:{}/", addr.port());
        emit(&format!("Web page: {page}"));
        // So that `qft share` run for this directory links to this page without being told.
        let root = crate::server::web::root_of(&config.storage);
        if let Err(e) = crate::share::remember_page(&web.home, &root, &page) {
            tracing::warn!("cannot note the page for qft share: {e}");
        }
    }
    if let Some(at) = server.metrics_addr() {
        tracing::info!("metrics on http://{at}/metrics");
        if !at.ip().is_loopback() {
            tracing::warn!(
                "metrics on {at} are served to anyone who can reach it, unauthenticated"
            );
        }
    }
    if let Some(path) = &args.port_file {
        write_port_file(path, addr.port())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    server.run(shutdown_signal()).await;
    Ok(())
}

/// A directory, or an `s3://` URL with the S3 flags (`qft serve`, and `qft share`, which must
/// see the names as the server does).
pub(super) async fn open_storage(
    dir: &Path,
    s3_endpoint: Option<String>,
    s3_allow_http: bool,
) -> anyhow::Result<Storage> {
    let text = dir.to_string_lossy();
    match ObjectConfig::parse(&text) {
        Some(config) => {
            let config = ObjectConfig {
                endpoint: s3_endpoint,
                allow_http: s3_allow_http,
                ..config?
            };
            Ok(Storage::open_object(&config).await?)
        }
        None if s3_endpoint.is_some() || s3_allow_http => {
            anyhow::bail!("--s3-endpoint and --s3-allow-http are for an s3:// URL")
        }
        None => Storage::open(dir).with_context(|| format!("cannot serve {}", dir.display())),
    }
}

/// Written whole through a rename, so a script polling for the file never reads half a number.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    use crate::fsutil::{write_atomic, Mode, Replace};
    let text = format!("{port}\n");
    write_atomic(
        path,
        text.as_bytes(),
        Replace::Yes,
        Mode::Private,
        "qft-port",
    )
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// This machine's server identity, made on first use and kept in the qft home.
pub(super) fn server_identity() -> anyhow::Result<Identity> {
    let home = qft_home().context("cannot find the qft home")?;
    Ok(Identity::load_or_create(&home.join(SERVER_IDENTITY_FILE))?)
}

/// Prints the fingerprint of the server identity, or of the certificate given.
pub(super) fn fingerprint(args: FingerprintArgs) -> anyhow::Result<()> {
    let fingerprint = match &args.cert {
        Some(cert) => {
            let pem =
                std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
            use rustls::pki_types::pem::PemObject;
            let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).map_err(|_| {
                anyhow::anyhow!("{} does not hold a PEM certificate", cert.display())
            })?;
            Fingerprint::of_certificate(&der)
                .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", cert.display()))?
        }
        None => server_identity()?.fingerprint(),
    };
    emit(&fingerprint.to_string());
    Ok(())
}
