//! Plain quinn, as its own examples set it up: the yardstick for qft's QUIC ceiling.
//!
//! ```text
//! cargo run --release --example quinn_reference -- serve 127.0.0.1:0
//! # prints: PORT CERT (the server's self-signed certificate, base64 DER)
//! cargo run --release --example quinn_reference -- send 127.0.0.1:PORT CERT 1G [--sha256]
//! # prints: BYTES<TAB>SECONDS<TAB>MB/s<TAB>counters
//! ```
//!
//! Nothing of qft's is used: `quinn::Endpoint::server`/`client` on a plain UDP socket (the
//! system's socket buffers), quinn's default `TransportConfig` (cubic, 1.25 MB stream window,
//! MTU discovery up to 1452 bytes, GSO on), rustls with ring and a certificate from rcgen, and
//! one current-thread tokio runtime per process: client and server are separate processes, so
//! each side is one thread and `taskset` can put them on separate CPUs. `--sha256` hashes
//! inline on that one thread at both ends. The stream and the timing are those of
//! `quic_ceiling` (`examples/membench`), so the two compare directly.

#[path = "membench/mod.rs"]
#[allow(dead_code)] // the options of quic_ceiling this plain reference does not take
mod membench;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::Engine;
use membench::Hashing;

const USAGE: &str =
    "usage: quinn_reference serve ADDR | quinn_reference send HOST:PORT CERT BYTES [--sha256]
BYTES takes a K, M or G suffix (powers of 1024).";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr] => serve(addr.parse().context("ADDR must be IP:PORT")?).await,
        ["send", target, cert, bytes, rest @ ..] => {
            let hashing = match rest {
                [] => Hashing::Off,
                ["--sha256"] => Hashing::Inline,
                _ => bail!("{USAGE}"),
            };
            send(target, cert, membench::parse_size(bytes)?, hashing).await
        }
        _ => bail!("{USAGE}"),
    }
}

/// Accepts connections until Ctrl-C; every stream is read to its end and acknowledged.
async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    let config = quinn::ServerConfig::with_single_cert(vec![der.clone()], key.into())?;
    let endpoint = quinn::Endpoint::server(config, addr)?;
    println!(
        "{} {}",
        endpoint.local_addr()?.port(),
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                tokio::spawn(async move {
                    if let Err(e) = connection(incoming).await {
                        eprintln!("quinn_reference: connection: {e:#}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    endpoint.close(0u32.into(), b"bye");
    endpoint.wait_idle().await;
    Ok(())
}

async fn connection(incoming: quinn::Incoming) -> anyhow::Result<()> {
    let conn = incoming.await?;
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(stream) => stream,
            Err(quinn::ConnectionError::ApplicationClosed(_)) => break,
            Err(e) => return Err(e.into()),
        };
        tokio::spawn(async move {
            if let Err(e) = membench::receive(send, recv, Hashing::Inline).await {
                eprintln!("quinn_reference: stream: {e:#}");
            }
        });
    }
    eprintln!("server\t{}", membench::stats_line(&conn.stats()));
    Ok(())
}

/// Sends `bytes` from memory on one stream and prints the result line.
async fn send(target: &str, cert: &str, bytes: u64, hashing: Hashing) -> anyhow::Result<()> {
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} has no address"))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert)
        .context("CERT must be the base64 the server printed")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into())?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(bind)?;
    endpoint.set_default_client_config(quinn::ClientConfig::with_root_certificates(Arc::new(
        roots,
    ))?);
    let conn = endpoint.connect(addr, "localhost")?.await?;
    let seconds = membench::send(&conn, bytes, hashing, false).await?;
    let stats = conn.stats();
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    println!("{}", membench::result_line(bytes, seconds, &stats));
    Ok(())
}
