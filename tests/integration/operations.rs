//! For a team running a server: Prometheus metrics and JSON log lines, from the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qft::client::{Client, ConnectConfig, Target, Trust};
use qft::tls::{Fingerprint, Identity};

use crate::shell::BIN;
use crate::support::no_progress;

/// `qft serve` as a process, its stderr collected line by line.
struct Serving {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let (served, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut child = Command::new(BIN)
            .env("QFT_HOME", home.path())
            .env_remove("RUST_LOG")
            .arg("serve")
            .arg(served.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (stderr, collected) = (child.stderr.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push(line);
            }
        });
        Serving {
            child,
            lines,
            _dirs: (served, home),
        }
    }

    /// Waits for a line of stderr that `pick` finds something in.
    fn wait_for<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self.lines.lock().unwrap().iter().find_map(|l| pick(l)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no {what} in {:?}", self.lines);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address and key printed on stdout.
    fn target(&mut self) -> (SocketAddr, Fingerprint) {
        let mut out = String::new();
        let stdout = self.child.stdout.as_mut().unwrap();
        let mut reader = BufReader::new(stdout);
        let (mut addr, mut fp) = (None, None);
        while addr.is_none() || fp.is_none() {
            out.clear();
            reader.read_line(&mut out).unwrap();
            if let Some(rest) = out.strip_prefix("Serving ") {
                addr = rest
                    .rsplit(" on ")
                    .next()
                    .map(|a| a.trim().parse().unwrap());
            }
            if let Some(rest) = out.strip_prefix("Fingerprint: ") {
                fp = Some(rest.trim().parse().unwrap());
            }
        }
        (addr.unwrap(), fp.unwrap())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a server started with `--metrics 127.0.0.1:0 --log-format json` serves them.
fn metrics_address(serving: &Serving) -> SocketAddr {
    serving.wait_for("metrics address", |l| {
        let line: serde_json::Value = serde_json::from_str(l).ok()?;
        let message = line["message"].as_str()?;
        message
            .strip_prefix("metrics on http://")?
            .strip_suffix("/metrics")?
            .parse()
            .ok()
    })
}

/// `GET /metrics` over plain TCP.
fn scrape(at: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(at).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_and_json_logs_tell_what_the_server_did() {
    let mut serving = Serving::start(&["--metrics", "127.0.0.1:0", "--log-format", "json"]);
    let (addr, fingerprint) = serving.target();
    let metrics_at = metrics_address(&serving);

    let identity = Identity::generate().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("up.bin");
    std::fs::write(&file, vec![5u8; 10_000]).unwrap();
    rt.block_on(async {
        let trust = Trust {
            pin: Some(fingerprint),
            ..Trust::default()
        };
        let target = Target::parse(&addr.to_string()).unwrap();
        let config = ConnectConfig {
            identity: Some(identity.clone()),
            ..ConnectConfig::new(target, trust)
        };
        let client = Client::connect(&config).await.unwrap();
        client.upload(&file, "a.bin", &no_progress()).await.unwrap();
        let back = local.path().join("back.bin");
        client
            .download("a.bin", &back, false, &no_progress())
            .await
            .unwrap();
        client.list("").await.unwrap();
        assert!(client.delete("nope").await.is_err());
        client.close().await;
    });

    let metrics = scrape(metrics_at);
    assert_eq!(
        value(
            &metrics,
            "qft_connection_attempts_total{result=\"admitted\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "qft_commands_total{command=\"UPLOAD\",result=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "qft_commands_total{command=\"DOWNLOAD\",result=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "qft_commands_total{command=\"DELETE\",result=\"not_found\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&metrics, "qft_bytes_total{direction=\"in\"}"),
        10_000.0
    );
    assert_eq!(
        value(&metrics, "qft_bytes_total{direction=\"out\"}"),
        10_000.0
    );
    assert_eq!(
        value(
            &metrics,
            "qft_command_duration_seconds_count{command=\"LIST\"}"
        ),
        1.0
    );
    assert!(
        metrics.contains("qft_handshake_duration_seconds_bucket"),
        "{metrics}"
    );

    // Every log line is one JSON object; the upload's has everything a pipeline needs.
    let upload = serving.wait_for("the upload's log line", |l| {
        let line: serde_json::Value = serde_json::from_str(l).ok()?;
        (line["command"] == "UPLOAD" && line["result"] == "ok").then_some(line)
    });
    for field in [
        "time",
        "peer",
        "client",
        "who",
        "command",
        "name",
        "bytes",
        "result",
        "duration_ms",
    ] {
        assert!(upload.get(field).is_some(), "{field} in {upload}");
    }
    assert_eq!(upload["name"], "a.bin");
    assert_eq!(upload["bytes"], 10_000);
    assert_eq!(upload["client"], identity.fingerprint().to_string());
    assert!(upload["duration_ms"].is_f64(), "{upload}");
    let refused = serving.wait_for("the refusal's log line", |l| {
        let line: serde_json::Value = serde_json::from_str(l).ok()?;
        (line["command"] == "DELETE").then_some(line)
    });
    assert_eq!(refused["result"], "not_found", "{refused}");
    // The connection's last line says what the path did to what the server sent.
    let gone = serving.wait_for("the disconnect's log line", |l| {
        let line: serde_json::Value = serde_json::from_str(l).ok()?;
        let message = line["message"].as_str()?;
        message.starts_with("disconnected").then_some(line)
    });
    let sent = gone["sent_packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("{gone}"));
    // The download's 10,000 bytes alone take several packets.
    assert!(sent >= 8, "{gone}");
    assert!(
        gone["lost_packets"]
            .as_u64()
            .is_some_and(|lost| lost <= sent),
        "{gone}"
    );
    assert!(gone["rtt_ms"].is_f64(), "{gone}");
    for line in serving.lines.lock().unwrap().iter() {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(
            parsed["time"].is_string() && parsed["level"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn metrics_listen_on_loopback_unless_told() {
    let serving = Serving::start(&["--metrics", "0"]);
    let at: SocketAddr = serving.wait_for("metrics address", |l| {
        let at = l.split("metrics on http://").nth(1)?;
        at.split("/metrics").next()?.parse().ok()
    });
    assert_eq!(at.ip().to_string(), "127.0.0.1");
    let metrics = scrape(at);
    assert_eq!(value(&metrics, "qft_connections_open"), 0.0);
}

#[test]
fn the_systemd_unit_runs_a_command_line_this_qft_accepts_in_a_sandbox() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/qft.service"))
        .unwrap();
    let directive = |key: &str| -> Vec<&str> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    for (key, want) in [
        ("User", "qft"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/srv/qft"),
        ("Environment", "QFT_HOME=/var/lib/qft"),
        ("StateDirectory", "qft"),
    ] {
        assert_eq!(directive(key), [want], "{key}");
    }
    let exec = directive("ExecStart");
    let args: Vec<&str> = exec[0].split_whitespace().skip(1).collect();
    assert_eq!(args[0], "serve");
    // Every flag and value of the unit's command line parses (--help last: it is reached only
    // if all before it did).
    let out = Command::new(BIN)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bundled_files_are_counted_and_logged_one_by_one() {
    let mut serving = Serving::start(&["--metrics", "127.0.0.1:0", "--log-format", "json"]);
    let (addr, fingerprint) = serving.target();
    let metrics_at = metrics_address(&serving);
    let local = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut bytes = 0;
    for (dir, count) in [("put", 20), ("synced", 30)] {
        std::fs::create_dir(local.path().join(dir)).unwrap();
        for i in 0..count {
            let body = vec![b'x'; 100 + i];
            bytes += body.len();
            std::fs::write(local.path().join(format!("{dir}/f{i}")), body).unwrap();
        }
    }
    // `put -r` and `sync` up both send small files in bundles.
    for args in [
        &["put", "-r", "put"][..],
        &["sync", "synced", ":synced"][..],
    ] {
        let out = Command::new(BIN)
            .env("QFT_HOME", home.path())
            .current_dir(local.path())
            .args([
                "connect",
                &addr.to_string(),
                "--fingerprint",
                &fingerprint.to_string(),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metrics = scrape(metrics_at);
    let count = |series: &str| value(&metrics, series);
    assert_eq!(
        count("qft_commands_total{command=\"UPLOAD\",result=\"ok\"}"),
        50.0
    );
    assert_eq!(
        count("qft_commands_total{command=\"UPLOAD_BUNDLE\",result=\"ok\"}"),
        2.0
    );
    assert_eq!(count("qft_bytes_total{direction=\"in\"}"), bytes as f64);
    // Each file has its own log line, in the bundle's span.
    let last = serving.wait_for("the last file's log line", |l| {
        let line: serde_json::Value = serde_json::from_str(l).ok()?;
        (line["message"] == "stored" && line["name"] == "synced/f29").then_some(line)
    });
    assert_eq!(last["command"], "UPLOAD_BUNDLE", "{last}");
}
