//! Shared test helpers: a server on a loopback port serving a temp dir, clients for it, and a raw
//! protocol connection for playing a misbehaving peer.

use qft::tuning::Tuning;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use qft::client::{Client, ConnectConfig, Target, Trust};
use qft::protocol::{read_frame, write_frame, Entry, Request, Response};
use qft::server::{Server, ServerConfig};
use qft::storage::Storage;
use qft::tls::{self, Fingerprint, FingerprintVerifier, Identity};
use rand::RngCore;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server on 127.0.0.1:0 serving `root`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub fingerprint: Fingerprint,
    /// `<tmp>/root` is served; `<tmp>` itself is "outside", for escape checks. Private: tests
    /// reach the disk only through [`TestServer::local_root`] and [`TestServer::local_outside`].
    tmp: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Identity::generate().unwrap()).await
    }

    pub async fn start_with(identity: Identity) -> Self {
        Self::start_on(identity, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(identity: Identity, listen: SocketAddr) -> Self {
        Self::start_configured(identity, listen, |_| {}).await
    }

    /// A server whose config `adjust` changes (access, limits...) before it binds 127.0.0.1:0.
    pub async fn start_with_config(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_configured(
            Identity::generate().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            adjust,
        )
        .await
    }

    async fn start_configured(
        identity: Identity,
        listen: SocketAddr,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("root")).unwrap();
        let mut config = ServerConfig::new(
            Storage::open(&tmp.path().join("root")).unwrap(),
            identity,
            listen,
        );
        config.grace = Duration::from_secs(2);
        adjust(&mut config);
        let server = Server::bind(config).unwrap();
        let addr = server.local_addr().unwrap();
        let fingerprint = server.fingerprint();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            fingerprint,
            tmp,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The served directory on the local disk, for the tests about the local filesystem itself
    /// (symlinks, escapes, modes, the private area). Served content goes through the by-name
    /// helpers below, which work on any backend.
    pub fn local_root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// The local directory that holds [`TestServer::local_root`]: outside what is served, for
    /// checking that nothing escapes into it.
    pub fn local_outside(&self) -> &Path {
        self.tmp.path()
    }

    pub fn target(&self) -> Target {
        Target::parse(&self.addr.to_string()).unwrap()
    }

    /// A client that pins this server's key, with a fresh identity of its own.
    pub async fn client(&self) -> Client {
        self.client_as(Identity::generate().unwrap()).await
    }

    /// A client that pins this server's key and presents `identity`.
    pub async fn client_as(&self, identity: Identity) -> Client {
        let mut config = self.config(Trust {
            pin: Some(self.fingerprint),
            ..Trust::default()
        });
        config.identity = Some(identity);
        Client::connect(&config).await.unwrap()
    }

    pub fn config(&self, trust: Trust) -> ConnectConfig {
        ConnectConfig::new(self.target(), trust)
    }

    /// A bare QUIC connection that speaks frames directly, to act as a broken or hostile client.
    pub async fn raw(&self) -> RawPeer {
        RawPeer::connect(self.addr, self.fingerprint).await
    }

    /// Stops the server (as Ctrl-C would) and waits for it to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server stops within its grace period")
            .unwrap();
    }

    /// The server's task, for a test that expects it to stop by itself.
    pub fn into_task(mut self) -> JoinHandle<()> {
        self.task.take().unwrap()
    }
}

// The served files, by name.
//
// Tests set up and check what the server serves only through these: names relative to the
// served root, `/`-separated, as a client would spell them. This block is the one place that
// knows the files live on the local disk; running the behavioural suite against another
// storage backend (through the storage contract, or S3) is a change here alone. Tests about
// the local filesystem itself (symlinks, escapes, modes, the private area) use
// [`TestServer::local_root`] instead, so each such use says it is local-only.
impl TestServer {
    /// Stores `data` as the file `name`, creating its parent directories. An existing file is
    /// replaced whole, as an upload replaces it: a reader that already opened it keeps reading
    /// the old content (on disk: written beside the root, then renamed over `name`).
    pub fn put(&self, name: &str, data: impl AsRef<[u8]>) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = self
            .tmp
            .path()
            .join(format!("put-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&temp, data).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    }

    /// [`TestServer::put`] for each `(name, contents)`.
    pub fn put_all(&self, files: &[(&str, &[u8])]) {
        for (name, data) in files {
            self.put(name, data);
        }
    }

    /// The contents of the file `name`, or None if there is none.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        match std::fs::read(self.path(name)) {
            Ok(data) => Some(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("reading served {name:?}: {e}"),
        }
    }

    /// Whether a file or directory `name` is served.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    /// Whether `name` is a directory.
    pub fn is_dir(&self, name: &str) -> bool {
        self.path(name).is_dir()
    }

    /// Makes the directory `name`, and its parents.
    pub fn mkdir(&self, name: &str) {
        std::fs::create_dir_all(self.path(name)).unwrap();
    }

    /// Removes the file `name`, which must exist.
    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.path(name)).unwrap();
    }

    /// The names in the directory `dir` (`""` for the root), sorted, without the server's
    /// private area. A directory that does not exist has none (a backend of keys cannot tell
    /// an empty directory from a missing one).
    pub fn names(&self, dir: &str) -> Vec<String> {
        let entries = match std::fs::read_dir(self.path(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("listing served {dir:?}: {e}"),
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !(dir.is_empty() && n == qft::storage::PRIVATE_DIR))
            .collect();
        names.sort();
        names
    }

    /// Everything under `dir`, as [`crate::shell::read_tree`] gives a local one: each file
    /// (relative to `dir`) with its contents, each directory as `name/` with none, sorted.
    pub fn tree(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        let join = |a: &str, b: &str| match a {
            "" => b.to_string(),
            _ => format!("{a}/{b}"),
        };
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(sub) = pending.pop() {
            for name in self.names(&join(dir, &sub)) {
                let rel = join(&sub, &name);
                let full = join(dir, &rel);
                if self.is_dir(&full) {
                    out.push((format!("{rel}/"), Vec::new()));
                    pending.push(rel);
                } else {
                    out.push((rel, self.read(&full).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// What the server holds for uploads not committed yet, as (name, bytes held), sorted by
    /// name: must be empty whenever no upload is running. The names are the backend's own (on
    /// disk: `upload-*` for a one-shot upload, `partial-*` for a resumable one, in `.qft/tmp`).
    pub fn staged(&self) -> Vec<(String, u64)> {
        list_dir(
            &self
                .local_root()
                .join(qft::storage::PRIVATE_DIR)
                .join("tmp"),
        )
        .into_iter()
        .filter_map(|p| {
            // An upload may end between the listing and this look.
            let len = std::fs::metadata(&p).ok()?.len();
            Some((p.file_name()?.to_string_lossy().into_owned(), len))
        })
        .collect()
    }

    /// Where `name` is on the local disk.
    fn path(&self, name: &str) -> PathBuf {
        self.local_root().join(name)
    }
}

/// A raw protocol peer.
pub struct RawPeer {
    _endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr, fingerprint: Fingerprint) -> Self {
        Self::connect_from(addr, fingerprint, IpAddr::from([127, 0, 0, 1])).await
    }

    /// Starts an upload by hand: sends the request and waits for Ready.
    pub async fn begin_upload(
        &self,
        name: &str,
        size: u64,
    ) -> (quinn::SendStream, quinn::RecvStream) {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        let request = Request::Upload {
            name: name.into(),
            size,
        };
        write_frame(&mut send, &request).await.unwrap();
        assert_eq!(
            read_frame::<Response, _>(&mut recv).await.unwrap(),
            Response::Ready
        );
        (send, recv)
    }

    /// Starts a download by hand: sends the request, finishes sending, and waits for the
    /// header. Returns the stream the body and trailer come on, and the size announced.
    pub async fn begin_download(&self, name: &str) -> (quinn::RecvStream, u64) {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        let request = Request::Download { name: name.into() };
        write_frame(&mut send, &request).await.unwrap();
        send.finish().unwrap();
        match read_frame::<Response, _>(&mut recv).await.unwrap() {
            Response::FileHeader { size, .. } => (recv, size),
            other => panic!("no file header for {name:?}: {other:?}"),
        }
    }

    /// Sends `request` (and `then`, raw bytes after it), finishes, and returns the first response.
    pub async fn exchange(&self, request: &Request, then: &[u8]) -> Response {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        write_frame(&mut send, request).await.unwrap();
        // A server that refuses the request may stop reading before `then` is sent: that write
        // failing is part of the exchange, and the answer is still there to read.
        let _ = send.write_all(then).await;
        let _ = send.finish();
        read_frame::<Response, _>(&mut recv).await.unwrap()
    }

    /// LIST of the root on a stream of its own; panics unless a page of the listing comes back.
    /// Returns its entries, and whether it is the last page.
    pub async fn list_root(&self) -> (Vec<Entry>, bool) {
        match self
            .exchange(&Request::List { dir: String::new() }, &[])
            .await
        {
            Response::ListPage { entries, last } => (entries, last),
            other => panic!("no listing: {other:?}"),
        }
    }

    /// Sends raw bytes as a whole stream and returns the first response.
    pub async fn exchange_bytes(
        &self,
        bytes: &[u8],
    ) -> Result<Response, qft::protocol::FrameError> {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        send.finish().unwrap();
        read_frame::<Response, _>(&mut recv).await
    }
}
/// Gives the file `path` the modification time `secs` (seconds since the epoch).
pub fn set_mtime(path: &Path, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// The modification time of `path`, in whole seconds since the epoch.
pub fn mtime(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

pub fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    all.sort();
    all
}

pub fn no_progress() -> ProgressBar {
    ProgressBar::hidden()
}

impl TestServer {
    /// A server as `identity` whose config `adjust` changes, on 127.0.0.1:0 (when a test needs
    /// the server's key itself, e.g. for the certificates browsers pin).
    pub async fn start_as(identity: Identity, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_configured(identity, "127.0.0.1:0".parse().unwrap(), adjust).await
    }
}

/// A bare server that runs `answer` on every stream after reading its request, to play a
/// server that lies, stalls or misbehaves. Returns its address, its key, and the endpoint to
/// keep alive.
pub async fn fake_server<F, Fut>(answer: F) -> (SocketAddr, Fingerprint, quinn::Endpoint)
where
    F: Fn(Request, quinn::SendStream, quinn::RecvStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let identity = Identity::generate().unwrap();
    let fingerprint = identity.fingerprint();
    let config = tls::server_config(&identity, false, quinn::TransportConfig::default()).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let ep = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let Ok(conn) = incoming.await else { continue };
            let answer = answer.clone();
            tokio::spawn(async move {
                while let Ok((send, mut recv)) = conn.accept_bi().await {
                    if let Ok(request) = read_frame::<Request, _>(&mut recv).await {
                        tokio::spawn(answer.clone()(request, send, recv));
                    }
                }
            });
        }
    });
    (addr, fingerprint, endpoint)
}

/// A client of the server at `addr` with key `fingerprint`, its settings `adjust`ed.
pub async fn client_of(
    addr: SocketAddr,
    fingerprint: Fingerprint,
    adjust: impl FnOnce(&mut ConnectConfig),
) -> Client {
    let trust = Trust {
        pin: Some(fingerprint),
        ..Trust::default()
    };
    let mut config = ConnectConfig::new(Target::parse(&addr.to_string()).unwrap(), trust);
    adjust(&mut config);
    Client::connect(&config).await.unwrap()
}

impl RawPeer {
    /// [`RawPeer::connect`] from another loopback address (127.0.0.2...): another client, for
    /// the limits a server keeps per client.
    pub async fn connect_from(addr: SocketAddr, fingerprint: Fingerprint, from: IpAddr) -> Self {
        let verifier = Arc::new(FingerprintVerifier::new(
            Some(fingerprint),
            false,
            tls::crypto_provider(),
        ));
        let mut endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0)).unwrap();
        let identity = Identity::generate().unwrap();
        // A raw peer reads only when a test does: a small window makes the server wait for it
        // (with the default, files of several MiB would arrive before anyone reads).
        let tuning = Tuning {
            stream_window: 1 << 20,
            ..Tuning::default()
        };
        endpoint.set_default_client_config(
            tls::client_config(verifier, Some(&identity), &tuning).unwrap(),
        );
        let conn = endpoint.connect(addr, "qft").unwrap().await.unwrap();
        RawPeer {
            _endpoint: endpoint,
            conn,
        }
    }
}
