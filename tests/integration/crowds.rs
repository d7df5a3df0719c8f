//! Crowds and floods: handshakes that never finish, many honest clients behind one address, a
//! busy server that clients wait for by themselves.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use qft::client::{Client, ClientError};
use qft::server::ServerConfig;
use qft::tls::{self, FingerprintVerifier};
use qft::tuning::Tuning;
use tokio::net::UdpSocket;

use crate::shell::{stderr, BIN};
use crate::support::TestServer;

/// Sends `n` Initials to `server` from fresh sockets on `from`, each the opening a real qft
/// client makes (a valid ClientHello with qft's ALPN, so the server starts a handshake), and
/// never answers what comes back. Returns the sockets, to keep their ports taken.
async fn half_open(server: SocketAddr, from: IpAddr, n: usize) -> Vec<UdpSocket> {
    let verifier = Arc::new(FingerprintVerifier::new(
        None,
        false,
        tls::crypto_provider(),
    ));
    let config = tls::client_config(verifier, None, &Tuning::default()).unwrap();
    let mut sockets = Vec::new();
    for _ in 0..n {
        // A real client, pointed at a trap that keeps its first datagram: its Initial.
        let trap = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let connecting = endpoint
            .connect_with(config.clone(), trap.local_addr().unwrap(), "qft")
            .unwrap();
        let mut initial = vec![0u8; 65536];
        let (len, _) = trap.recv_from(&mut initial).await.unwrap();
        drop(connecting);
        endpoint.close(0u32.into(), b"");
        let socket = UdpSocket::bind((from, 0)).await.unwrap();
        socket.send_to(&initial[..len], server).await.unwrap();
        sockets.push(socket);
    }
    sockets
}

/// A client that does not wait for a busy server: the first answer is the answer.
async fn lists(server: &TestServer) -> Result<(), ClientError> {
    let client = Client::connect(&server.config(qft::client::Trust {
        pin: Some(server.fingerprint),
        ..Default::default()
    }))
    .await?;
    client.list("").await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_handshakes_do_not_lock_out_a_real_client() {
    let server = TestServer::start().await;
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    // From the client's own address: four times the old per-address limit of 16.
    let _held = half_open(server.addr, localhost, 64).await;
    tokio::time::timeout(Duration::from_secs(20), lists(&server))
        .await
        .expect("a real client is served within 20 s")
        .expect("a real client is served while the half-open handshakes wait");

    // From eight other addresses: as many as the old limit on all connections together.
    let mut held = Vec::new();
    for last in 2..=9 {
        let from: IpAddr = format!("127.0.0.{last}").parse().unwrap();
        held.push(half_open(server.addr, from, 16).await);
    }
    tokio::time::timeout(Duration::from_secs(20), lists(&server))
        .await
        .expect("a real client is served within 20 s")
        .expect("a real client is served while 128 more half-open handshakes wait");
    server.stop().await;
}

/// A server with `adjust`ed limits on its own runtime, for clients run as processes.
struct Served {
    server: TestServer,
    home: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl Served {
    fn start(adjust: impl FnOnce(&mut ServerConfig)) -> Served {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(TestServer::start_with_config(adjust));
        Served {
            server,
            home: tempfile::tempdir().unwrap(),
            _rt: rt,
        }
    }

    /// `qft connect ADDR --fingerprint FP ARGS...`, started, not waited for.
    fn spawn(&self, args: &[&str], dir: &std::path::Path) -> std::process::Child {
        Command::new(BIN)
            .env("QFT_HOME", self.home.path())
            .env_remove("RUST_LOG")
            .current_dir(dir)
            .args(["connect", &self.server.addr.to_string()])
            .args(["--fingerprint", &self.server.fingerprint.to_string()])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `count` one-shot `put`s at once, each of its own file; their outputs, in order.
    fn puts_at_once(&self, count: usize) -> Vec<Output> {
        let local = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..count)
            .map(|i| {
                let name = format!("f{i}.txt");
                std::fs::write(local.path().join(&name), format!("file {i}")).unwrap();
                self.spawn(&["put", &name], local.path())
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    }
}

#[test]
fn twenty_one_shot_clients_from_one_address_all_succeed() {
    let served = Served::start(|_| {});
    let outputs = served.puts_at_once(20);
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "client {i}: {}", stderr(out));
        assert_eq!(
            served.server.read(&format!("f{i}.txt")).unwrap(),
            format!("file {i}").as_bytes()
        );
    }
}

#[test]
fn a_busy_server_is_waited_for_and_the_client_says_so() {
    // Room for four at a time from this address, and four connections of the test's own hold
    // them for a moment: the one-shot clients meet a full server, whatever the scheduling (20
    // quick puts alone did not always overlap five deep on a busy machine).
    let served = Served::start(|c| c.limits.max_connections_per_ip = 4);
    let held: Vec<_> = served._rt.block_on(async {
        futures_util::future::join_all((0..4).map(|_| served.server.client())).await
    });
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let outputs = served.puts_at_once(20);
    release.join().unwrap();
    let mut waited = 0;
    for (i, out) in outputs.iter().enumerate() {
        let err = stderr(out);
        assert!(out.status.success(), "client {i}: {err}");
        assert_eq!(
            served.server.read(&format!("f{i}.txt")).unwrap(),
            format!("file {i}").as_bytes()
        );
        if err.contains("the server is busy (too many connections from 127.0.0.1 (the limit is 4); try again in 1 s); trying again in") {
            waited += 1;
        }
    }
    assert!(waited > 0, "some clients had to wait, and said so");
}

#[test]
fn clients_recording_servers_at_once_all_keep_their_known_hosts_lines() {
    // Eight servers, and eight `qft connect --accept-new` at once sharing one known_hosts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers: Vec<TestServer> = (0..8).map(|_| rt.block_on(TestServer::start())).collect();
    let home = tempfile::tempdir().unwrap();
    let children: Vec<_> = servers
        .iter()
        .map(|server| {
            Command::new(BIN)
                .env("QFT_HOME", home.path())
                .env_remove("RUST_LOG")
                .args(["connect", &server.addr.to_string(), "--accept-new", "list"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let known = qft::tls::KnownHosts::new(home.path().join("known_hosts"));
    for server in &servers {
        let host = format!("127.0.0.1:{}", server.addr.port());
        let found = known.lookup(&host).unwrap().map(|k| k.fingerprint);
        assert_eq!(found, Some(server.fingerprint), "{host} is recorded");
    }
    // And a byte that is not UTF-8 in another line fails nobody.
    let path = home.path().join("known_hosts");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"elsewhere:1 \xff\n");
    std::fs::write(&path, bytes).unwrap();
    let again = Command::new(BIN)
        .env("QFT_HOME", home.path())
        .args(["connect", &servers[0].addr.to_string(), "list"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    drop(servers);
}

#[test]
fn connect_bind_sends_from_the_address_asked_for() {
    // One connection per address, and 127.0.0.1 already has its one.
    let served = Served::start(|c| c.limits.max_connections_per_ip = 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt.block_on(async {
        let client = served.server.client().await;
        client.list("").await.unwrap();
        client
    });
    let local = tempfile::tempdir().unwrap();
    let out = served
        .spawn(&["--bind", "127.0.0.3", "--json", "list"], local.path())
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("busy"), "{}", stderr(&out));
    // The library's side of it.
    let client = rt.block_on(async {
        let mut config = served.server.config(qft::client::Trust {
            pin: Some(served.server.fingerprint),
            ..Default::default()
        });
        config.bind = Some("127.0.0.4:0".parse().unwrap());
        let client = Client::connect(&config).await.unwrap();
        client.list("").await.unwrap();
        client
    });
    assert_eq!(client.local_addr().unwrap().ip().to_string(), "127.0.0.4");
    let bad = served
        .spawn(&["--bind", "[::1]", "list"], local.path())
        .wait_with_output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("cannot be reached from the local address [::1]"),
        "{}",
        stderr(&bad)
    );
    drop((held, client));
}

/// How often clients of the crowd were told the server was busy.
static WAITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One client of a crowd: from its own address, it lists, uploads its own file, downloads it
/// back, and checks it byte for byte.
async fn list_put_get(
    server: &TestServer,
    i: usize,
    local: &std::path::Path,
) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let mut config = server.config(qft::client::Trust {
        pin: Some(server.fingerprint),
        ..Default::default()
    });
    config.bind = Some(format!("127.0.0.{}:0", 2 + i % 8).parse().unwrap());
    config.busy_wait = Duration::from_secs(90);
    config.on_busy = Some(|_, _| {
        WAITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let client = Client::connect(&config).await.map_err(|e| e.to_string())?;
    let progress = crate::support::no_progress();
    let fail = |what: &str, e: ClientError| format!("client {i}: {what}: {e}");
    client.list("").await.map_err(|e| fail("list", e))?;
    let data = crate::support::random_bytes(16 << 10 | i);
    let up = local.join(format!("up{i}"));
    std::fs::write(&up, &data).unwrap();
    let name = format!("c{i}.bin");
    client
        .upload(&up, &name, &progress)
        .await
        .map_err(|e| fail("put", e))?;
    let down = local.join(format!("down{i}"));
    client
        .download(&name, &down, false, &progress)
        .await
        .map_err(|e| fail("get", e))?;
    if std::fs::read(&down).unwrap() != data {
        return Err(format!("client {i}: the file came back different"));
    }
    client.close().await;
    Ok(started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_at_once_each_list_put_and_get_their_own_file() {
    const CLIENTS: usize = 200;
    // The default limits: 128 connections at once, so some of the 200 are told to wait.
    let server = std::sync::Arc::new(TestServer::start().await);
    let local = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let started = std::time::Instant::now();
    let crowd: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (server, local) = (server.clone(), local.clone());
            tokio::spawn(async move { list_put_get(&server, i, local.path()).await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for client in crowd {
        let took = tokio::time::timeout(Duration::from_secs(240), client)
            .await
            .expect("every client is done within 240 s")
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        slowest = slowest.max(took);
    }
    eprintln!(
        "{CLIENTS} clients: all verified in {:.1} s, the slowest took {:.1} s, {} waits for a busy server",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64(),
        WAITS.load(std::sync::atomic::Ordering::Relaxed)
    );
    for i in 0..CLIENTS {
        assert!(server.exists(&format!("c{i}.bin")), "c{i}.bin");
    }
}

#[test]
fn a_one_shot_command_frees_its_connection_as_it_exits() {
    // One connection at a time from this address: each command finds the server free only if
    // the one before told the server it left (a client that exits silently holds its slot
    // until the idle timeout, and the next would be told the server is busy).
    let served = Served::start(|c| c.limits.max_connections_per_ip = 1);
    let local = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let out = served
            .spawn(&["list"], local.path())
            .wait_with_output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "command {i}: {err}");
        assert!(
            !err.contains("busy"),
            "command {i} met a busy server: {err}"
        );
    }
}
