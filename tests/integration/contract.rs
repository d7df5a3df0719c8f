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
    // A directory sorts by its name, not by its name and a slash (a store's key order puts
    // `x/` after `x.txt`, `x-1` and `x 2`).
    for file in [
        "many/x.txt",
        "many/x-1",
        "many/x 2",
        "many/x/inner",
        "many/xa",
    ] {
        put(s, file, b"z").await;
    }
    let mut listing = s.list(Some(name("many"))).await.unwrap();
    let mut names = Vec::new();
    loop {
        let page = listing.next_page(7).await.unwrap();
        if page.is_empty() {
            break;
        }
        names.extend(page.into_iter().map(|e| e.name));
    }
    let tail: Vec<_> = names.iter().skip(450).map(String::as_str).collect();
    assert_eq!(tail, ["sub", "x", "x 2", "x-1", "x.txt", "xa"]);
    assert_eq!(
        code(s.list(Some(name("nothing-here"))).await),
        ErrorCode::NotFound
    );
}

async fn reads_from_any_offset_of_a_fixed_snapshot(b: Backend) {
    let s = &b.storage;
    // Over two of the object backend's 8 MiB range requests.
    let data = random_bytes(17 << 20);
    put(s, "f.bin", &data).await;
    let file = s.open_read(name("f.bin")).await.unwrap();
    assert_eq!(file.size, data.len() as u64);
    for at in [
        0u64,
        1,
        (8 << 20) - 1,
        8 << 20,
        16 << 20,
        data.len() as u64 - 5,
    ] {
        let rest = read_all(&mut file.source_at(at), file.size - at).await;
        assert_eq!(rest, data[at as usize..], "from {at}");
    }
    // Replaced after opening: the open file still reads as it was, whole (or the backend
    // refuses; it never mixes the two).
    put(s, "f.bin", &random_bytes(17 << 20)).await;
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

async fn partials_are_bounded_per_client_and_in_all(b: Backend) {
    let s = &b.storage;
    let limits = qft::storage::PartialLimits {
        per_client: 2,
        total: 3,
    };
    let (ann, bob, cy) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    // Each starts a partial and breaks off with some of it stored.
    let start = |client: [u8; 32], file: &'static str| {
        let s = s.clone();
        async move {
            let partial = s.begin_partial(name(file), client, 10, limits).await?;
            let Some(partial) = partial else {
                return Ok(false);
            };
            let mut sink = partial.sink();
            sink.write_block(Arc::from(vec![Bytes::from_static(b"12345")]))
                .await
                .unwrap();
            drop((sink, partial));
            Ok::<_, StorageError>(true)
        }
    };
    if !start(ann, "a1").await.unwrap() {
        return; // This backend does not resume.
    }
    assert!(start(ann, "a2").await.unwrap());
    let refused = start(ann, "a3").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Unsupported);
    assert!(refused.to_string().contains("for this client"), "{refused}");
    assert!(start(bob, "b1").await.unwrap(), "another client has room");
    let refused = start(cy, "c1").await.unwrap_err();
    assert!(refused.to_string().contains("for any client"), "{refused}");
    // A partial already kept is continued, limits or not.
    let mut partial = s
        .begin_partial(name("a1"), ann, 10, limits)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.held, 5);
    partial.keep(5).await.unwrap();
    let mut sink = partial.sink();
    sink.write_block(Arc::from(vec![Bytes::from_static(b"67890")]))
        .await
        .unwrap();
    drop(sink);
    partial.commit(digest(b"1234567890")).await.unwrap();
    assert_eq!(get(s, "a1").await.unwrap(), b"1234567890");
    // Committed, it no longer counts: the client has room again.
    assert!(start(ann, "a4").await.unwrap());
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

// Managing names, metadata and trees.

/// The names below `dir` a walk gives, with a `/` after directories, in the walk's order.
async fn walked(storage: &Storage, dir: Option<&str>) -> Vec<String> {
    let mut walk = storage.walk(dir.map(name)).await.unwrap();
    let mut out = Vec::new();
    loop {
        let page = walk.next_page(3).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            return out;
        }
        for e in page {
            match e.kind {
                EntryKind::Dir => out.push(format!("{}/", e.name)),
                _ => out.push(e.name),
            }
        }
    }
}

async fn makes_and_removes_directories(b: Backend) {
    let s = &b.storage;
    s.make_dir(name("empty"), false).await.unwrap();
    assert_eq!(s.stat(name("empty")).await.unwrap().kind, EntryKind::Dir);
    let top: Vec<_> = s.list(None).await.unwrap().next_page(10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        (top[0].name.as_str(), top[0].kind),
        ("empty", EntryKind::Dir)
    );
    assert!(s
        .list(Some(name("empty")))
        .await
        .unwrap()
        .next_page(10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        code(s.make_dir(name("empty"), false).await),
        ErrorCode::Exists
    );
    s.make_dir(name("empty"), true).await.unwrap();
    assert_eq!(
        code(s.make_dir(name("no/such"), false).await),
        ErrorCode::NotFound
    );
    s.make_dir(name("deep/er/est"), true).await.unwrap();
    assert_eq!(walked(s, Some("deep")).await, ["er/", "er/est/"]);
    put(s, "f", b"x").await;
    assert_eq!(code(s.make_dir(name("f"), false).await), ErrorCode::Exists);
    assert_eq!(
        code(s.make_dir(name("f/sub"), true).await),
        ErrorCode::NotADirectory
    );
    // Only empty directories are removed.
    put(s, "full/inner", b"y").await;
    assert_eq!(code(s.remove_dir(name("full")).await), ErrorCode::NotEmpty);
    assert_eq!(
        code(s.remove_dir(name("f")).await),
        ErrorCode::NotADirectory
    );
    assert_eq!(
        code(s.remove_dir(name("nothing")).await),
        ErrorCode::NotFound
    );
    s.remove_dir(name("empty")).await.unwrap();
    assert_eq!(code(s.stat(name("empty")).await), ErrorCode::NotFound);
    s.remove_dir(name("deep/er/est")).await.unwrap();
    assert_eq!(walked(s, Some("deep")).await, ["er/"]);
    assert_eq!(get(s, "full/inner").await.unwrap(), b"y");
    // A directory made empty keeps existing while it holds a file, and after.
    s.make_dir(name("kept"), false).await.unwrap();
    put(s, "kept/a", b"a").await;
    s.delete(name("kept/a")).await.unwrap();
    assert_eq!(s.stat(name("kept")).await.unwrap().kind, EntryKind::Dir);
}

async fn renames_in_one_step_and_never_replaces(b: Backend) {
    let s = &b.storage;
    let kept = qft::protocol::FileMeta {
        modified: Some(1_500_000_000),
        mode: None,
    };
    let mut upload = s.begin_upload(name("old"), 5).await.unwrap();
    upload.set_meta(kept);
    upload
        .commit_whole(vec![Bytes::from_static(b"hello")], digest(b"hello"))
        .await
        .unwrap();
    s.make_dir(name("into"), false).await.unwrap();
    s.rename(name("old"), name("into/new")).await.unwrap();
    assert_eq!(code(get(s, "old").await), ErrorCode::NotFound);
    assert_eq!(get(s, "into/new").await.unwrap(), b"hello");
    assert_eq!(
        s.stat(name("into/new")).await.unwrap().modified,
        Some(1_500_000_000),
        "a renamed file keeps its time"
    );
    put(s, "other", b"other").await;
    assert_eq!(
        code(s.rename(name("other"), name("into/new")).await),
        ErrorCode::Exists
    );
    assert_eq!(
        get(s, "into/new").await.unwrap(),
        b"hello",
        "never replaced"
    );
    assert_eq!(
        code(s.rename(name("missing"), name("x")).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.rename(name("other"), name("no/dir/x")).await),
        ErrorCode::NotFound
    );
    put(s, "tree/a", b"a").await;
    match s.local_root() {
        // A filesystem renames a directory in one step...
        Some(_) => {
            s.rename(name("tree"), name("moved")).await.unwrap();
            assert_eq!(get(s, "moved/a").await.unwrap(), b"a");
            assert_eq!(
                code(s.rename(name("moved"), name("moved/in")).await),
                ErrorCode::BadRequest
            );
        }
        // ...an object store cannot, and says so.
        None => {
            let e = s.rename(name("tree"), name("moved")).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::NotAtomic);
            assert!(
                e.to_string().contains("cannot rename one in one step"),
                "{e}"
            );
            assert_eq!(get(s, "tree/a").await.unwrap(), b"a");
        }
    }
}

async fn describes_files_with_what_they_keep(b: Backend) {
    let s = &b.storage;
    let data = random_bytes(2 << 20);
    let meta = qft::protocol::FileMeta {
        modified: Some(1_234_567_890),
        mode: Some(0o4640),
    };
    // Streamed (and published as a whole) and small (in one step): both keep what was asked.
    let mut upload = s
        .begin_upload(name("big"), data.len() as u64)
        .await
        .unwrap();
    upload.set_meta(meta);
    let mut sink = upload.sink();
    sink.write_block(Arc::from(vec![Bytes::copy_from_slice(&data)]))
        .await
        .unwrap();
    drop(sink);
    upload.commit(digest(&data)).await.unwrap();
    let mut upload = s.begin_upload(name("small"), 2).await.unwrap();
    upload.set_meta(meta);
    upload
        .commit_whole(vec![Bytes::from_static(b"hi")], digest(b"hi"))
        .await
        .unwrap();
    for file in ["big", "small"] {
        let info = s.stat(name(file)).await.unwrap();
        assert_eq!(info.kind, EntryKind::File);
        assert_eq!(info.modified, Some(1_234_567_890), "{file}");
        assert_eq!(
            info.mode,
            Some(0o640),
            "{file}: permission bits only, never setuid"
        );
        assert_eq!(
            s.open_read(name(file)).await.unwrap().modified,
            Some(1_234_567_890)
        );
    }
    assert_eq!(s.stat(name("big")).await.unwrap().size, data.len() as u64);
    // What the server verified as it stored it, it knows without reading it again: a file
    // written whole keeps its digest on every backend, a streamed one in the local cache.
    let small = s.stat(name("small")).await.unwrap();
    assert_eq!(small.sha256, Some(digest(b"hi")));
    if s.local_root().is_some() {
        assert_eq!(
            s.stat(name("big")).await.unwrap().sha256,
            Some(digest(&data))
        );
    }
    assert_eq!(s.digest(name("big")).await.unwrap(), digest(&data));
    assert_eq!(s.digest(name("small")).await.unwrap(), digest(b"hi"));
    let listed = s.list(None).await.unwrap().next_page(10).await.unwrap();
    assert!(
        listed.iter().all(|e| e.modified == Some(1_234_567_890)),
        "{listed:?}"
    );
    // Resumed partials keep it too.
    let limits = qft::server::Limits::default().partials();
    if let Some(mut partial) = s
        .begin_partial(name("resumed"), [3; 32], 2, limits)
        .await
        .unwrap()
    {
        partial.set_meta(meta);
        let mut sink = partial.sink();
        sink.write_block(Arc::from(vec![Bytes::from_static(b"ok")]))
            .await
            .unwrap();
        drop(sink);
        partial.commit(digest(b"ok")).await.unwrap();
        assert_eq!(
            s.stat(name("resumed")).await.unwrap().modified,
            Some(1_234_567_890)
        );
    }
    assert_eq!(code(s.stat(name("nothing")).await), ErrorCode::NotFound);
}

async fn deletes_a_tree_and_only_that_tree(b: Backend) {
    let s = &b.storage;
    put(s, "t/a", b"1").await;
    put(s, "t/sub/b", b"2").await;
    put(s, "t/sub/deeper/c", b"3").await;
    s.make_dir(name("t/empty"), false).await.unwrap();
    put(s, "t2/kept", b"4").await;
    put(s, "t.txt", b"5").await;
    assert_eq!(s.delete_tree(name("t")).await.unwrap(), 3);
    assert_eq!(code(s.stat(name("t")).await), ErrorCode::NotFound);
    assert_eq!(get(s, "t2/kept").await.unwrap(), b"4");
    assert_eq!(get(s, "t.txt").await.unwrap(), b"5");
    assert_eq!(s.delete_tree(name("t.txt")).await.unwrap(), 1);
    assert_eq!(code(s.delete_tree(name("t")).await), ErrorCode::NotFound);
}

async fn walks_a_tree_parents_before_children(b: Backend) {
    let s = &b.storage;
    put(s, "w/b/x", b"1").await;
    put(s, "w/a.txt", b"22").await;
    put(s, "w/b/c/y", b"333").await;
    s.make_dir(name("w/empty"), false).await.unwrap();
    put(s, "outside", b"o").await;
    let names = walked(s, Some("w")).await;
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["a.txt", "b/", "b/c/", "b/c/y", "b/x", "empty/"]);
    for (i, n) in names.iter().enumerate() {
        if let Some((parent, _)) = n.trim_end_matches('/').rsplit_once('/') {
            let at = names
                .iter()
                .position(|p| *p == format!("{parent}/"))
                .unwrap();
            assert!(at < i, "{parent}/ before {n}: {names:?}");
        }
    }
    let all = walked(s, None).await;
    assert!(all.contains(&"w/b/c/y".to_string()) && all.contains(&"outside".to_string()));
    assert!(
        all.iter().all(|n| !n.to_lowercase().contains(".qft")),
        "{all:?}"
    );
    let mut walk = s.walk(Some(name("w/b"))).await.unwrap();
    let sizes: Vec<_> = walk
        .next_page(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.size))
        .collect();
    assert!(
        sizes.contains(&("c/y".into(), 3)) && sizes.contains(&("x".into(), 1)),
        "{sizes:?}"
    );
    assert_eq!(
        code(s.walk(Some(name("nothing"))).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.walk(Some(name("outside"))).await),
        ErrorCode::NotADirectory
    );
}

async fn the_private_area_is_not_managed(b: Backend) {
    let s = &b.storage;
    put(s, "f", b"x").await;
    for bad in [".qft", ".qft/tmp", ".QFT/x"] {
        assert_eq!(
            code(s.make_dir(name(bad), true).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.remove_dir(name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.delete_tree(name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.rename(name("f"), name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.rename(name(bad), name("g")).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.stat(name(bad)).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
        assert_eq!(
            code(s.walk(Some(name(bad))).await),
            ErrorCode::InvalidName,
            "{bad}"
        );
    }
    assert_eq!(get(s, "f").await.unwrap(), b"x");
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
                partials_are_bounded_per_client_and_in_all,
                the_private_area_is_not_addressable,
                makes_and_removes_directories,
                renames_in_one_step_and_never_replaces,
                describes_files_with_what_they_keep,
                deletes_a_tree_and_only_that_tree,
                walks_a_tree_parents_before_children,
                the_private_area_is_not_managed
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
