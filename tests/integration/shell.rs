//! The `qft` binary pointed at an in-process server: a [`TestServer`] (or a scripted fake one)
//! on its own runtime, a client home and a working directory, all in temp dirs.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qft::protocol::{read_frame, Request};
use qft::tls::{self, Fingerprint, Identity};
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::support::TestServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_qft");

/// A server and a place to run the client from.
pub struct Shell {
    /// `<tmp>/home` is the client's QFT_HOME, `<tmp>/local` its working directory.
    pub tmp: TempDir,
    pub addr: SocketAddr,
    pub fingerprint: Fingerprint,
    /// The real server, when there is one (not for a fake).
    pub server: Option<TestServer>,
    /// Declared last: dropped last, so the server's tasks outlive everything above.
    _rt: Runtime,
}

impl Shell {
    /// A real qft server serving an empty temp dir.
    pub fn start() -> Shell {
        let rt = Runtime::new().unwrap();
        let server = rt.block_on(TestServer::start());
        Shell::with(rt, server.addr, server.fingerprint, Some(server))
    }

    /// A real server over the storage `open` makes (on the shell's own runtime): an S3 bucket,
    /// say. The by-name helpers of [`Shell::served`] know only the local disk; check through a
    /// client instead.
    pub fn start_over<F: Future<Output = qft::storage::Storage>>(
        open: impl FnOnce() -> F,
    ) -> Shell {
        let rt = Runtime::new().unwrap();
        let storage = rt.block_on(open());
        let server = rt.block_on(TestServer::start_with_config(move |c| c.storage = storage));
        Shell::with(rt, server.addr, server.fingerprint, Some(server))
    }

    /// A real server whose config `adjust` changes (another storage, limits...).
    pub fn start_with_config(adjust: impl FnOnce(&mut qft::server::ServerConfig)) -> Shell {
        let rt = Runtime::new().unwrap();
        let server = rt.block_on(TestServer::start_with_config(adjust));
        Shell::with(rt, server.addr, server.fingerprint, Some(server))
    }

    /// A real server listening on `listen` (e.g. `[::1]:0`).
    pub fn start_on(listen: &str) -> Shell {
        let rt = Runtime::new().unwrap();
        let server = rt.block_on(TestServer::start_on(
            Identity::generate().unwrap(),
            listen.parse().unwrap(),
        ));
        Shell::with(rt, server.addr, server.fingerprint, Some(server))
    }

    /// A fake server: `answer` gets every request with its stream, to reply as it likes.
    pub fn fake<F, Fut>(answer: F) -> Shell
    where
        F: Fn(Request, quinn::SendStream, quinn::RecvStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Shell::fake_as(answer, true)
    }

    /// A fake server that is a current one: `answer` gets the resuming requests too.
    pub fn fake_current<F, Fut>(answer: F) -> Shell
    where
        F: Fn(Request, quinn::SendStream, quinn::RecvStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Shell::fake_as(answer, false)
    }

    fn fake_as<F, Fut>(answer: F, old: bool) -> Shell
    where
        F: Fn(Request, quinn::SendStream, quinn::RecvStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rt = Runtime::new().unwrap();
        let identity = Identity::generate().unwrap();
        let fingerprint = identity.fingerprint();
        let _guard = rt.enter();
        let endpoint = quinn::Endpoint::server(
            tls::server_config(&identity, false, quinn::TransportConfig::default()).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let answer = std::sync::Arc::new(answer);
        rt.spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let Ok(conn) = incoming.await else { continue };
                let answer = answer.clone();
                tokio::spawn(async move {
                    while let Ok((send, mut recv)) = conn.accept_bi().await {
                        let Ok(request) = read_frame::<Request, _>(&mut recv).await else {
                            continue;
                        };
                        // A scripted server is an old one: it knows no resuming, and says so,
                        // as a real old server does, so clients fall back to the plain exchange.
                        if old
                            && matches!(
                                request,
                                Request::ResumeDownload { .. } | Request::ResumeUpload { .. }
                            )
                        {
                            let mut send = send;
                            let no = qft::protocol::Response::Error {
                                code: qft::protocol::ErrorCode::Unsupported,
                                message: "unknown request".into(),
                            };
                            let _ = qft::protocol::write_frame(&mut send, &no).await;
                            let _ = send.finish();
                            continue;
                        }
                        tokio::spawn(answer(request, send, recv));
                    }
                });
            }
        });
        drop(_guard);
        Shell::with(rt, addr, fingerprint, None)
    }

    fn with(
        rt: Runtime,
        addr: SocketAddr,
        fingerprint: Fingerprint,
        server: Option<TestServer>,
    ) -> Shell {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("home")).unwrap();
        std::fs::create_dir(tmp.path().join("local")).unwrap();
        Shell {
            tmp,
            addr,
            fingerprint,
            server,
            _rt: rt,
        }
    }

    /// The real server, to put and check what it serves.
    pub fn served(&self) -> &TestServer {
        self.server.as_ref().expect("a real server")
    }

    /// The client's working directory.
    pub fn local(&self) -> PathBuf {
        self.tmp.path().join("local")
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// `qft connect ADDR --fingerprint FP ARGS...` in `local/`, without a terminal.
    pub fn qft(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.command(args));
        cmd.timeout(Duration::from_secs(60));
        cmd
    }

    /// The same as a plain `std::process::Command` (for a pseudo-terminal).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env("QFT_HOME", self.home())
            .env_remove("RUST_LOG")
            .current_dir(self.local())
            .args([
                "connect",
                &self.addr.to_string(),
                "--fingerprint",
                &self.fingerprint.to_string(),
            ])
            .args(args);
        cmd
    }
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of stdout parsed as JSON.
pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Writes `files` (relative path, contents) under `dir`, making directories.
pub fn write_tree(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// Every regular file under `dir` (relative, `/`-separated) with its contents; symlinks are
/// listed as `-> target`.
pub fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = path.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((rel, format!("-> {}", target.display()).into_bytes()));
            } else if meta.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(base, &path, out);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Waits (up to a generous bound) until `check` holds.
pub fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
