//! `serve --web` and share links, through the page in a real headless Chromium: browse,
//! download (verified), upload (verified by the server), and links that must refuse.

use std::time::{Duration, SystemTime};

use qft::server::web::{root_path, WebCerts};
use qft::server::WebConfig;
use qft::share::{NewShare, ShareAccess, ShareKind, ShareStore};
use qft::tls::Identity;
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
        let home = tempfile::tempdir().unwrap();
        let identity = Identity::generate().unwrap();
        let mut web = WebConfig::new(home.path());
        adjust(&mut web);
        let server = TestServer::start_as(identity.clone(), |c| c.web = Some(web)).await;
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
        share.link(&self.page(), &token, &hashes)
    }
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
