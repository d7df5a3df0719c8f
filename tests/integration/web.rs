//! `serve --web` and share links, through the page in a real headless Chromium: browse,
//! download (verified), upload (verified by the server), and links that must refuse.

use std::time::{Duration, SystemTime};

use qft::server::web::{root_path, WebCerts};
use qft::server::WebConfig;
use qft::share::{NewShare, ShareAccess, ShareKind, ShareStore};
use qft::tls::Identity;
use sha2::Digest;
use tempfile::TempDir;

use crate::browser::Browser;
use crate::support::{random_bytes, TestServer};

const PATIENCE: Duration = Duration::from_secs(60);

/// A server with `--web`, its qft home, and its key (for the links' certificate hashes).
struct WebServer {
    server: TestServer,
    home: TempDir,
    identity: Identity,
}

impl WebServer {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut WebConfig)) -> Self {
        Self::start_configured(adjust, |_| {}).await
    }

    /// A server whose web config and server config the test adjusts.
    async fn start_configured(
        adjust: impl FnOnce(&mut WebConfig),
        server: impl FnOnce(&mut qft::server::ServerConfig),
    ) -> Self {
        let home = tempfile::tempdir().unwrap();
        let identity = Identity::generate().unwrap();
        let mut web = WebConfig::new(home.path());
        adjust(&mut web);
        let server = TestServer::start_as(identity.clone(), |c| {
            c.web = Some(web);
            server(c);
        })
        .await;
        WebServer {
            server,
            home,
            identity,
        }
    }

    /// The page, as a browser on this machine opens it.
    fn page(&self) -> String {
        format!("http://127.0.0.1:{}/", self.server.addr.port())
    }

    /// A share link, made as `qft share` makes it.
    fn link(
        &self,
        name: &str,
        kind: ShareKind,
        access: ShareAccess,
        expires_in: Duration,
        max_uses: Option<u64>,
    ) -> String {
        let store = ShareStore::new(self.home.path());
        let (share, token) = store
            .create(NewShare {
                root: root_path(&self.server.local_root()),
                name: name.into(),
                kind,
                access,
                expires_in,
                max_uses,
            })
            .unwrap();
        let certs = WebCerts::new(self.home.path(), &self.identity).unwrap();
        let hashes = certs.hashes_until(SystemTime::now() + expires_in).unwrap();
        share.link(&self.page(), &token, &hashes, None)
    }
}

/// Checks that the page held some file bytes, and never more than `max` at once.
async fn held_at_most(browser: &Browser, max: u64) {
    let peak = browser
        .eval("window.qftMemory.peak")
        .await
        .as_u64()
        .unwrap();
    assert!(
        peak > 0 && peak <= max,
        "the page held {peak} bytes at once"
    );
}

/// The names the page lists, in order.
async fn listed(browser: &Browser) -> Vec<String> {
    let names = browser
        .eval("Array.from(document.querySelectorAll('#entries tr')).map(r => r.dataset.name)")
        .await;
    serde_json::from_value(names).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_browses_a_directory() {
    let web = WebServer::start().await;
    web.server.put_all(&[
        ("report.pdf", b"%PDF"),
        ("photos/cat.jpg", b"jpeg"),
        ("photos/dog.jpg", b"jpeg"),
    ]);
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser.wait_status("ok", "2 entries", PATIENCE).await;
    assert_eq!(listed(&browser).await, ["photos", "report.pdf"]);
    browser.screenshot("browse-top").await;

    browser.click("tr[data-name='photos'] td.name a").await;
    browser
        .wait_for(
            "document.querySelector(\"tr[data-name='cat.jpg']\") !== null",
            PATIENCE,
        )
        .await;
    assert_eq!(listed(&browser).await, ["cat.jpg", "dog.jpg"]);
    let shot = browser.screenshot("browse-photos").await;
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_downloads_50_mib_verified() {
    let web = WebServer::start().await;
    let data = random_bytes(50 << 20);
    web.server.put("big.bin", &data);
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser.wait_status("ok", "1 entry", PATIENCE).await;
    browser.click("tr[data-name='big.bin'] button.get").await;
    let shown = browser
        .wait_status("ok", "Downloaded big.bin", PATIENCE)
        .await;
    assert!(shown.contains("SHA-256 verified"), "{shown}");
    let got = browser.downloaded("big.bin", PATIENCE).await;
    assert!(got == data, "the downloaded bytes differ from the file");
    // The page held at most a piece of it at a time (the rest went to the browser as Blobs).
    held_at_most(&browser, (1 << 20) + (256 << 10)).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_uploads_and_the_server_commits_it_verified() {
    let web = WebServer::start().await;
    web.server.mkdir("inbox");
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20);
    std::fs::write(local.path().join("notes.bin"), &data).unwrap();
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser.wait_status("ok", "1 entry", PATIENCE).await;
    browser.click("tr[data-name='inbox'] td.name a").await;
    browser
        .wait_status("ok", "This directory is empty", PATIENCE)
        .await;
    browser
        .choose_file("#file", &local.path().join("notes.bin"))
        .await;
    browser
        .wait_status("ok", "Uploaded notes.bin", PATIENCE)
        .await;
    assert_eq!(web.server.read("inbox/notes.bin").unwrap(), data);
    // Read a block at a time, never whole.
    held_at_most(&browser, 256 << 10).await;
    // The listing is refreshed with what the server now holds.
    browser
        .wait_for(
            "document.querySelector(\"tr[data-name='notes.bin']\") !== null",
            PATIENCE,
        )
        .await;
    assert!(web.server.staged().is_empty(), "nothing left in staging");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_corrupted_on_the_way_is_refused_by_the_page() {
    // The fault flips one byte of the body, 1.5 MiB in (the second piece), after the server
    // hashed it: what a broken network or middlebox would do.
    let web = WebServer::start_with(|w| w.corrupt_downloads_at = Some(3 << 19)).await;
    web.server.put("data.bin", random_bytes(4 << 20));
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser.wait_status("ok", "1 entry", PATIENCE).await;
    browser.click("tr[data-name='data.bin'] button.get").await;
    let shown = browser.wait_status("error", "data.bin", PATIENCE).await;
    assert!(
        shown.contains("piece 2 does not match the server's SHA-256")
            && shown.contains("nothing was saved"),
        "{shown}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        crate::support::list_dir(browser.downloads.path()).is_empty(),
        "nothing may be saved"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_says_so() {
    let web = WebServer::start().await;
    web.server.put("report.pdf", b"%PDF");
    let link = web.link(
        "report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        Duration::ZERO,
        None,
    );
    let browser = Browser::start().await;
    browser.open(&link).await;
    let shown = browser
        .wait_status("error", "this link expired at ", PATIENCE)
        .await;
    assert!(shown.ends_with("UTC"), "{shown}");
    browser.screenshot("expired-link").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_only_link_uploads_new_files_and_nothing_else() {
    let web = WebServer::start().await;
    web.server
        .put_all(&[("drop/old.txt", b"old"), ("secret.txt", b"secret")]);
    let link = web.link(
        "drop",
        ShareKind::Dir,
        ShareAccess::UploadOnly,
        Duration::from_secs(3600),
        None,
    );
    let browser = Browser::start().await;
    browser.open(&link).await;
    browser
        .wait_status("ok", "You can upload files into drop", PATIENCE)
        .await;
    let listing_hidden = browser
        .eval("document.getElementById('listing').classList.contains('hidden')")
        .await;
    assert_eq!(listing_hidden, serde_json::Value::Bool(true));

    // A page made to try anyway (the checks are the server's, not the page's).
    for (attempt, refusal) in [
        (
            "get('old.txt', 'old.txt')",
            "this link does not allow downloading",
        ),
        ("get('', 'drop')", "this link does not allow downloading"),
        ("browse('')", "this link does not allow listing"),
    ] {
        browser.eval(&format!("run(() => {attempt})")).await;
        browser.wait_status("error", refusal, PATIENCE).await;
    }
    assert!(
        crate::support::list_dir(browser.downloads.path()).is_empty(),
        "nothing downloaded"
    );

    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("new.txt"), b"dropped").unwrap();
    std::fs::write(local.path().join("old.txt"), b"replaced?").unwrap();
    browser
        .choose_file("#file", &local.path().join("new.txt"))
        .await;
    browser
        .wait_status("ok", "Uploaded new.txt", PATIENCE)
        .await;
    assert_eq!(web.server.read("drop/new.txt").unwrap(), b"dropped");
    browser
        .choose_file("#file", &local.path().join("old.txt"))
        .await;
    browser
        .wait_status("error", "does not replace files", PATIENCE)
        .await;
    assert_eq!(web.server.read("drop/old.txt").unwrap(), b"old");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_used_past_its_count_is_refused() {
    let web = WebServer::start().await;
    let data = random_bytes(100_000);
    web.server.put("docs/report.pdf", &data);
    let link = web.link(
        "docs/report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        Duration::from_secs(3600),
        Some(1),
    );
    let browser = Browser::start().await;
    browser.open(&link).await;
    browser
        .wait_status("ok", "report.pdf is ready to download", PATIENCE)
        .await;
    browser.click("tr[data-name='report.pdf'] button.get").await;
    browser
        .wait_status("ok", "Downloaded report.pdf", PATIENCE)
        .await;
    assert_eq!(browser.downloaded("report.pdf", PATIENCE).await, data);

    // The same page again: the one use is spent.
    browser.click("tr[data-name='report.pdf'] button.get").await;
    browser
        .wait_status(
            "error",
            "this link has been used the 1 times it allowed",
            PATIENCE,
        )
        .await;
    // And the link opened anew is refused at once.
    browser.open("about:blank").await;
    browser.open(&link).await;
    browser
        .wait_status(
            "error",
            "this link has been used the 1 times it allowed",
            PATIENCE,
        )
        .await;
    browser.close().await;
}

/// Answering browsers on the port changes nothing for qft's own clients.
#[tokio::test]
async fn qft_clients_still_work_on_a_web_server() {
    let web = WebServer::start().await;
    web.server.put("a.txt", b"hello");
    let client = web.server.client().await;
    let entries = client.list("").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "a.txt");
}

/// A browser is held to the server's limits like any client: here, the largest upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_uploads_are_held_to_the_servers_limits() {
    let home = tempfile::tempdir().unwrap();
    let web = WebConfig::new(home.path());
    let server = TestServer::start_with_config(|c| {
        c.web = Some(web);
        c.limits.max_upload = Some(1024);
    })
    .await;
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("big.bin"), random_bytes(4096)).unwrap();
    let browser = Browser::start().await;
    browser
        .open(&format!("http://127.0.0.1:{}/", server.addr.port()))
        .await;
    browser
        .wait_status("ok", "This directory is empty", PATIENCE)
        .await;
    browser
        .choose_file("#file", &local.path().join("big.bin"))
        .await;
    browser
        .wait_status("error", "larger than this server accepts", PATIENCE)
        .await;
    assert!(!server.exists("big.bin"));
    browser.close().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_qft");

/// `qft share` as a person runs it in the served directory, with the server's qft home.
fn qft_share(
    home: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
) -> assert_cmd::assert::Assert {
    assert_cmd::Command::new(BIN)
        .env("QFT_HOME", home)
        .current_dir(dir)
        .arg("share")
        .args(args)
        .assert()
}

/// Checks that a failed command said `text` on stderr.
fn says(assert: assert_cmd::assert::Assert, text: &str) {
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains(text), "{stderr}");
}

#[test]
fn qft_share_makes_lists_and_revokes_links() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.pdf"), b"%PDF").unwrap();
    std::fs::create_dir(dir.path().join("uploads")).unwrap();
    let out = qft_share(
        home.path(),
        dir.path(),
        &["report.pdf", "--expires", "1h", "--uses", "2"],
    )
    .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    let link = stdout.trim();
    assert!(link.starts_with("http://localhost:4433/#t="), "{link}");
    assert!(link.contains("&m=read&k=file&n=report.pdf&h="), "{link}");
    assert!(stderr.contains(": read report.pdf until "), "{stderr}");
    let id = stderr
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':');

    let out = qft_share(home.path(), dir.path(), &["uploads", "--upload-only"]).success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("&m=upload&k=dir&n=uploads"), "{stdout}");

    says(
        qft_share(home.path(), dir.path(), &["report.pdf", "--upload-only"]).failure(),
        "an upload-only link is for a directory",
    );
    says(
        qft_share(home.path(), dir.path(), &["../etc/passwd"]).failure(),
        "cannot share",
    );
    says(
        qft_share(home.path(), dir.path(), &["nothing-here"]).failure(),
        "cannot share 'nothing-here'",
    );
    says(
        qft_share(home.path(), dir.path(), &["report.pdf", "--expires", "40d"]).failure(),
        "at most 30 days",
    );

    let out = qft_share(home.path(), dir.path(), &["--list"]).success();
    let listed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let first = listed.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(first.contains("uses 0/2\tactive\treport.pdf"), "{first}");

    qft_share(home.path(), dir.path(), &["--revoke", id]).success();
    says(
        qft_share(home.path(), dir.path(), &["--revoke", id]).failure(),
        "there is no share link with the ID",
    );
    let out = qft_share(home.path(), dir.path(), &["--list"]).success();
    let listed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

/// The whole path as a person takes it: `qft serve --web` and `qft share` are two processes
/// that must agree on the browser certificates; the link `qft share` prints opens in Chromium
/// and downloads the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_qft_share_works_against_qft_serve_web() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(2 << 20);
    std::fs::write(dir.path().join("report.pdf"), &data).unwrap();
    let port_file = home.path().join("port");
    let log = std::fs::File::create(home.path().join("serve.log")).unwrap();
    let mut serve = tokio::process::Command::new(BIN)
        .env("QFT_HOME", home.path())
        .args(["serve", "--web", "--listen", "127.0.0.1:0", "--port-file"])
        .arg(&port_file)
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse::<u16>().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // No --url: qft share links to the page this server noted for its directory.
    let out = qft_share(home.path(), dir.path(), &["report.pdf"]).success();
    let link = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/#t=")),
        "{link}"
    );

    let browser = Browser::start().await;
    browser.open(link.trim()).await;
    browser
        .wait_status("ok", "report.pdf is ready to download", PATIENCE)
        .await;
    browser.click("tr[data-name='report.pdf'] button.get").await;
    browser
        .wait_status("ok", "Downloaded report.pdf", PATIENCE)
        .await;
    assert_eq!(browser.downloaded("report.pdf", PATIENCE).await, data);
    browser.screenshot("share-link-download").await;
    browser.close().await;
    serve.start_kill().unwrap();
    let _ = serve.wait().await;
}

/// With an authorized-clients list, a browser (which has no key) gets nothing without a link,
/// and exactly what a link says with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_client_list_admits_browsers_only_by_link() {
    let home = tempfile::tempdir().unwrap();
    let list = home.path().join("authorized_clients");
    std::fs::write(&list, "").unwrap();
    let identity = Identity::generate().unwrap();
    let web_config = WebConfig::new(home.path());
    let server = TestServer::start_as(identity.clone(), |c| {
        c.web = Some(web_config);
        c.access = qft::server::Access::Authorized(list.clone());
    })
    .await;
    server.put("report.pdf", b"%PDF-1.7");
    let web = WebServer {
        server,
        home,
        identity,
    };
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser
        .wait_status("error", "admits only the clients on its list", PATIENCE)
        .await;
    let link = web.link(
        "report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        Duration::from_secs(600),
        None,
    );
    browser.open("about:blank").await;
    browser.open(&link).await;
    browser
        .wait_status("ok", "report.pdf is ready to download", PATIENCE)
        .await;
    browser.click("tr[data-name='report.pdf'] button.get").await;
    browser
        .wait_status("ok", "Downloaded report.pdf", PATIENCE)
        .await;
    assert_eq!(
        browser.downloaded("report.pdf", PATIENCE).await,
        b"%PDF-1.7"
    );
    browser.close().await;
}

/// A browser counts among the connections from its address like any client, and one over the
/// limit is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_over_the_connection_limit_is_told_why() {
    let home = tempfile::tempdir().unwrap();
    let web = WebConfig::new(home.path());
    let server = TestServer::start_with_config(|c| {
        c.web = Some(web);
        c.limits.max_connections_per_ip = 1;
    })
    .await;
    let client = server.client().await;
    client.list("").await.unwrap();
    let browser = Browser::start().await;
    browser
        .open(&format!("http://127.0.0.1:{}/", server.addr.port()))
        .await;
    browser
        .wait_status("error", "too many connections from 127.0.0.1", PATIENCE)
        .await;
    drop(client);
    browser.close().await;
}

/// `qft get LINK` as a person runs it: the file a link names, verified, without a server
/// address or a key; refusals in the link's own words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qft_get_downloads_what_a_link_names() {
    let web = WebServer::start().await;
    let data = random_bytes(3 << 20);
    web.server.put("docs/report.pdf", &data);
    web.server.mkdir("drop");
    let hour = Duration::from_secs(3600);
    let file = web.link(
        "docs/report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        hour,
        Some(1),
    );
    let expired = web.link(
        "docs/report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        Duration::ZERO,
        None,
    );
    let drop_box = web.link("drop", ShareKind::Dir, ShareAccess::UploadOnly, hour, None);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    let get = move |link: String| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            assert_cmd::Command::new(BIN)
                .arg("get")
                .arg(link)
                .arg("-o")
                .arg(&dir)
                .assert()
        })
    };
    let done = get(file.clone()).await.unwrap().success();
    let stdout = String::from_utf8_lossy(&done.get_output().stdout).into_owned();
    assert!(
        stdout.starts_with("downloaded\tdocs/report.pdf\t"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(out.path().join("report.pdf")).unwrap(), data);

    // Its one use is spent; and the file is there anyway (no --force).
    std::fs::remove_file(out.path().join("report.pdf")).unwrap();
    says(
        get(file).await.unwrap().failure(),
        "this link has been used the 1 times it allowed",
    );
    says(
        get(expired).await.unwrap().failure(),
        "this link expired at ",
    );
    says(
        get(drop_box).await.unwrap().failure(),
        "qft get takes links to one file",
    );
    says(
        get("http://x/#m=read".into()).await.unwrap().failure(),
        "not a qft share link",
    );
    assert!(
        crate::support::list_dir(out.path()).is_empty(),
        "nothing left behind"
    );
}

/// The page's own SHA-256 (WebCrypto has no incremental one) gives the standard answers, for
/// input fed in pieces of every alignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_incremental_sha256_matches_the_standard() {
    let web = WebServer::start().await;
    let browser = Browser::start().await;
    browser.open(&web.page()).await;
    browser
        .wait_status("ok", "This directory is empty", PATIENCE)
        .await;
    for len in [0usize, 3, 55, 56, 63, 64, 65, 1000, 100_003] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let expected: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let script = format!(
            "(() => {{ const d = new Uint8Array({len}); for (let i = 0; i < {len}; i++) d[i] = i * 7 % 251; \
             const h = new Sha256(); for (let at = 0; at < {len}; at += 37) h.update(d.subarray(at, at + 37)); \
             return Array.from(h.digest(), b => b.toString(16).padStart(2, '0')).join(''); }})()"
        );
        assert_eq!(
            browser.eval(&script).await,
            serde_json::json!(expected),
            "{len} bytes"
        );
    }
    browser.close().await;
}

/// A free TCP port on loopback, for the metrics endpoint.
fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `GET /metrics` from `addr`.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// The value of one series in a scrape.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// Regression: a browser's (WebTransport) transfers bypassed `--bwlimit` and
/// `--bwlimit-per-connection`, which only wrapped QUIC clients' streams. Checked without timing
/// anything: both limits count what they paced, and a download over a link's session is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_web_transfers_are_paced_by_the_servers_bandwidth_limits() {
    let metrics = free_port();
    let web = WebServer::start_configured(
        |_| {},
        |c| {
            c.limits.bwlimit = Some(256 << 20);
            c.limits.bwlimit_per_connection = Some(128 << 20);
            c.metrics = Some(metrics);
        },
    )
    .await;
    let data = random_bytes(3 << 20);
    web.server.put("report.pdf", &data);
    let link = web.link(
        "report.pdf",
        ShareKind::File,
        ShareAccess::Read,
        Duration::from_secs(600),
        None,
    );
    let out = tempfile::tempdir().unwrap();
    let link = qft::share::fetch::Link::parse(&link).unwrap();
    let bar = indicatif::ProgressBar::hidden();
    let (path, size, _) = qft::share::fetch::fetch(&link, out.path(), false, &bar)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    let text = scrape(metrics).await;
    for limit in ["server", "connection"] {
        let paced = series(
            &text,
            &format!("qft_bwlimited_bytes_total{{limit=\"{limit}\"}}"),
        );
        assert!(paced >= size as f64, "{limit}: {paced} of {size}");
    }
}

/// A browser's session open when the server stops is closed with the reason a qft client
/// gets, which the page shows, rather than a bare "bye" or a lost connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_is_told_the_server_is_shutting_down() {
    let web = WebServer::start().await;
    let certs = WebCerts::new(web.home.path(), &web.identity).unwrap();
    let hashes = certs
        .hashes_until(SystemTime::now() + Duration::from_secs(60))
        .unwrap()
        .into_iter()
        .map(|h| h.to_vec())
        .collect();
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(hashes)
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", web.server.addr.port());
    let url: url::Url = url.parse().unwrap();
    let session = client.connect(url).await.unwrap();
    // The qft home (with the browser certificates) stays until the end.
    let WebServer {
        server,
        home: _home,
        ..
    } = web;
    server.stop().await;
    let closed = tokio::time::timeout(PATIENCE, session.closed())
        .await
        .unwrap();
    match closed {
        web_transport_quinn::SessionError::WebTransportError(
            web_transport_quinn::WebTransportError::Closed(_, reason),
        ) => assert_eq!(reason, "it is shutting down"),
        other => panic!("closed without a reason: {other:?}"),
    }
}
