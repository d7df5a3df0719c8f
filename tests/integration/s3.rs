//! Serving from S3 (a real SeaweedFS, see [`crate::seaweed`]): several stateless servers over
//! one bucket prefix, as the object-store backend promises. Servers run in process; a server
//! "dies" by having its task aborted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use qft::client::Client;
use qft::paths::SafeName;
use qft::protocol::{read_frame, EntryKind, Trailer};
use qft::storage::object::ObjectConfig;
use qft::storage::Storage;
use qft::tls::Identity;
use qft::transfer::Sink;
use sha2::{Digest, Sha256};

use crate::seaweed;
use crate::support::{no_progress, random_bytes, TestServer};

const MIB: usize = 1 << 20;

/// A server over `config`, as `qft serve s3://...` would run it.
async fn server(config: &ObjectConfig) -> TestServer {
    let storage = seaweed::open(config).await;
    TestServer::start_with_config(move |c| c.storage = storage).await
}

/// The same bucket straight through object_store, to act behind the servers' backs.
fn direct() -> Arc<dyn ObjectStore> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(seaweed::endpoint())
            .with_allow_http(true)
            .with_bucket_name("qft-test")
            .with_access_key_id("testkey")
            .with_secret_access_key("testsecret")
            .with_region("us-east-1")
            .build()
            .unwrap(),
    )
}

fn local(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

async fn fetch(client: &Client, name: &str, dir: &Path) -> Vec<u8> {
    let dest = dir.join(format!("got-{}", name.replace('/', "_")));
    client
        .download(name, &dest, true, &no_progress())
        .await
        .unwrap();
    std::fs::read(dest).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_namespace() {
    let config = seaweed::config();
    let (a, b) = (server(&config).await, server(&config).await);
    let (ca, cb) = (a.client().await, b.client().await);
    let dir = tempfile::tempdir().unwrap();
    let big = random_bytes(12 * MIB + 5);
    ca.upload(
        &local(dir.path(), "big", &big),
        "docs/big.bin",
        &no_progress(),
    )
    .await
    .unwrap();
    ca.upload(
        &local(dir.path(), "small", b"hi"),
        "note.txt",
        &no_progress(),
    )
    .await
    .unwrap();

    let top: Vec<_> = cb.list("").await.unwrap();
    let top: Vec<_> = top.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        top,
        [("docs", EntryKind::Dir), ("note.txt", EntryKind::File)]
    );
    let docs = cb.list("docs").await.unwrap();
    assert_eq!(
        (docs[0].name.as_str(), docs[0].size),
        ("big.bin", big.len() as u64)
    );
    assert_eq!(fetch(&cb, "docs/big.bin", dir.path()).await, big);
    assert_eq!(fetch(&cb, "note.txt", dir.path()).await, b"hi");

    cb.delete("docs/big.bin").await.unwrap();
    // (SeaweedFS may keep the emptied directory a while; S3 drops it at once.)
    let left = ca.list("docs").await.map(|e| e.len()).unwrap_or(0);
    assert_eq!(left, 0, "deleted through B, gone through A");
    // Nothing staged is left behind in the private area.
    let staged: Vec<_> = direct()
        .list(Some(&Key::from(format!("{}/.qft", config.prefix))))
        .collect()
        .await;
    assert!(staged.is_empty(), "{staged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_of_one_name_through_two_servers_leave_one_whole() {
    let config = seaweed::config();
    let (a, b) = (server(&config).await, server(&config).await);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let versions = [random_bytes(9 * MIB), random_bytes(9 * MIB)];
        let mut uploads = Vec::new();
        for (i, (srv, data)) in [&a, &b].into_iter().zip(&versions).enumerate() {
            let client = srv.client().await;
            let path = local(dir.path(), &format!("v{round}-{i}"), data);
            uploads.push(tokio::spawn(async move {
                client.upload(&path, "race.bin", &no_progress()).await
            }));
        }
        for upload in uploads {
            upload.await.unwrap().unwrap();
        }
        let got = fetch(&a.client().await, "race.bin", dir.path()).await;
        assert!(
            versions.contains(&got),
            "round {round}: a whole version, never a mix"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_broken_with_its_server_continues_through_another() {
    let config = seaweed::config();
    let a = server(&config).await;
    let b = server(&config).await;
    let home = tempfile::tempdir().unwrap();
    let me = || Identity::load_or_create(&home.path().join("id")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(64 * MIB);
    let path = local(dir.path(), "f", &data);

    let client = a.client_as(me()).await;
    let progress = ProgressBar::hidden();
    let upload = {
        let (path, progress) = (path.clone(), progress.clone());
        tokio::spawn(async move { client.upload(&path, "f.bin", &progress).await })
    };
    // Until server A's manifest records stored parts (what a dead server leaves behind).
    let manifests = Key::from(format!("{}/.qft/partials", config.prefix));
    loop {
        assert!(
            !upload.is_finished(),
            "finished before the server could die"
        );
        let mut recorded = false;
        let mut keys = direct().list(Some(&manifests));
        while let Some(meta) = keys.next().await {
            let meta = meta.unwrap();
            if meta.location.as_ref().ends_with(".json") {
                let body = direct()
                    .get(&meta.location)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                recorded |= String::from_utf8_lossy(&body).contains("\"parts\":[{");
            }
        }
        if recorded && progress.position() > 16 * MIB as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Server A goes, with every connection and upload it had; the client turns to B at once.
    a.into_task().abort();
    let _ = upload.await;

    let report = b
        .client_as(me())
        .await
        .upload(&path, "f.bin", &no_progress())
        .await
        .unwrap_or_else(|e| panic!("through B: {e:#}"));
    assert!(
        report.resumed_from >= 8 * MIB as u64,
        "continued what server A stored, from {}",
        report.resumed_from
    );
    assert_eq!(fetch(&b.client().await, "f.bin", dir.path()).await, data);
}

/// Writes `data` to a partial's sink in 1 MiB blocks, as the server's copy hands them over.
async fn write_in_mib_blocks(sink: &mut qft::storage::WriteStream, data: &[u8]) {
    for piece in data.chunks(MIB) {
        sink.write_block(Arc::from(vec![Bytes::copy_from_slice(piece)]))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_a_dead_server_stored_are_completed_by_the_next_attempt() {
    // Below the servers: an attempt that vanishes without a word (kill -9: no drop, no
    // clean-up) leaves a multipart upload only its manifest names.
    let config = seaweed::config();
    let (a, b) = (seaweed::open(&config).await, seaweed::open(&config).await);
    let name = SafeName::new("dead.bin").unwrap();
    let limits = qft::server::Limits::default().partials();
    let data = random_bytes(20 * MIB);
    let size = data.len() as u64;
    let mut partial = a
        .begin_partial(name.clone(), [7; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    // As the server's handler does: what is stored is hashed as it goes, for the next attempt.
    partial.keep(0).await.unwrap();
    assert!(partial.take_hashing(Sha256::new()).is_none());
    let mut sink = partial.sink();
    write_in_mib_blocks(&mut sink, &data[..16 * MIB]).await;
    // Until both 8 MiB parts are stored and recorded (each write records those done).
    let manifests = Key::from(format!("{}/.qft/partials", config.prefix));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        sink.write_block(Arc::from(Vec::<Bytes>::new()))
            .await
            .unwrap();
        let mut recorded = 0;
        let mut keys = direct().list(Some(&manifests));
        while let Some(meta) = keys.next().await {
            let meta = meta.unwrap();
            if meta.location.as_ref().ends_with(".json") {
                let body = direct()
                    .get(&meta.location)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
                recorded = manifest["open"]["parts"].as_array().map_or(0, Vec::len);
            }
        }
        if recorded == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "parts not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let piece = Bytes::copy_from_slice(&data[16 * MIB..17 * MIB]);
    sink.write_block(Arc::from(vec![piece])).await.unwrap();
    std::mem::forget((sink, partial));

    let mut partial = b
        .begin_partial(name.clone(), [7; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    // The two 8 MiB parts stored and recorded; what was still in memory died with "A".
    assert_eq!(partial.held, 16 * MIB as u64);
    let held = partial.held as usize;
    // Parts of an open upload cannot be read back: what they hold is known from the manifest,
    // each part a resume piece, and the whole file's hash state where they end.
    let pieces = partial.pieces().expect("the manifest knows the parts");
    assert_eq!(pieces.chunk, 8 * MIB as u64);
    let expected: Vec<[u8; 32]> = data[..held]
        .chunks(8 * MIB)
        .map(|part| Sha256::digest(part).into())
        .collect();
    assert_eq!(pieces.hashes, expected);
    let state = partial
        .state_at(partial.held)
        .expect("the state after the last part");
    assert_eq!(state.finalize(), Sha256::digest(&data[..held]));
    partial.keep(partial.held).await.unwrap();
    let mut sink = partial.sink();
    sink.write_block(Arc::from(vec![Bytes::copy_from_slice(&data[held..])]))
        .await
        .unwrap();
    drop(sink);
    partial.commit(Sha256::digest(&data).into()).await.unwrap();
    let file = b.open_read(name).await.unwrap();
    assert_eq!(file.size, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_during_a_download_is_never_sent_mixed() {
    let config = seaweed::config();
    let srv = server(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let old = random_bytes(48 * MIB);
    srv.client()
        .await
        .upload(&local(dir.path(), "old", &old), "f.bin", &no_progress())
        .await
        .unwrap();
    let raw = srv.raw().await;
    let (mut recv, size) = raw.begin_download("f.bin").await;
    let mut got = vec![0u8; MIB];
    recv.read_exact(&mut got).await.unwrap();
    // Replaced behind the server's back, while it streams the old version.
    let new = random_bytes(48 * MIB);
    direct()
        .put(&Key::from(format!("{}/f.bin", config.prefix)), new.into())
        .await
        .unwrap();
    let mut rest = vec![0u8; size as usize - MIB];
    let read = async {
        recv.read_exact(&mut rest)
            .await
            .map_err(|e| e.to_string())?;
        read_frame::<Trailer, _>(&mut recv)
            .await
            .map_err(|e| e.to_string())
    };
    let trailer = match read.await {
        Ok(trailer) => trailer,
        Err(e) => {
            // Refused midway: the stream is reset, so the client never takes it as complete.
            eprintln!("download stopped: {e}");
            return;
        }
    };
    // Sent whole: then all of it is the old version, under the old version's hash.
    got.extend_from_slice(&rest);
    let old_hash = <[u8; 32]>::from(Sha256::digest(&old));
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&got)),
        old_hash,
        "never a mix"
    );
    assert_eq!(trailer.sha256, old_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_ten_levels_deep_goes_up_and_comes_back() {
    let config = seaweed::config();
    let srv = server(&config).await;
    let client = srv.client().await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut path = String::new();
    for level in 0..10 {
        path = if path.is_empty() {
            format!("l{level}")
        } else {
            format!("{path}/l{level}")
        };
        let name = format!("{path}/f{level}.txt");
        let data = format!("level {level}").into_bytes();
        client
            .upload(&local(dir.path(), "x", &data), &name, &no_progress())
            .await
            .unwrap();
        files.push((name, data));
    }
    // Walk it back through a listing per directory, as `get -r` does.
    let mut found = Vec::new();
    let mut pending = vec![String::from("l0")];
    while let Some(d) = pending.pop() {
        for e in client.list(&d).await.unwrap() {
            let full = format!("{d}/{}", e.name);
            match e.kind {
                EntryKind::Dir => pending.push(full),
                _ => found.push(full),
            }
        }
    }
    found.sort();
    let mut expected: Vec<_> = files.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(found, expected);
    let (deepest, data) = files.last().unwrap();
    assert_eq!(fetch(&client, deepest, dir.path()).await, *data);
    // A file cannot be put where a directory is, nor below a file.
    let err = client
        .upload(&local(dir.path(), "y", b"y"), "l0/l1", &no_progress())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    let err = client
        .upload(
            &local(dir.path(), "y", b"y"),
            "l0/f0.txt/under",
            &no_progress(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_of_twenty_thousand_objects_is_listed_page_by_page() {
    const N: usize = 20_000;
    let config = seaweed::config();
    let store = direct();
    futures_util::stream::iter(0..N)
        .map(|i| {
            let store = store.clone();
            let key = Key::from(format!("{}/many/f{i:05}", config.prefix));
            async move { store.put(&key, Bytes::from_static(b"x").into()).await }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            r.unwrap();
        })
        .await;
    let storage: Storage = seaweed::open(&config).await;
    let mut listing = storage
        .list(Some(SafeName::new("many").unwrap()))
        .await
        .unwrap();
    let mut count = 0;
    let mut last = String::new();
    loop {
        let page = listing.next_page(200).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 200);
        for e in page {
            assert!(
                e.name > last,
                "in order, once each: {} after {last}",
                e.name
            );
            last = e.name;
            count += 1;
        }
    }
    assert_eq!(count, N);
    // And through a server, as a client sees it.
    let srv = TestServer::start_with_config(move |c| c.storage = storage).await;
    assert_eq!(srv.client().await.list("many").await.unwrap().len(), N);
}

/// `qft serve s3://...` as a person runs it, credentials in the environment.
struct Served {
    child: std::process::Child,
    port: u16,
    fingerprint: String,
    log: std::path::PathBuf,
}

impl Served {
    fn start(config: &ObjectConfig, home: &Path, tag: &str) -> Served {
        let port_file = home.join(format!("port-{tag}"));
        let log = home.join(format!("server-{tag}.log"));
        let child = std::process::Command::new(crate::cli::BIN)
            .args([
                "serve",
                &format!("s3://{}/{}", config.bucket, config.prefix),
                "--s3-endpoint",
                seaweed::endpoint(),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
            ])
            .arg(&port_file)
            .env("QFT_HOME", home.join("server-home"))
            .env("AWS_ACCESS_KEY_ID", "testkey")
            .env("AWS_SECRET_ACCESS_KEY", "testsecret")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "qft=info")
            .stdout(std::fs::File::create(home.join(format!("out-{tag}"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = text.trim().parse() {
                    break port;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = std::fs::read_to_string(home.join(format!("out-{tag}"))).unwrap();
        let fingerprint = out
            .lines()
            .find_map(|l| l.strip_prefix("Fingerprint: "))
            .unwrap()
            .to_owned();
        Served {
            child,
            port,
            fingerprint,
            log,
        }
    }

    fn connect(&self, home: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(crate::cli::BIN);
        cmd.args([
            "connect",
            &format!("127.0.0.1:{}", self.port),
            "--fingerprint",
            &self.fingerprint,
        ])
        .args(args)
        .env("QFT_HOME", home.join("client-home"))
        .current_dir(home);
        cmd
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_is_continued_by_another_serving_the_bucket() {
    let config = seaweed::config();
    let home = tempfile::tempdir().unwrap();
    let data = random_bytes(64 * MIB);
    std::fs::write(home.path().join("big.bin"), &data).unwrap();
    // Two servers of one group: the same identity (one home), so the client pins one key.
    let a = Served::start(&config, home.path(), "a");
    let b = Served::start(&config, home.path(), "b");
    assert_eq!(a.fingerprint, b.fingerprint);

    // At 8 MiB/s the upload lasts long enough (8 s) to be caught in the middle however fast
    // the machine stores parts, and however slowly a store busy with other tests answers this
    // test's look at the manifest (at 32 MiB/s one full run of the tests in three missed it).
    let mut upload = a
        .connect(home.path(), &["--bwlimit", "8M", "put", "big.bin"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(home.path().join("put-a.err")).unwrap())
        .spawn()
        .unwrap();
    // Until A's manifest records stored parts, then kill -9: no clean-up of any kind.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = upload.try_wait().unwrap() {
            let err = std::fs::read_to_string(home.path().join("put-a.err")).unwrap_or_default();
            panic!("the upload ended first ({status}): {err}");
        }
        let recorded = match the_manifest(&config).await {
            Some(manifest) => manifest["open"]["parts"].as_array().map_or(0, Vec::len),
            None => 0,
        };
        if recorded >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no parts recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let _ = upload.wait();

    let out = b
        .connect(home.path(), &["put", "big.bin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = b
        .connect(home.path(), &["get", "big.bin", "-o", "back.bin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(home.path().join("back.bin")).unwrap(), data);
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(
        log.contains("resumed upload"),
        "B continued A's upload: {log}"
    );
}

/// Puts `body` at `key` with a request signed by hand: keys another tool may write, which
/// object_store refuses to name.
async fn raw_put(key: &str, body: &'static [u8]) {
    use object_store::aws::{AwsAuthorizer, AwsCredential};
    use object_store::client::{HttpRequest, HttpRequestBody};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let credential = AwsCredential {
        key_id: "testkey".into(),
        secret_key: "testsecret".into(),
        token: None,
    };
    let encoded: String = key
        .bytes()
        .map(
            |b| match b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            },
        )
        .collect();
    let url = format!("{}/qft-test/{encoded}", seaweed::endpoint());
    let mut request = HttpRequest::new(HttpRequestBody::from(Bytes::from_static(body)));
    *request.method_mut() = reqwest::Method::PUT;
    *request.uri_mut() = url.parse().unwrap();
    AwsAuthorizer::new(&credential, "s3", "us-east-1")
        .try_authorize(&mut request, None)
        .unwrap();
    let response = reqwest::Client::new()
        .put(&url)
        .headers(request.headers().clone())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        response.text().await.unwrap()
    );
}

/// Every name of `dir`'s listing, page by page.
async fn names_of(storage: &Storage, dir: &str) -> Vec<String> {
    let mut listing = storage
        .list(Some(SafeName::new(dir).unwrap()))
        .await
        .unwrap();
    let mut names = Vec::new();
    loop {
        let page = listing.next_page(100).await.unwrap();
        if page.is_empty() {
            return names;
        }
        names.extend(page.into_iter().map(|e| e.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_object_store_cannot_take_are_skipped_not_fatal_to_a_listing() {
    let config = seaweed::config();
    let store = direct();
    let mut good = Vec::new();
    for i in 0..30 {
        let name = format!("f{i:02}");
        let key = Key::from(format!("{}/odd/{name}", config.prefix));
        store
            .put(&key, Bytes::from_static(b"x").into())
            .await
            .unwrap();
        good.push(name);
    }
    // Written by another tool: a control character in a file's name (between f15 and f16 in
    // key order) and in a directory's (between f20 and f21).
    raw_put(&format!("{}/odd/f15\tbad", config.prefix), b"x").await;
    raw_put(&format!("{}/odd/f20\tdir/inner", config.prefix), b"x").await;
    let odd = Key::from(format!("{}/odd", config.prefix));
    assert!(
        store.list_with_delimiter(Some(&odd)).await.is_err(),
        "object_store itself fails on this page (else this test tests nothing)"
    );
    let storage = seaweed::open(&config).await;
    assert_eq!(names_of(&storage, "odd").await, good);
    // Through a server, as a client sees it.
    let srv = TestServer::start_with_config(move |c| c.storage = storage).await;
    let listed = srv.client().await.list("odd").await.unwrap();
    assert_eq!(listed.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_file_carries_its_sha256_so_it_is_not_read_again() {
    let config = seaweed::config();
    let srv = server(&config).await;
    let client = srv.client().await;
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(12 * MIB + 3);
    client
        .upload(&local(dir.path(), "f", &data), "big.bin", &no_progress())
        .await
        .unwrap();
    let sha256: [u8; 32] = Sha256::digest(&data).into();
    let storage = seaweed::open(&config).await;
    let name = SafeName::new("big.bin").unwrap();
    assert_eq!(
        storage.stat(name.clone()).await.unwrap().sha256,
        Some(sha256)
    );
    assert_eq!(
        storage.open_read(name).await.unwrap().known_sha256(),
        Some(sha256)
    );
    // The download's trailer is that digest, and the client checks it against the bytes.
    assert_eq!(fetch(&client, "big.bin", dir.path()).await, data);
}

/// The manifest of the only partial under `config`'s prefix.
async fn the_manifest(config: &ObjectConfig) -> Option<serde_json::Value> {
    let manifests = Key::from(format!("{}/.qft/partials", config.prefix));
    let mut keys = direct().list(Some(&manifests));
    while let Some(meta) = keys.next().await {
        let meta = meta.unwrap();
        if meta.location.as_ref().ends_with(".json") {
            // (Gone since it was listed: the upload was published meanwhile.)
            let got = direct().get(&meta.location).await.ok()?;
            return Some(serde_json::from_slice(&got.bytes().await.ok()?).unwrap());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_broken_attempt_leaves_its_open_upload_to_the_next_owner() {
    // The flake "continued what server A stored, from 0": an attempt that broke completed its
    // open multipart upload as it let go, while the next attempt, on another server, completed
    // the same upload from the manifest; whichever lost saw no upload and no object yet, and
    // started over. Now the broken attempt records its parts and leaves the upload open.
    let config = seaweed::config();
    let (a, b) = (seaweed::open(&config).await, seaweed::open(&config).await);
    let name = SafeName::new("broken.bin").unwrap();
    let limits = qft::server::Limits::default().partials();
    let data = random_bytes(20 * MIB);
    let size = data.len() as u64;
    let partial = a
        .begin_partial(name.clone(), [9; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    let mut sink = partial.sink();
    write_in_mib_blocks(&mut sink, &data).await;
    // The transfer breaks: A stores what it held, two 8 MiB parts and 4 MiB as the last one.
    drop((sink, partial));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        if let Some(manifest) = the_manifest(&config).await {
            if manifest["open"]["parts"].as_array().map_or(0, Vec::len) == 3 {
                break manifest;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A did not record its parts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(manifest["open"]["len"], 20 * MIB);
    let segment = Key::from(manifest["open"]["key"].as_str().unwrap());
    assert!(
        matches!(
            direct().head(&segment).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "A left the upload open, for its successor to complete"
    );
    let mut partial = b
        .begin_partial(name.clone(), [9; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.held, size, "everything A received is kept");
    partial.keep(size).await.unwrap();
    partial.commit(Sha256::digest(&data).into()).await.unwrap();
    let file = b.open_read(name).await.unwrap();
    let mut source = file.source_at(0);
    let mut got = Vec::new();
    while (got.len() as u64) < size {
        let block = qft::transfer::Source::read_block(&mut source, 1 << 20)
            .await
            .unwrap();
        assert!(!block.is_empty());
        block.iter().for_each(|b| got.extend_from_slice(b));
    }
    assert_eq!(got, data);
}

/// The same bucket as an S3 store with its multipart calls, to look at uploads the way the
/// servers leave them.
fn direct_s3() -> Arc<object_store::aws::AmazonS3> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(seaweed::endpoint())
            .with_allow_http(true)
            .with_bucket_name("qft-test")
            .with_access_key_id("testkey")
            .with_secret_access_key("testsecret")
            .with_region("us-east-1")
            .build()
            .unwrap(),
    )
}

/// Waits (up to a minute) until the only partial's manifest names `parts` parts or more.
async fn manifest_with_parts(config: &ObjectConfig, parts: usize) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(manifest) = the_manifest(config).await {
            if manifest["open"]["parts"].as_array().map_or(0, Vec::len) >= parts {
                return manifest;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no manifest with {parts} parts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_part_of_an_older_attempt_never_joins_the_file_a_newer_one_publishes() {
    // SeaweedFS completes an upload with whatever part holds a number, whatever the ETag it is
    // told: a part an older attempt still had on its way, landing after a newer attempt sent
    // other bytes (the file changed) under the same number, would be published. So each
    // attempt numbers its parts apart, and completes with its own numbers only.
    use object_store::multipart::MultipartStore;
    let config = seaweed::config();
    let (a, b) = (seaweed::open(&config).await, seaweed::open(&config).await);
    let name = SafeName::new("late.bin").unwrap();
    let limits = qft::server::Limits::default().partials();
    let old = random_bytes(24 * MIB);
    let size = old.len() as u64;
    let mut partial = a
        .begin_partial(name.clone(), [4; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    partial.keep(0).await.unwrap();
    assert!(partial.take_hashing(Sha256::new()).is_none());
    let mut sink = partial.sink();
    write_in_mib_blocks(&mut sink, &old[..17 * MIB]).await;
    drop((sink, partial)); // broken: two parts stored and recorded
    let manifest = manifest_with_parts(&config, 2).await;
    let key = Key::from(manifest["open"]["key"].as_str().unwrap());
    let id = manifest["open"]["upload_id"].as_str().unwrap().to_owned();
    let a_second = manifest["open"]["parts"][1]["number"].as_u64().unwrap() as usize;

    // The file changed in its second part: B keeps the first and sends the rest.
    let mut new = old.clone();
    new[9 * MIB] ^= 1;
    let mut partial = b
        .begin_partial(name.clone(), [4; 32], size, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.held, 16 * MIB as u64);
    partial.keep(8 * MIB as u64).await.unwrap();
    let state = partial.state_at(8 * MIB as u64).unwrap();
    assert!(partial.take_hashing(state).is_none());
    let mut sink = partial.sink();
    sink.write_block(Arc::from(vec![Bytes::copy_from_slice(&new[8 * MIB..])]))
        .await
        .unwrap();
    drop(sink);
    let digest = partial.digest().await.unwrap();
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&new)));
    // A's second part, late: its old bytes land again under A's number.
    direct_s3()
        .put_part(
            &key,
            &id,
            a_second,
            Bytes::copy_from_slice(&old[8 * MIB..16 * MIB]).into(),
        )
        .await
        .unwrap();
    partial.commit(digest).await.unwrap();
    let got = direct().get(&key).await.unwrap().bytes().await.unwrap();
    assert!(
        got[..] == new[..],
        "the published file is the newer attempt's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_continues_through_another_server_from_the_first_part_that_differs() {
    let config = seaweed::config();
    // A takes its time (32 MiB/s), so that it is caught holding some parts, not all.
    let storage = seaweed::open(&config).await;
    let a = TestServer::start_with_config(move |c| {
        c.storage = storage;
        c.limits.bwlimit = Some(32 << 20);
    })
    .await;
    let b = server(&config).await;
    let home = tempfile::tempdir().unwrap();
    let me = || Identity::load_or_create(&home.path().join("id")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(64 * MIB);
    let path = local(dir.path(), "f", &data);

    let client = a.client_as(me()).await;
    let upload = {
        let path = path.clone();
        tokio::spawn(async move { client.upload(&path, "f.bin", &no_progress()).await })
    };
    // Server A recorded three parts or more (24 MiB), then goes.
    manifest_with_parts(&config, 3).await;
    a.into_task().abort();
    let _ = upload.await;

    // The file changes in its second part, before the upload is tried again through B.
    let mut changed = data.clone();
    changed[8 * MIB + 5] ^= 0xff;
    std::fs::write(&path, &changed).unwrap();
    let report = b
        .client_as(me())
        .await
        .upload(&path, "f.bin", &no_progress())
        .await
        .unwrap_or_else(|e| panic!("through B: {e:#}"));
    assert_eq!(
        report.resumed_from,
        8 * MIB as u64,
        "continued at the part boundary before the change, short of what A held"
    );
    assert_eq!(fetch(&b.client().await, "f.bin", dir.path()).await, changed);
    // Published by completing its upload: the digest is known without reading the file.
    let storage = seaweed::open(&config).await;
    let info = storage.stat(SafeName::new("f.bin").unwrap()).await.unwrap();
    assert_eq!(info.sha256, Some(Sha256::digest(&changed).into()));
    assert!(
        the_manifest(&config).await.is_none(),
        "nothing staged is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_record_is_not_trusted_once_another_tool_replaced_the_file() {
    let config = seaweed::config();
    let srv = server(&config).await;
    let client = srv.client().await;
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(20 * MIB + 7);
    client
        .upload(&local(dir.path(), "f", &data), "f.bin", &no_progress())
        .await
        .unwrap();
    let storage = seaweed::open(&config).await;
    let name = SafeName::new("f.bin").unwrap();
    let sha = |bytes: &[u8]| -> [u8; 32] { Sha256::digest(bytes).into() };
    assert_eq!(
        storage.stat(name.clone()).await.unwrap().sha256,
        Some(sha(&data))
    );

    // Another tool writes the name: the record names the ETag of the version it was made for.
    let key = Key::from(format!("{}/f.bin", config.prefix));
    let other = random_bytes(3 * MIB);
    direct().put(&key, other.clone().into()).await.unwrap();
    assert_eq!(storage.stat(name.clone()).await.unwrap().sha256, None);
    let file = storage.open_read(name.clone()).await.unwrap();
    assert_eq!(
        file.known_sha256(),
        None,
        "hashed as any other tool's object"
    );
    // A download hashes it as it goes and records the digest of the version it read.
    assert_eq!(fetch(&client, "f.bin", dir.path()).await, other);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while storage.stat(name.clone()).await.unwrap().sha256 != Some(sha(&other)) {
        assert!(std::time::Instant::now() < deadline, "not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deleted: its record goes too.
    storage.delete(name.clone()).await.unwrap();
    let records = Key::from(format!("{}/.qft/digests", config.prefix));
    assert_eq!(direct().list(Some(&records)).count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_aborts_an_open_upload_at_the_files_own_key() {
    use object_store::multipart::{MultipartStore, PartId};
    let config = seaweed::config();
    let storage = seaweed::open(&config).await;
    let name = SafeName::new("expired.bin").unwrap();
    let limits = qft::server::Limits::default().partials();
    let data = random_bytes(20 * MIB);
    let partial = storage
        .begin_partial(name.clone(), [5; 32], data.len() as u64, limits)
        .await
        .unwrap()
        .unwrap();
    let mut sink = partial.sink();
    write_in_mib_blocks(&mut sink, &data[..17 * MIB]).await;
    drop((sink, partial)); // broken: two parts stored, recorded, the upload left open
    let manifest = manifest_with_parts(&config, 2).await;
    let key = Key::from(manifest["open"]["key"].as_str().unwrap());
    assert_eq!(key.as_ref(), format!("{}/expired.bin", config.prefix));
    let id = manifest["open"]["upload_id"].as_str().unwrap().to_owned();
    let parts: Vec<PartId> = manifest["open"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PartId {
            content_id: p["etag"].as_str().unwrap().to_owned(),
        })
        .collect();

    // Untouched for longer than the partial lifetime (S3 times are whole seconds).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    storage.expire_partials(Duration::ZERO).await;
    assert!(the_manifest(&config).await.is_none(), "the manifest went");
    let s3 = direct_s3();
    assert!(
        s3.complete_multipart(&key, &id, parts).await.is_err(),
        "the upload was aborted: its parts can no longer become the file"
    );
    assert!(matches!(
        s3.head(&key).await,
        Err(object_store::Error::NotFound { .. })
    ));
    let again = storage
        .begin_partial(name, [5; 32], data.len() as u64, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.held, 0, "the next attempt starts over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_trailer_leaves_nothing_under_the_name_and_no_open_upload() {
    use object_store::multipart::MultipartStore;
    use qft::protocol::{write_frame, ErrorCode, Response};
    let config = seaweed::config();
    let srv = server(&config).await;
    let peer = srv.raw().await;
    let body = random_bytes(20 * MIB);
    let (mut send, mut recv) = peer.begin_upload("lie.bin", body.len() as u64).await;
    send.write_all(&body).await.unwrap();
    // The plain upload's manifest names its upload, at the file's own key, once it began.
    let uploads = Key::from(format!("{}/.qft/uploads", config.prefix));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (key, id) = loop {
        let mut found = None;
        let mut keys = direct().list(Some(&uploads));
        while let Some(meta) = keys.next().await {
            let got = direct().get(&meta.unwrap().location).await.unwrap();
            let manifest: serde_json::Value =
                serde_json::from_slice(&got.bytes().await.unwrap()).unwrap();
            if let (Some(key), Some(id)) = (
                manifest["open"]["key"].as_str(),
                manifest["open"]["upload_id"].as_str(),
            ) {
                found = Some((Key::from(key), id.to_owned()));
            }
        }
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no upload began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lie = Trailer {
        sha256: Sha256::digest(b"something else").into(),
    };
    write_frame(&mut send, &lie).await.unwrap();
    send.finish().unwrap();
    match read_frame::<Response, _>(&mut recv).await.unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::HashMismatch),
        other => panic!("accepted a wrong trailer: {other:?}"),
    }
    assert!(matches!(
        direct().head(&key).await,
        Err(object_store::Error::NotFound { .. })
    ));
    // The upload is aborted and its manifest removed (as the upload is dropped).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while direct().list(Some(&uploads)).count().await > 0 {
        assert!(std::time::Instant::now() < deadline, "the manifest stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let part = direct_s3()
        .put_part(&key, &id, 0, Bytes::from_static(b"x").into())
        .await;
    assert!(part.is_err(), "the upload is still open");
}
