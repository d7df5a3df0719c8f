//! Interrupted transfers continue where they stopped, verified piece by piece; a changed source
//! is resent from its first changed piece, never mixed; another client cannot take a partial over.

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use qft::client::resume::partial_path;
use qft::client::Client;
use qft::tls::Identity;
use sha2::{Digest, Sha256};

use crate::support::{list_dir, no_progress, random_bytes, TestServer};

const MIB: usize = 1024 * 1024;

/// Runs `transfer` until `progress` passes `at` bytes, then drops it, as Ctrl-C or a lost
/// connection would. Returns how far it got.
async fn interrupt<F>(progress: &ProgressBar, at: u64, transfer: F) -> u64
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + std::fmt::Debug,
{
    let task = tokio::spawn(transfer);
    while progress.position() < at {
        assert!(
            !task.is_finished(),
            "the transfer ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    task.abort();
    let _ = task.await;
    progress.position()
}

/// Runs an upload until the server's partial holds `at` bytes, then drops it. Keyed to what
/// the server holds, not to client progress, which counts bytes still in flight.
async fn interrupt_upload<F>(server: &TestServer, at: u64, transfer: F)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + std::fmt::Debug,
{
    let task = tokio::spawn(transfer);
    while server_partial(server) < at {
        assert!(
            !task.is_finished(),
            "the upload ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    task.abort();
    let _ = task.await;
}

/// The server's resumable partials, as (name, bytes held).
fn server_partials(server: &TestServer) -> Vec<(String, u64)> {
    server
        .staged()
        .into_iter()
        .filter(|(name, _)| name.starts_with("partial-"))
        .collect()
}

fn partial_names(server: &TestServer) -> Vec<String> {
    server_partials(server)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// How many bytes the server's biggest partial holds.
fn server_partial(server: &TestServer) -> u64 {
    server_partials(server)
        .iter()
        .map(|(_, len)| *len)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_from_its_partial() {
    let server = TestServer::start().await;
    let data = random_bytes(24 * MIB + 5);
    server.put("f", &data);
    let client = Arc::new(server.client().await);
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");

    let progress = no_progress();
    let (c, d, p) = (client.clone(), dest.clone(), progress.clone());
    let reached = interrupt(&progress, 4 * MIB as u64, async move {
        c.download("f", &d, false, &p).await
    })
    .await;
    assert!(!dest.exists(), "nothing under the real name");
    // A dropped download's last write may still be finishing on tokio's blocking thread:
    // measure what is held once the partial stops growing.
    let size = || std::fs::metadata(partial_path(&dest)).unwrap().len();
    let mut held = size();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = size();
        if now == held {
            break;
        }
        held = now;
    }
    assert!(
        held > 0 && held < data.len() as u64,
        "a partial of {held} bytes ({reached} reported)"
    );

    let report = client
        .download("f", &dest, false, &no_progress())
        .await
        .unwrap();
    assert!(report.resumed_from > 0, "resumed, not restarted");
    assert_eq!(report.resumed_from % MIB as u64, 0, "at a piece boundary");
    assert!(report.resumed_from <= held);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(report.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
    assert_eq!(
        list_dir(local.path()),
        std::slice::from_ref(&dest),
        "the partial is gone"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_that_differs_is_resent_from_its_first_wrong_piece() {
    let server = TestServer::start().await;
    let data = random_bytes(6 * MIB);
    server.put("f", &data);
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    // A local partial: two right pieces, then a wrong one, then a right one.
    let mut partial = data[..4 * MIB].to_vec();
    partial[2 * MIB + 100] ^= 0xff;
    std::fs::write(partial_path(&dest), &partial).unwrap();

    let report = client
        .download("f", &dest, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(
        report.resumed_from,
        2 * MIB as u64,
        "from the first wrong piece"
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        data,
        "the wrong byte is gone"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_and_no_other_client_can_take_it_over() {
    let server = TestServer::start().await;
    let local = tempfile::tempdir().unwrap();
    let ours = random_bytes(24 * MIB);
    let src = local.path().join("ours");
    std::fs::write(&src, &ours).unwrap();
    let client = Arc::new(server.client_as(Identity::generate().unwrap()).await);

    let (c, s) = (client.clone(), src.clone());
    interrupt_upload(&server, 4 * MIB as u64, async move {
        c.upload(&s, "f", &no_progress()).await
    })
    .await;
    assert!(!server.exists("f"), "nothing under the real name");
    let partials = partial_names(&server);
    assert_eq!(partials.len(), 1, "{partials:?}");

    // Another client uploading the very same bytes under the same name: were our partial
    // offered to it, it would resume. It starts from nothing, and our partial is untouched.
    let other = server.client().await;
    let report = other.upload(&src, "f", &no_progress()).await.unwrap();
    assert_eq!(
        report.resumed_from, 0,
        "another client's partial is not offered"
    );
    assert_eq!(server.read("f").unwrap(), ours);
    assert_eq!(
        partial_names(&server),
        partials,
        "our partial is still there"
    );

    // Ours resumes.
    let report = client.upload(&src, "f", &no_progress()).await.unwrap();
    assert!(report.resumed_from > 0, "resumed, not restarted");
    assert_eq!(server.read("f").unwrap(), ours);
    assert!(server.staged().is_empty(), "the partial was committed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_changed_since_the_interruption_is_resent_from_the_change_never_mixed() {
    let server = TestServer::start().await;
    let local = tempfile::tempdir().unwrap();
    let mut data = random_bytes(24 * MIB);
    let src = local.path().join("src");
    std::fs::write(&src, &data).unwrap();
    let client = Arc::new(server.client().await);
    let (c, s) = (client.clone(), src.clone());
    interrupt_upload(&server, 6 * MIB as u64, async move {
        c.upload(&s, "f", &no_progress()).await
    })
    .await;

    // The file changes in its second piece, inside what the server already holds.
    data[MIB + 10] ^= 0xff;
    std::fs::write(&src, &data).unwrap();
    let report = client.upload(&src, "f", &no_progress()).await.unwrap();
    assert_eq!(report.resumed_from, MIB as u64, "from the changed piece");
    assert_eq!(server.read("f").unwrap(), data, "the new version, whole");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_partials_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = qft::storage::Storage::open(dir.path()).unwrap();
    let staging = dir.path().join(".qft/tmp");
    let (old, fresh) = (staging.join("partial-old"), staging.join("partial-fresh"));
    std::fs::write(&old, b"x").unwrap();
    std::fs::write(&fresh, b"x").unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    storage.expire_partials(Duration::from_secs(3600)).await;
    assert!(!old.exists() && fresh.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_key_still_uploads_plainly() {
    let server = TestServer::start().await;
    let mut config = server.config(qft::client::Trust {
        pin: Some(server.fingerprint),
        ..Default::default()
    });
    config.identity = None;
    let anonymous = Client::connect(&config).await.unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"plain").unwrap();
    let report = anonymous.upload(&src, "f", &no_progress()).await.unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_eq!(server.read("f").unwrap(), b"plain");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_attempts_of_one_client_at_one_upload_end_with_one_whole_file() {
    // Same client, name and size: the same partial. The newer attempt takes it over; whatever
    // the interleaving, the result is one of the two contents, whole, and no partial remains.
    let server = TestServer::start().await;
    let local = tempfile::tempdir().unwrap();
    let (a, b) = (random_bytes(8 * MIB), random_bytes(8 * MIB));
    std::fs::write(local.path().join("a"), &a).unwrap();
    std::fs::write(local.path().join("b"), &b).unwrap();
    let client = Arc::new(server.client().await);
    let (ca, cb) = (client.clone(), client.clone());
    let (pa, pb) = (local.path().join("a"), local.path().join("b"));
    let ta = tokio::spawn(async move { ca.upload(&pa, "f", &no_progress()).await });
    let tb = tokio::spawn(async move { cb.upload(&pb, "f", &no_progress()).await });
    let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
    assert!(
        ra.is_ok() || rb.is_ok(),
        "at least one finishes: {ra:?} {rb:?}"
    );
    let got = server.read("f").unwrap();
    assert!(got == a || got == b, "one whole version, never a mix");
    if ra.is_ok() != rb.is_ok() {
        assert!(
            got == if ra.is_ok() { a } else { b },
            "the finished one is the content"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left: Vec<u64> = server_partials(&server)
        .iter()
        .map(|(_, len)| *len)
        .collect();
    assert!(
        left.is_empty(),
        "no partial left: {left:?} a={:?} b={:?}",
        ra.as_ref().map(|r| r.resumed_from),
        rb.as_ref().map(|r| r.resumed_from)
    );
    server.stop().await;
}
