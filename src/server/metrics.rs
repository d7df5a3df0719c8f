//! What a server counts, and the Prometheus endpoint that shows it (`qft serve --metrics ADDR`).
//!
//! The counts are kept whether or not anything scrapes them (an atomic add each). The endpoint
//! answers `GET /metrics` with the OpenMetrics text format, which Prometheus reads; it is plain
//! HTTP without authentication, so it listens on loopback unless told otherwise.
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `qft_connections_open` | | connections admitted and not yet closed |
//! | `qft_handshakes_in_progress` | | handshakes started and not yet finished |
//! | `qft_connection_attempts_total` | `result` | every attempt, by how it ended: `admitted`, `busy`, `not_authorized`, `handshake_failed`, `handshake_timeout`, `retry` (asked to prove its address), `dropped` (early drop) |
//! | `qft_commands_total` | `command`, `result` | commands by kind and result: `ok`, `aborted`, or the refusal's code (`not_found`, `permission_denied`...) |
//! | `qft_bytes_total` | `direction` | file bytes received (`in`, uploads) and sent (`out`, downloads) |
//! | `qft_verification_failures_total` | | uploads whose SHA-256 did not match the client's |
//! | `qft_resumes_total` | `command` | transfers that continued a partial: an upload the server held part of; a download the client offered a partial for |
//! | `qft_command_duration_seconds` | `command` | histogram of command durations |
//! | `qft_handshake_duration_seconds` | | histogram of handshake durations |
//! | `qft_bwlimited_bytes_total` | `limit` | file bytes paced by a bandwidth limit: `server` (`--bwlimit`), `connection` (`--bwlimit-per-connection`), browsers' transfers included |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::protocol::ErrorCode;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandResult {
    command: &'static str,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

type Durations = Family<CommandLabel, Histogram, fn() -> Histogram>;

/// Durations from a millisecond to about a minute, each bucket four times the one before.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

/// The server's counts; clones share them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    open: Gauge,
    handshaking: Gauge,
    attempts: Family<ResultLabel, Counter>,
    commands: Family<CommandResult, Counter>,
    bytes: Family<Direction, Counter>,
    verification_failures: Counter,
    resumes: Family<CommandLabel, Counter>,
    durations: Durations,
    handshakes: Histogram,
    bwlimited: Family<LimitLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let open = Gauge::default();
        let handshaking = Gauge::default();
        let attempts = Family::<ResultLabel, Counter>::default();
        let commands = Family::<CommandResult, Counter>::default();
        let bytes = Family::<Direction, Counter>::default();
        let verification_failures = Counter::default();
        let resumes = Family::<CommandLabel, Counter>::default();
        let durations: Durations = Family::new_with_constructor(duration_buckets);
        let handshakes = duration_buckets();
        let bwlimited = Family::<LimitLabel, Counter>::default();
        let r = &mut registry;
        r.register(
            "qft_connections_open",
            "Connections admitted and not yet closed",
            open.clone(),
        );
        r.register(
            "qft_handshakes_in_progress",
            "Handshakes started and not yet finished",
            handshaking.clone(),
        );
        r.register(
            "qft_connection_attempts",
            "Connection attempts by how they ended",
            attempts.clone(),
        );
        r.register(
            "qft_commands",
            "Commands by kind and result",
            commands.clone(),
        );
        r.register("qft_bytes", "File bytes received and sent", bytes.clone());
        r.register(
            "qft_verification_failures",
            "Uploads whose SHA-256 did not match",
            verification_failures.clone(),
        );
        r.register(
            "qft_resumes",
            "Transfers that continued a partial",
            resumes.clone(),
        );
        r.register(
            "qft_command_duration_seconds",
            "How long commands took",
            durations.clone(),
        );
        r.register(
            "qft_handshake_duration_seconds",
            "How long handshakes took",
            handshakes.clone(),
        );
        r.register(
            "qft_bwlimited_bytes",
            "File bytes paced by a bandwidth limit",
            bwlimited.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            open,
            handshaking,
            attempts,
            commands,
            bytes,
            verification_failures,
            resumes,
            durations,
            handshakes,
            bwlimited,
        }
    }
}

impl Metrics {
    /// The count of bytes a bandwidth limit (`server` or `connection`) has paced.
    pub(crate) fn bwlimited(&self, limit: &'static str) -> Counter {
        self.bwlimited.get_or_create(&LimitLabel { limit }).clone()
    }
}

/// How a connection attempt ended, for `qft_connection_attempts_total`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attempt {
    Admitted,
    Busy,
    NotAuthorized,
    HandshakeFailed,
    HandshakeTimeout,
    Retry,
    Dropped,
}

impl Attempt {
    fn label(self) -> &'static str {
        match self {
            Attempt::Admitted => "admitted",
            Attempt::Busy => "busy",
            Attempt::NotAuthorized => "not_authorized",
            Attempt::HandshakeFailed => "handshake_failed",
            Attempt::HandshakeTimeout => "handshake_timeout",
            Attempt::Retry => "retry",
            Attempt::Dropped => "dropped",
        }
    }
}

/// How a command ended, for `qft_commands_total` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Done; this many file bytes moved.
    Ok(u64),
    /// Refused with this code.
    Refused(ErrorCode),
    /// Cut off mid-way.
    Aborted,
}

impl Ended {
    /// `ok`, `aborted`, or the refusal's code in snake case (`not_found`).
    pub(crate) fn label(self) -> String {
        match self {
            Ended::Ok(_) => "ok".into(),
            Ended::Aborted => "aborted".into(),
            Ended::Refused(ErrorCode::Other(n)) => format!("code_{n}"),
            Ended::Refused(code) => snake(&format!("{code:?}")),
        }
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl Metrics {
    /// A connection attempt ended as `attempt`.
    pub(crate) fn attempt(&self, attempt: Attempt) {
        self.attempts
            .get_or_create(&ResultLabel {
                result: attempt.label(),
            })
            .inc();
    }

    /// A handshake started; the guard marks its end.
    pub(crate) fn handshake(&self) -> HandshakeTimer {
        self.handshaking.inc();
        HandshakeTimer {
            metrics: self.clone(),
            started: std::time::Instant::now(),
        }
    }

    /// A connection was admitted; the guard marks its close.
    pub(crate) fn open(&self) -> OpenConnection {
        self.attempt(Attempt::Admitted);
        self.open.inc();
        OpenConnection {
            metrics: self.clone(),
        }
    }

    /// A command `command` ended as `ended` after `took`. `bytes_in` says which way its bytes
    /// went (uploads in, downloads out); `resumed` whether it continued a partial.
    pub(crate) fn command(
        &self,
        command: &'static str,
        ended: Ended,
        took: Duration,
        bytes_in: Option<bool>,
        resumed: bool,
    ) {
        self.commands
            .get_or_create(&CommandResult {
                command,
                result: ended.label(),
            })
            .inc();
        self.durations
            .get_or_create(&CommandLabel { command })
            .observe(took.as_secs_f64());
        match ended {
            Ended::Ok(bytes) => {
                if let Some(inward) = bytes_in {
                    let direction = if inward { "in" } else { "out" };
                    self.bytes
                        .get_or_create(&Direction { direction })
                        .inc_by(bytes);
                }
                if resumed {
                    self.resumes.get_or_create(&CommandLabel { command }).inc();
                }
            }
            Ended::Refused(ErrorCode::HashMismatch) => {
                self.verification_failures.inc();
            }
            _ => {}
        }
    }

    /// The OpenMetrics text of every count.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Serves `GET /metrics` on `listener` until dropped (the server's task ends it).
    pub(crate) async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = self.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), metrics.answer(stream)).await;
            });
        }
    }

    /// One HTTP/1.1 exchange: a request of at most 8 KiB, one response, close.
    async fn answer(&self, mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || request.len() + n > 8192 {
                return Ok(());
            }
            request.extend_from_slice(&buf[..n]);
        }
        let line = request.split(|&b| b == b'\r').next().unwrap_or(&[]);
        let (status, kind, body) = match line {
            b"GET /metrics HTTP/1.1" | b"GET /metrics HTTP/1.0" => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.render(),
            ),
            _ => ("404 Not Found", "text/plain", "try GET /metrics\n".into()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    }
}

/// A handshake in progress, for the gauge and the histogram.
#[derive(Debug)]
pub(crate) struct HandshakeTimer {
    metrics: Metrics,
    started: std::time::Instant,
}

impl HandshakeTimer {
    /// The handshake finished (however it ended).
    pub(crate) fn done(self) {}
}

impl Drop for HandshakeTimer {
    fn drop(&mut self) {
        self.metrics.handshaking.dec();
        self.metrics
            .handshakes
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// An admitted connection, for the gauge.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    metrics: Metrics,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.open.dec();
    }
}

/// Binds the metrics endpoint: `ADDR:PORT` as given, or a bare port on loopback.
pub fn bind_metrics(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_prometheus_reads() {
        let m = Metrics::default();
        let conn = m.open();
        m.attempt(Attempt::Busy);
        m.command(
            "UPLOAD",
            Ended::Ok(1000),
            Duration::from_millis(3),
            Some(true),
            true,
        );
        m.command(
            "DOWNLOAD",
            Ended::Ok(50),
            Duration::from_millis(3),
            Some(false),
            false,
        );
        m.command(
            "UPLOAD",
            Ended::Refused(ErrorCode::HashMismatch),
            Duration::from_millis(3),
            Some(true),
            false,
        );
        m.command(
            "LIST",
            Ended::Refused(ErrorCode::NotFound),
            Duration::ZERO,
            None,
            false,
        );
        let text = m.render();
        for line in [
            "qft_connections_open 1",
            "qft_connection_attempts_total{result=\"admitted\"} 1",
            "qft_connection_attempts_total{result=\"busy\"} 1",
            "qft_commands_total{command=\"UPLOAD\",result=\"ok\"} 1",
            "qft_commands_total{command=\"UPLOAD\",result=\"hash_mismatch\"} 1",
            "qft_commands_total{command=\"LIST\",result=\"not_found\"} 1",
            "qft_bytes_total{direction=\"in\"} 1000",
            "qft_bytes_total{direction=\"out\"} 50",
            "qft_verification_failures_total 1",
            "qft_resumes_total{command=\"UPLOAD\"} 1",
            "qft_command_duration_seconds_count{command=\"UPLOAD\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        drop(conn);
        assert!(m.render().lines().any(|l| l == "qft_connections_open 0"));
    }
}
