//! The QUIC ceiling: how fast qft's own QUIC and TLS settings move bytes from memory to memory,
//! with no files, no protocol and (unless asked) no hashing. `bench/run` prints it beside the
//! real transfers, so a gap between the two is qft's own cost, not QUIC's.
//!
//! ```text
//! cargo run --release --example quic_ceiling -- serve 127.0.0.1:0
//! # prints: PORT FINGERPRINT
//! cargo run --release --example quic_ceiling -- send 127.0.0.1:PORT SHA256:... 1G [--sha256]
//! # prints: BYTES<TAB>SECONDS<TAB>MB/s
//! ```
//!
//! The endpoints are built by qft's library ([`qft::tls::server_config`],
//! [`qft::tls::client_config`], [`qft::tls::FingerprintVerifier`],
//! `Limits::default().transport()` and [`qft::tuning::Tuning`]), so they carry exactly the
//! transport and TLS settings that `qft serve` and `qft connect` use by default (flags given
//! to qft through `QFT_SERVE_ARGS`/`QFT_CONNECT_ARGS` do not reach it).
//!
//! One bidirectional stream per run. The sender writes a 9-byte header (the length as a
//! big-endian u64 and a flags byte), then the body from a 1 MiB memory buffer, then, with
//! `--sha256`, the body's SHA-256. The server reads it all, hashing when the flag asks, and
//! answers one byte: 1 when the body (and the hash, if any) arrived whole, 0 otherwise. The time
//! runs from opening the stream to that byte, after the handshake.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use qft::server::Limits;
use qft::tls::{self, Fingerprint, FingerprintVerifier, Identity};
use qft::tuning::Tuning;
use sha2::{Digest, Sha256};

/// Flag bit in the header: the sender appends the body's SHA-256, the server checks it.
const FLAG_SHA256: u8 = 1;
/// The sender's memory buffer, written again and again.
const BUFFER: usize = 1 << 20;

const USAGE: &str =
    "usage: quic_ceiling serve ADDR | quic_ceiling send HOST:PORT FINGERPRINT BYTES [--sha256]
BYTES takes a K, M or G suffix (powers of 1024).";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr] => serve(addr.parse().context("ADDR must be IP:PORT")?).await,
        ["send", target, fingerprint, bytes, rest @ ..] => {
            let sha256 = match rest {
                [] => false,
                ["--sha256"] => true,
                _ => bail!("{USAGE}"),
            };
            let fingerprint: Fingerprint = fingerprint.parse()?;
            send(target, fingerprint, parse_size(bytes)?, sha256).await
        }
        _ => bail!("{USAGE}"),
    }
}

/// Accepts connections until Ctrl-C; every stream is read to its end and acknowledged.
async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let identity = Identity::generate()?;
    let tuning = Tuning::default();
    let mut transport = Limits::default().transport();
    tuning.apply(&mut transport);
    let config = tls::server_config(&identity, false, transport)?;
    let endpoint = tuning.endpoint(addr, Some(config))?;
    println!(
        "{} {}",
        endpoint.local_addr()?.port(),
        identity.fingerprint()
    );
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                tokio::spawn(async move {
                    if let Err(e) = connection(incoming).await {
                        eprintln!("quic_ceiling: connection: {e:#}");
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
            Err(quinn::ConnectionError::ApplicationClosed(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        tokio::spawn(async move {
            if let Err(e) = receive(send, recv).await {
                eprintln!("quic_ceiling: stream: {e:#}");
            }
        });
    }
}

/// Reads one header, body and optional hash, discarding the body, and answers the 1-byte ack.
async fn receive(mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> anyhow::Result<()> {
    let mut header = [0u8; 9];
    recv.read_exact(&mut header).await?;
    let len = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
    let mut hasher = (header[8] & FLAG_SHA256 != 0).then(Sha256::new);
    let mut left = len;
    while left > 0 {
        let max = usize::try_from(left).unwrap_or(usize::MAX);
        let Some(chunk) = recv.read_chunk(max, true).await? else {
            break;
        };
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk.bytes);
        }
        left -= chunk.bytes.len() as u64;
    }
    let mut whole = left == 0;
    if let Some(h) = hasher {
        let mut sent = [0u8; 32];
        recv.read_exact(&mut sent).await?;
        whole &= h.finalize().as_slice() == sent;
    }
    send.write_all(&[u8::from(whole)]).await?;
    send.finish()?;
    // Keep the stream until the ack is delivered: the sender's clock stops on it.
    let _ = send.stopped().await;
    Ok(())
}

/// Sends `bytes` from memory on one stream and prints `BYTES<TAB>SECONDS<TAB>MB/s`.
async fn send(
    target: &str,
    fingerprint: Fingerprint,
    bytes: u64,
    sha256: bool,
) -> anyhow::Result<()> {
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} has no address"))?;
    let verifier = Arc::new(FingerprintVerifier::new(
        Some(fingerprint),
        false,
        tls::crypto_provider(),
    ));
    // A client identity, as `qft connect` presents, so the handshake is the same one.
    let identity = Identity::generate()?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let tuning = Tuning::default();
    let mut endpoint = tuning.endpoint(bind, None)?;
    endpoint.set_default_client_config(tls::client_config(verifier, Some(&identity), &tuning)?);
    let conn = endpoint.connect(addr, "qft")?.await?;

    let buffer = pseudo_random(BUFFER);
    let start = Instant::now();
    let (mut tx, mut rx) = conn.open_bi().await?;
    let mut header = [0u8; 9];
    header[..8].copy_from_slice(&bytes.to_be_bytes());
    header[8] = if sha256 { FLAG_SHA256 } else { 0 };
    tx.write_all(&header).await?;
    let mut hasher = sha256.then(Sha256::new);
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(BUFFER, |l| l.min(BUFFER));
        if let Some(h) = hasher.as_mut() {
            h.update(&buffer[..n]);
        }
        tx.write_all(&buffer[..n]).await?;
        left -= n as u64;
    }
    if let Some(h) = hasher {
        tx.write_all(&h.finalize()).await?;
    }
    tx.finish()?;
    let mut ack = [0u8; 1];
    rx.read_exact(&mut ack).await?;
    let seconds = start.elapsed().as_secs_f64();
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    if ack[0] != 1 {
        bail!("the server did not receive the body whole (ack {})", ack[0]);
    }
    println!(
        "{bytes}\t{seconds:.6}\t{:.1}",
        bytes as f64 / 1e6 / seconds.max(1e-9)
    );
    Ok(())
}

/// Incompressible bytes (xorshift), so nothing on the path can take a shortcut.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `1073741824`, `64M`, `1G`, `512K` (powers of 1024).
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let bad = || anyhow::anyhow!("'{text}' is not a size like 1048576, 64M or 1G");
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}
