//! The memory-to-memory stream that `quic_ceiling` and `quinn_reference` both speak, so their
//! figures differ only in how the endpoints are set up, never in what moves over them.
//!
//! One bidirectional stream per run. The sender writes a 9-byte header (the length as a
//! big-endian u64 and a flags byte), then the body from a 1 MiB memory buffer, then, with
//! SHA-256, the body's digest. The receiver reads it all, hashing when the flag asks, and
//! answers one byte: 1 when the body (and the digest, if any) arrived whole, 0 otherwise. The
//! sender's clock runs from opening the stream to that byte, after the handshake.
//!
//! Both ends print the connection's counters when it ends (see [`stats_line`]): datagrams per
//! UDP system call is the GSO/GRO batch, and lost packets show a controller overrunning the path.

use std::time::Instant;

use anyhow::bail;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Flag bit in the header: the sender appends the body's SHA-256, the receiver checks it.
pub const FLAG_SHA256: u8 = 1;
/// The sender's memory buffer, written again and again.
pub const BUFFER: usize = 1 << 20;
/// Bytes handed to a hashing thread at once: qft's transfer block (`transfer::BLOCK`), so one
/// hand-off per 256 KiB as in qft, not one per packet.
const HASH_BLOCK: usize = 256 << 10;

/// Where SHA-256 runs, when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// No hashing: the transport alone.
    Off,
    /// On the task that moves the stream, between reads or writes.
    Inline,
    /// On a thread of its own, fed 256 KiB blocks through a queue, as qft's transfer does.
    Thread,
}

/// A SHA-256 running either inline or on its own thread.
enum Hasher {
    Off,
    Inline(Sha256),
    Thread {
        queue: mpsc::Sender<Vec<Bytes>>,
        pending: Vec<Bytes>,
        pending_len: usize,
        thread: std::thread::JoinHandle<Sha256>,
    },
}

impl Hasher {
    fn new(hashing: Hashing) -> Self {
        match hashing {
            Hashing::Off => Hasher::Off,
            Hashing::Inline => Hasher::Inline(Sha256::new()),
            Hashing::Thread => {
                let (queue, mut blocks) = mpsc::channel::<Vec<Bytes>>(4);
                let thread = std::thread::Builder::new()
                    .name("sha256".into())
                    .spawn(move || {
                        let mut h = Sha256::new();
                        while let Some(block) = blocks.blocking_recv() {
                            for piece in &block {
                                h.update(piece);
                            }
                        }
                        h
                    })
                    .expect("spawn the hashing thread");
                Hasher::Thread {
                    queue,
                    pending: Vec::new(),
                    pending_len: 0,
                    thread,
                }
            }
        }
    }

    async fn update(&mut self, piece: &Bytes) {
        match self {
            Hasher::Off => {}
            Hasher::Inline(h) => h.update(piece),
            Hasher::Thread {
                queue,
                pending,
                pending_len,
                ..
            } => {
                pending.push(piece.clone());
                *pending_len += piece.len();
                if *pending_len >= HASH_BLOCK {
                    *pending_len = 0;
                    let _ = queue.send(std::mem::take(pending)).await;
                }
            }
        }
    }

    async fn finish(self) -> Option<[u8; 32]> {
        match self {
            Hasher::Off => None,
            Hasher::Inline(h) => Some(h.finalize().into()),
            Hasher::Thread {
                queue,
                pending,
                thread,
                ..
            } => {
                if !pending.is_empty() {
                    let _ = queue.send(pending).await;
                }
                drop(queue);
                let h = tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .expect("join")
                    .expect("the hashing thread panicked");
                Some(h.finalize().into())
            }
        }
    }
}

/// Reads one header, body and optional digest, discarding the body, and answers the 1-byte ack.
pub async fn receive(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    hashing: Hashing,
) -> anyhow::Result<()> {
    let mut header = [0u8; 9];
    recv.read_exact(&mut header).await?;
    let len = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
    let mut hasher = if header[8] & FLAG_SHA256 != 0 {
        // The sender asked for a digest; where it is computed is this end's choice.
        Hasher::new(if hashing == Hashing::Off {
            Hashing::Inline
        } else {
            hashing
        })
    } else {
        Hasher::Off
    };
    let mut left = len;
    while left > 0 {
        let max = usize::try_from(left).unwrap_or(usize::MAX);
        let Some(chunk) = recv.read_chunk(max, true).await? else {
            break;
        };
        hasher.update(&chunk.bytes).await;
        left -= chunk.bytes.len() as u64;
    }
    let mut whole = left == 0;
    if let Some(digest) = hasher.finish().await {
        let mut sent = [0u8; 32];
        recv.read_exact(&mut sent).await?;
        whole &= digest == sent;
    }
    send.write_all(&[u8::from(whole)]).await?;
    send.finish()?;
    // Keep the stream until the ack is delivered: the sender's clock stops on it.
    let _ = send.stopped().await;
    Ok(())
}

/// Sends `bytes` from memory on one new stream of `conn` and returns the seconds from opening
/// the stream to the receiver's acknowledgement. With `zero_copy` the buffer goes to quinn as
/// shared [`Bytes`] (`write_all_chunks`, as qft's transfer does); without, `write_all` copies it
/// into quinn's send buffer.
pub async fn send(
    conn: &quinn::Connection,
    bytes: u64,
    hashing: Hashing,
    zero_copy: bool,
) -> anyhow::Result<f64> {
    let buffer = Bytes::from(pseudo_random(BUFFER));
    let start = Instant::now();
    let (mut tx, mut rx) = conn.open_bi().await?;
    let mut header = [0u8; 9];
    header[..8].copy_from_slice(&bytes.to_be_bytes());
    header[8] = if hashing == Hashing::Off {
        0
    } else {
        FLAG_SHA256
    };
    tx.write_all(&header).await?;
    let mut hasher = Hasher::new(hashing);
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(BUFFER, |l| l.min(BUFFER));
        let piece = buffer.slice(..n);
        hasher.update(&piece).await;
        if zero_copy {
            tx.write_all_chunks(&mut [piece]).await?;
        } else {
            tx.write_all(&piece).await?;
        }
        left -= n as u64;
    }
    if let Some(digest) = hasher.finish().await {
        tx.write_all(&digest).await?;
    }
    tx.finish()?;
    let mut ack = [0u8; 1];
    rx.read_exact(&mut ack).await?;
    let seconds = start.elapsed().as_secs_f64();
    if ack[0] != 1 {
        bail!("the receiver did not get the body whole (ack {})", ack[0]);
    }
    Ok(seconds)
}

/// The sender's result line: `BYTES<TAB>SECONDS<TAB>MB/s<TAB>` then [`stats_line`]'s fields.
pub fn result_line(bytes: u64, seconds: f64, stats: &quinn::ConnectionStats) -> String {
    format!(
        "{bytes}\t{seconds:.6}\t{:.1}\t{}",
        bytes as f64 / 1e6 / seconds.max(1e-9),
        stats_line(stats)
    )
}

/// A connection's counters as `key=value` fields: UDP datagrams and system calls each way (their
/// ratio is the GSO/GRO batch), packets sent and lost, congestion events, the path's MTU, ACK
/// frames each way, MTU probes sent and lost.
pub fn stats_line(s: &quinn::ConnectionStats) -> String {
    let per = |d: u64, io: u64| d as f64 / io.max(1) as f64;
    format!(
        "tx_dgrams={} tx_ios={} tx_batch={:.2} rx_dgrams={} rx_ios={} rx_batch={:.2} \
         sent_pkts={} lost_pkts={} cong_events={} mtu={} acks_tx={} acks_rx={} \
         probes_tx={} probes_lost={}",
        s.udp_tx.datagrams,
        s.udp_tx.ios,
        per(s.udp_tx.datagrams, s.udp_tx.ios),
        s.udp_rx.datagrams,
        s.udp_rx.ios,
        per(s.udp_rx.datagrams, s.udp_rx.ios),
        s.path.sent_packets,
        s.path.lost_packets,
        s.path.congestion_events,
        s.path.current_mtu,
        s.frame_tx.acks,
        s.frame_rx.acks,
        s.path.sent_plpmtud_probes,
        s.path.lost_plpmtud_probes,
    )
}

/// Incompressible bytes (xorshift), so nothing on the path can take a shortcut.
pub fn pseudo_random(len: usize) -> Vec<u8> {
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
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
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
