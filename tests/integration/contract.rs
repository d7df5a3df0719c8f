//! The storage contract, checked the same way against every backend: what the server's command
//! handlers may rely on, whatever keeps the bytes. A new backend adds one line to `backends!`.

use std::sync::Arc;

use bytes::Bytes;
use qft::paths::SafeName;
use qft::protocol::{EntryKind, ErrorCode};
use qft::storage::{Storage, StorageError};
use qft::transfer::{Sink, Source};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::random_bytes;

/// A backend under test, with whatever keeps it alive.
struct Backend {
    storage: Storage,
    _keep: TempDir,
}

async fn local() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    Backend {
        storage: Storage::open(dir.path()).unwrap(),
        _keep: dir,
    }
}

/// The object backend over object_store's in-memory store: fast, no S3 semantics.
async fn memory() -> Backend {
    Backend {
        storage: Storage::object_in_memory(),
        _keep: tempfile::tempdir().unwrap(),
    }
}

/// The object backend over a real S3 store (SeaweedFS), a prefix of its own per test.
async fn s3() -> Backend {
    Backend {
        storage: crate::seaweed::open(&crate::seaweed::config()).await,
        _keep: tempfile::tempdir().unwrap(),
    }
}

fn name(text: &str) -> SafeName {
    SafeName::new(text).unwrap()
}

fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Stores `data` as `text` through the contract's streamed upload path.
async fn put(storage: &Storage, text: &str, data: &[u8]) {
    let upload = storage
        .begin_upload(name(text), data.len() as u64)
        .await
        .unwrap();
    let mut sink = upload.sink();
    sink.write_block(Arc::from(vec![Bytes::copy_from_slice(data)]))
        .await
        .unwrap();
    drop(sink);
    upload.commit(digest(data)).await.unwrap();
}

/// Reads `len` bytes of `source`.
async fn read_all<S: Source>(source: &mut S, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let want = (len - out.len() as u64).min(256 << 10) as usize;
        let pieces = source.read_block(want).await.unwrap();
        let got: usize = pieces.iter().map(|p| p.len()).sum();
        assert!(got > 0, "source ended after {} of {len} bytes", out.len());
        pieces.iter().for_each(|p| out.extend_from_slice(p));
    }
    out
}

/// Reads `len` bytes of `source`, or `None` if the source refuses (never a short read).
async fn try_read_all<S: Source>(source: &mut S, len: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let want = (len - out.len() as u64).min(256 << 10) as usize;
        let pieces = source.read_block(want).await.ok()?;
        let got: usize = pieces.iter().map(|p| p.len()).sum();
        assert!(got > 0, "source ended after {} of {len} bytes", out.len());
        pieces.iter().for_each(|p| out.extend_from_slice(p));
    }
    Some(out)
}

/// The content of `text`, or the error opening it.
async fn get(storage: &Storage, text: &str) -> Result<Vec<u8>, StorageError> {
    let file = storage.open_read(name(text)).await?;
    Ok(read_all(&mut file.source_at(0), file.size).await)
}

fn code(result: Result<impl std::fmt::Debug, StorageError>) -> ErrorCode {
    result.unwrap_err().code()
}

async fn lists_page_by_page_in_name_order_without_the_private_area(b: Backend) {
    let s = &b.storage;
    for i in (0..450).rev() {
        put(s, &format!("many/f{i:04}"), b"x").await;
    }
    put(s, "many/sub/inner", b"y").await;
    let mut listing = s.list(Some(name("many"))).await.unwrap();
    let mut names = Vec::new();
    loop {
        let page = listing.next_page(200).await.unwrap();
        assert!(page.len() <= 200);
        if page.is_empty() {
            break;
        }
        names.extend(page.into_iter().map(|e| (e.name, e.kind)));
    }
    assert_eq!(names.len(), 451);
    assert!(names.windows(2).all(|w| w[0].0 < w[1].0), "in name order");
    assert_eq!(names[450], ("sub".to_string(), EntryKind::Dir));
    let mut top = s.list(None).await.unwrap();
    let top = top.next_page(200).await.unwrap();
    let top: Vec<_> = top.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(top, ["many"], "the private area is never listed");
    assert_eq!(
        code(s.list(Some(name("nothing-here"))).await),
        ErrorCode::NotFound
    );
}

async fn reads_from_any_offset_of_a_fixed_snapshot(b: Backend) {
    let s = &b.storage;
    let data = random_bytes(3 << 20);
    put(s, "f.bin", &data).await;
    let file = s.open_read(name("f.bin")).await.unwrap();
    assert_eq!(file.size, data.len() as u64);
    for at in [0u64, 1, 1 << 20, data.len() as u64 - 5] {
        let rest = read_all(&mut file.source_at(at), file.size - at).await;
        assert_eq!(rest, data[at as usize..], "from {at}");
    }
    // Replaced after opening: the open file still reads as it was, whole (or the backend
    // refuses; it never mixes the two).
    put(s, "f.bin", &random_bytes(3 << 20)).await;
    if let Some(again) = try_read_all(&mut file.source_at(0), file.size).await {
        assert_eq!(digest(&again), digest(&data));
    }
    assert_eq!(
        code(s.open_read(name("missing")).await),
        ErrorCode::NotFound
    );
    put(s, "d/inner", b"x").await;
    assert_eq!(code(s.open_read(name("d")).await), ErrorCode::IsADirectory);
}

async fn an_upload_appears_only_on_commit_and_a_dropped_one_leaves_the_old_content(b: Backend) {
    let s = &b.storage;
    put(s, "doc", b"old").await;
    let upload = s.begin_upload(name("doc"), 6).await.unwrap();
    let mut sink = upload.sink();
    sink.write_block(Arc::from(vec![Bytes::from_static(b"new")]))
        .await
        .unwrap();
    assert_eq!(
        get(s, "doc").await.unwrap(),
        b"old",
        "not before the commit"
    );
    drop((sink, upload));
    assert_eq!(
        get(s, "doc").await.unwrap(),
        b"old",
        "a dropped upload changes nothing"
    );
    let names: Vec<_> = s
        .list(None)
        .await
        .unwrap()
        .next_page(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["doc"], "nothing staged is visible");
    // A small body received whole commits in one step and replaces.
    let upload = s.begin_upload(name("doc"), 5).await.unwrap();
    let body = vec![Bytes::from_static(b"ne"), Bytes::from_static(b"wer")];
    upload.commit_whole(body, digest(b"newer")).await.unwrap();
    assert_eq!(get(s, "doc").await.unwrap(), b"newer");
    // Parents are made; a directory is never replaced by a file.
    put(s, "a/b/c/deep", b"deep").await;
    assert_eq!(get(s, "a/b/c/deep").await.unwrap(), b"deep");
    assert_eq!(
        code(s.begin_upload(name("a/b"), 1).await),
        ErrorCode::IsADirectory
    );
}

async fn concurrent_commits_of_one_name_end_with_one_of_them_whole(b: Backend) {
    let s = b.storage.clone();
    let versions: Vec<Vec<u8>> = (0..8).map(|_| random_bytes(300 << 10)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for data in versions.clone() {
        let s = s.clone();
        tasks.spawn(async move { put(&s, "race", &data).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let got = get(&s, "race").await.unwrap();
    assert!(versions.contains(&got), "a whole version, never a mix");
}

async fn deletes_files_not_directories(b: Backend) {
    let s = &b.storage;
    put(s, "gone", b"x").await;
    put(s, "dir/kept", b"y").await;
    s.delete(name("gone")).await.unwrap();
    assert_eq!(code(get(s, "gone").await), ErrorCode::NotFound);
    assert_eq!(code(s.delete(name("gone")).await), ErrorCode::NotFound);
    assert_eq!(code(s.delete(name("dir")).await), ErrorCode::IsADirectory);
    assert_eq!(get(s, "dir/kept").await.unwrap(), b"y");
}

async fn partials_keep_what_arrived_for_the_same_client_only(b: Backend) {
    let s = &b.storage;
    let limits = qft::server::Limits::default().partials();
    let (ann, bob) = ([1u8; 32], [2u8; 32]);
    let data = random_bytes(3 << 20);
    let size = data.len() as u64;
    let Some(partial) = s
        .begin_partial(name("p.bin"), ann, size, limits)
        .await
        .unwrap()
    else {
        return; // This backend does not resume; the client falls back to plain uploads.
    };
    assert_eq!(partial.held, 0);
    let mut sink = partial.sink();
    let first = Bytes::copy_from_slice(&data[..2 << 20]);
    sink.write_block(Arc::from(vec![first])).await.unwrap();
    drop((sink, partial)); // the connection broke
    assert_eq!(
        code(get(s, "p.bin").await),
        ErrorCode::NotFound,
        "not visible"
    );

    // Another client, or another size, does not see it.
    let other = s
        .begin_partial(name("p.bin"), bob, size, limits)
        .await
        .unwrap();
    assert_eq!(other.unwrap().held, 0);
    let other = s
        .begin_partial(name("p.bin"), ann, size + 1, limits)
        .await
        .unwrap();
    assert_eq!(other.unwrap().held, 0);

    // The same client continues: keeps a prefix, appends the rest, commits.
    let partial = s
        .begin_partial(name("p.bin"), ann, size, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.held, 2 << 20);
    let held = read_all(&mut partial.source(), partial.held).await;
    assert_eq!(held, data[..2 << 20]);
    // A newer attempt of the same client takes over: the older one is told.
    let superseded = partial.superseded();
    let told = tokio::spawn(async move { superseded.notified().await });
    let newer = tokio::spawn({
        let s = s.clone();
        async move { s.begin_partial(name("p.bin"), ann, size, limits).await }
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), told)
        .await
        .expect("the older attempt is told to let go")
        .unwrap();
    drop(partial);
    let mut partial = newer.await.unwrap().unwrap().unwrap();
    partial.keep(1 << 20).await.unwrap();
    assert_eq!(partial.held, 1 << 20);
    let mut sink = partial.sink();
    let rest = Bytes::copy_from_slice(&data[1 << 20..]);
    sink.write_block(Arc::from(vec![rest])).await.unwrap();
    drop(sink);
    partial.commit(digest(&data)).await.unwrap();
    assert_eq!(digest(&get(s, "p.bin").await.unwrap()), digest(&data));

    // A discarded partial starts over next time.
    let partial = s
        .begin_partial(name("q"), ann, 10, limits)
        .await
        .unwrap()
        .unwrap();
    let mut sink = partial.sink();
    sink.write_block(Arc::from(vec![Bytes::from_static(b"12345")]))
        .await
        .unwrap();
    drop(sink);
    partial.discard().await;
    let again = s
        .begin_partial(name("q"), ann, 10, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.held, 0);
}

async fn the_private_area_is_not_addressable(b: Backend) {
    let s = &b.storage;
    for bad in [".qft/x", ".qft/tmp", ".qft"] {
        assert_eq!(
            code(s.open_read(name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.begin_upload(name(bad), 1).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.delete(name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
    }
    // Where case does not matter to the filesystem ".QFT" is the same place: never written.
    assert_eq!(
        code(s.begin_upload(name(".QFT/tmp/y"), 1).await),
        ErrorCode::InvalidName
    );
}

/// Each contract check, once per backend.
macro_rules! backends {
    ($($backend:ident),*) => {
        $(mod $backend {
            contract!(
                $backend,
                lists_page_by_page_in_name_order_without_the_private_area,
                reads_from_any_offset_of_a_fixed_snapshot,
                an_upload_appears_only_on_commit_and_a_dropped_one_leaves_the_old_content,
                concurrent_commits_of_one_name_end_with_one_of_them_whole,
                deletes_files_not_directories,
                partials_keep_what_arrived_for_the_same_client_only,
                the_private_area_is_not_addressable
            );
        })*
    };
}

macro_rules! contract {
    ($backend:ident, $($check:ident),*) => {
        $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            super::$check(super::$backend().await).await;
        })*
    };
}

backends!(local, memory, s3);
