//! Every command through the library API, big files both ways, concurrency, shutdown.

use std::time::Duration;

use qft::client::ClientError;
use qft::protocol::{read_frame, write_frame, EntryKind, ErrorCode, Request, Response, Trailer};
use sha2::{Digest, Sha256};

use crate::support::{no_progress, random_bytes, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_through_the_library() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();

    assert!(
        client.list("").await.unwrap().is_empty(),
        "a fresh root lists nothing, not .qft"
    );

    let src = local.path().join("hello.txt");
    std::fs::write(&src, b"hello, qft\n").unwrap();
    let up = client
        .upload(&src, "hello.txt", &no_progress())
        .await
        .unwrap();
    assert_eq!(up.bytes, 11);
    assert_eq!(up.sha256, <[u8; 32]>::from(Sha256::digest(b"hello, qft\n")));
    assert_eq!(server.read("hello.txt").unwrap(), b"hello, qft\n");

    server.mkdir("sub");
    let listing = client.list("").await.unwrap();
    let names: Vec<_> = listing
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        names,
        [
            ("hello.txt", EntryKind::File, 11),
            ("sub", EntryKind::Dir, 0)
        ]
    );
    assert!(listing[0].modified.is_some());

    let dest = local.path().join("copy.txt");
    let down = client
        .download("hello.txt", &dest, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(down.sha256, up.sha256);
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello, qft\n");

    let help = client.help().await.unwrap();
    let names: Vec<_> = help.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "LIST", "UPLOAD", "DOWNLOAD", "DELETE", "MKDIR", "RMDIR", "RENAME", "STAT", "SUM",
            "SYNC", "DF", "SHARE", "HELP", "LOGOUT", "SHUTDOWN"
        ]
    );
    assert!(help
        .iter()
        .all(|c| !c.usage.is_empty() && !c.summary.is_empty()));

    client.delete("hello.txt").await.unwrap();
    assert!(!server.exists("hello.txt"));
    let again = client.delete("hello.txt").await.unwrap_err();
    assert!(
        matches!(
            again,
            ClientError::Remote {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{again}"
    );
    let dir = client.delete("sub").await.unwrap_err();
    assert!(
        matches!(
            dir,
            ClientError::Remote {
                code: ErrorCode::IsADirectory,
                ..
            }
        ),
        "{dir}"
    );
    assert!(server.is_dir("sub"));

    client.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_megabyte_random_file_round_trips_both_ways() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    // Not a multiple of the copy block, so the last partial block is exercised.
    let data = random_bytes(8 * 1024 * 1024 + 12345);
    let src = local.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();

    client
        .upload(&src, "nested/dir/big.bin", &no_progress())
        .await
        .unwrap();
    assert_eq!(server.read("nested/dir/big.bin").unwrap(), data);

    // And a different file the other way, placed on the server directly.
    let other = random_bytes(5 * 1024 * 1024 + 7);
    server.put("other.bin", &other);
    let dest = local.path().join("other.bin");
    let report = client
        .download("other.bin", &dest, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(report.bytes, other.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), other);
    assert!(server.staged().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_never_replaces_a_local_file_unless_asked() {
    let server = TestServer::start().await;
    server.put("f", b"new");
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("f");
    std::fs::write(&dest, b"mine").unwrap();
    let err = client
        .download("f", &dest, false, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
    client
        .download("f", &dest, true, &no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    assert_eq!(
        crate::support::list_dir(local.path()).len(),
        1,
        "no temp file left beside it"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_replaces_an_existing_file_whole() {
    let server = TestServer::start().await;
    server.put("f", b"old content");
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"new").unwrap();
    client.upload(&src, "f", &no_progress()).await.unwrap();
    assert_eq!(server.read("f").unwrap(), b"new");
    // A directory is never replaced by a file.
    server.mkdir("d");
    let err = client.upload(&src, "d", &no_progress()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Remote {
                code: ErrorCode::IsADirectory,
                ..
            }
        ),
        "{err}"
    );
    assert!(server.is_dir("d"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_at_once_each_upload_and_download_their_own_files() {
    // All from 127.0.0.1, so above the default per-address limit.
    let server = TestServer::start_with_config(|c| c.limits.max_connections_per_ip = 32).await;
    let local = tempfile::tempdir().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let client = server.client().await;
        let dir = local.path().to_path_buf();
        tasks.spawn(async move {
            let data = random_bytes(256 * 1024 + i);
            let src = dir.join(format!("up-{i}"));
            std::fs::write(&src, &data).unwrap();
            client
                .upload(&src, &format!("file-{i}"), &no_progress())
                .await
                .unwrap();
            let back = dir.join(format!("down-{i}"));
            client
                .download(&format!("file-{i}"), &back, false, &no_progress())
                .await
                .unwrap();
            assert_eq!(std::fs::read(&back).unwrap(), data, "client {i}");
            client.close().await;
            data
        });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
        done += 1;
    }
    assert_eq!(done, 20);
    let mut want: Vec<String> = (0..20).map(|i| format!("file-{i}")).collect();
    want.sort();
    assert_eq!(server.names(""), want, "the 20 files");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_does_not_hold_up_other_commands_on_its_connection() {
    let server = TestServer::start().await;
    server.put("big", random_bytes(16 * 1024 * 1024));
    let peer = server.raw().await;
    // A download nobody reads, held to the end (dropping it would cancel it): the server fills
    // the flow-control window and waits.
    let (_stalled, size) = peer.begin_download("big").await;
    assert_eq!(size, 16777216);
    // Meanwhile, other commands on the same connection are answered at once.
    for _ in 0..3 {
        let (entries, _) = tokio::time::timeout(Duration::from_secs(5), peer.list_root())
            .await
            .expect("LIST answered while a download is stalled");
        assert_eq!(entries.len(), 1, "{entries:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_download_finish_then_closes_clients() {
    let server = TestServer::start().await;
    let data = random_bytes(8 * 1024 * 1024);
    server.put("f", &data);
    let peer = server.raw().await;
    let (mut recv, _) = peer.begin_download("f").await;
    // The transfer is under way (we hold it back by not reading) when the server is told to stop.
    let mut first = vec![0u8; 1024];
    recv.read_exact(&mut first).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the running command"
    );
    // Reading the rest: the whole body and a matching trailer arrive.
    let mut rest = vec![0u8; data.len() - first.len()];
    recv.read_exact(&mut rest).await.unwrap();
    first.extend_from_slice(&rest);
    assert_eq!(first, data);
    let trailer: Trailer = read_frame(&mut recv).await.unwrap();
    assert_eq!(trailer.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
    stopping.await.unwrap();
    // And then the connection is closed.
    let after = peer.conn.open_bi().await;
    let closed = match after {
        Err(_) => true,
        Ok((mut s, mut r)) => {
            let _ = write_frame(&mut s, &Request::Help).await;
            read_frame::<Response, _>(&mut r).await.is_err()
        }
    };
    assert!(closed, "no command is served after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_into_the_same_new_directory_all_succeed() {
    let server = TestServer::start().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"same").unwrap();
    let client = std::sync::Arc::new(server.client().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, src) = (client.clone(), src.clone());
        tasks.spawn(async move {
            client
                .upload(&src, &format!("new/deeper/f{i}"), &no_progress())
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(server.names("new/deeper").len(), 8);
    server.stop().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transferred_files_get_normal_permissions_and_replacements_keep_theirs() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"data").unwrap();

    client.upload(&src, "new", &no_progress()).await.unwrap();
    assert_eq!(
        mode(&server.local_root().join("new")),
        0o666 & !umask,
        "as if created directly"
    );
    let fetched = local.path().join("fetched");
    client
        .download("new", &fetched, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(mode(&fetched), 0o666 & !umask);

    std::fs::write(server.local_root().join("kept"), b"old").unwrap();
    std::fs::set_permissions(
        server.local_root().join("kept"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    client.upload(&src, "kept", &no_progress()).await.unwrap();
    assert_eq!(
        mode(&server.local_root().join("kept")),
        0o640,
        "a replace keeps the old mode"
    );
    std::fs::set_permissions(&fetched, std::fs::Permissions::from_mode(0o604)).unwrap();
    client
        .download("kept", &fetched, true, &no_progress())
        .await
        .unwrap();
    assert_eq!(mode(&fetched), 0o604);
    server.stop().await;
}

/// On loopback (a short path) both ends shrink their connection's receive window to a few MiB
/// once the handshake has measured the round trip, and quinn takes the difference out of the
/// credit it gives back: a body several times the configured 24 MiB must still move whole,
/// both ways, and not stall once the first window is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_first_window_moves_whole_on_a_short_path() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(56 << 20);
    let path = local.path().join("big.bin");
    std::fs::write(&path, &data).unwrap();
    let limit = Duration::from_secs(120);
    tokio::time::timeout(limit, client.upload(&path, "big.bin", &no_progress()))
        .await
        .expect("the upload stalled")
        .unwrap();
    assert!(
        server.read("big.bin").unwrap() == data,
        "the upload differs"
    );
    let back = local.path().join("back.bin");
    tokio::time::timeout(
        limit,
        client.download("big.bin", &back, false, &no_progress()),
    )
    .await
    .expect("the download stalled")
    .unwrap();
    assert!(
        std::fs::read(&back).unwrap() == data,
        "the download differs"
    );
}
