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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_from_its_partial() {
    let server = TestServer::start().await;
    let data = random_bytes(24 * MIB + 5);
    std::fs::write(server.root().join("f"), &data).unwrap();
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
    let held = std::fs::metadata(partial_path(&dest)).unwrap().len();
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
    std::fs::write(server.root().join("f"), &data).unwrap();
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
    let me = Identity::generate().unwrap();
    let client = Arc::new(server.client_as(me.clone()).await);

    let progress = no_progress();
    let (c, s, p) = (client.clone(), src.clone(), progress.clone());
    interrupt(&progress, 4 * MIB as u64, async move {
        c.upload(&s, "f", &p).await
    })
    .await;
    // The server may still be writing what arrived: give it a moment to notice the break.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.root().join("f").exists(),
        "nothing under the real name"
    );
    let partials: Vec<_> = server
        .staged()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("partial-")
        })
        .collect();
    assert_eq!(partials.len(), 1, "{partials:?}");

    // Another client, same name and size, different content: starts from nothing, and its
    // upload is whole and its own.
    let theirs = random_bytes(24 * MIB);
    let other_src = local.path().join("theirs");
    std::fs::write(&other_src, &theirs).unwrap();
    let other = server.client().await;
    let report = other.upload(&other_src, "f", &no_progress()).await.unwrap();
    assert_eq!(
        report.resumed_from, 0,
        "another client's partial is not offered"
    );
    assert_eq!(std::fs::read(server.root().join("f")).unwrap(), theirs);

    // Ours resumes.
    let report = client.upload(&src, "f", &no_progress()).await.unwrap();
    assert!(report.resumed_from > 0, "resumed, not restarted");
    assert_eq!(std::fs::read(server.root().join("f")).unwrap(), ours);
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
    let progress = no_progress();
    let (c, s, p) = (client.clone(), src.clone(), progress.clone());
    interrupt(&progress, 6 * MIB as u64, async move {
        c.upload(&s, "f", &p).await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The file changes in its second piece, inside what the server already holds.
    data[MIB + 10] ^= 0xff;
    std::fs::write(&src, &data).unwrap();
    let report = client.upload(&src, "f", &no_progress()).await.unwrap();
    assert_eq!(report.resumed_from, MIB as u64, "from the changed piece");
    assert_eq!(
        std::fs::read(server.root().join("f")).unwrap(),
        data,
        "the new version, whole"
    );
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
    storage.expire_partials(Duration::from_secs(3600));
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
    assert_eq!(std::fs::read(server.root().join("f")).unwrap(), b"plain");
    server.stop().await;
}
