//! Names from the network: every bad shape is refused by the server in every command and by the
//! client before it sends, and nothing outside the served directory is touched, symlinks included.

use std::path::Path;

use qft::client::ClientError;
use qft::protocol::{EntryKind, ErrorCode, Request, Response};

use crate::support::{list_dir, no_progress, TestServer};

const BAD_NAMES: &[&str] = &[
    "..",
    ".",
    "../escape.txt",
    "a/../../escape.txt",
    "a/./b",
    "/etc/passwd",
    "a\\..\\b",
    "nul\0byte",
    "esc\x1b[2Jape",
    "new\nline",
    "a//b",
    "trailing/",
    ".qft/tmp/x",
];

/// Everything under `dir`, recursively, with contents: to prove a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in list_dir(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        let name = entry.display().to_string();
        if meta.is_dir() && !meta.file_type().is_symlink() {
            out.push((name, Vec::new()));
            out.extend(snapshot(&entry));
        } else if meta.is_file() {
            out.push((name, std::fs::read(&entry).unwrap()));
        } else {
            out.push((name, b"<link>".to_vec()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_every_bad_name_in_every_command_and_touches_nothing() {
    let server = TestServer::start().await;
    std::fs::write(server.local_outside().join("escape.txt"), b"outside").unwrap();
    std::fs::create_dir(server.local_root().join("a")).unwrap();
    std::fs::write(server.local_root().join("a/b"), b"inside").unwrap();
    let before = snapshot(server.local_outside());
    let peer = server.raw().await;
    for name in BAD_NAMES {
        let requests = [
            Request::Download {
                name: name.to_string(),
            },
            Request::Upload {
                name: name.to_string(),
                size: 7,
            },
            Request::Delete {
                name: name.to_string(),
            },
            Request::List {
                dir: name.to_string(),
            },
        ];
        for request in requests {
            match peer.exchange(&request, b"payload").await {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::InvalidName, "{request:?}: {message}");
                    assert!(
                        !message.contains('\x1b') && !message.contains('\n'),
                        "{message:?}"
                    );
                    assert!(
                        !message.contains(&*server.local_outside().to_string_lossy()),
                        "leaks a path: {message}"
                    );
                }
                other => panic!("{request:?} was not refused: {other:?}"),
            }
        }
    }
    assert_eq!(snapshot(server.local_outside()), before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_bad_names_before_sending() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f");
    std::fs::write(&src, b"x").unwrap();
    for name in BAD_NAMES.iter().filter(|n| !n.is_empty()) {
        let errs = [
            client
                .download(name, &local.path().join("out"), false, &no_progress())
                .await
                .unwrap_err(),
            client.upload(&src, name, &no_progress()).await.unwrap_err(),
            client.delete(name).await.unwrap_err(),
            client.list(name).await.unwrap_err(),
        ];
        for err in errs {
            // ".qft/tmp/x" is a plain name to the client; the server refuses it as reserved.
            if *name == ".qft/tmp/x" {
                assert!(
                    matches!(
                        err,
                        ClientError::Remote {
                            code: ErrorCode::InvalidName,
                            ..
                        }
                    ),
                    "{err}"
                );
            } else {
                assert!(
                    matches!(err, ClientError::InvalidName { .. }),
                    "{name:?}: {err}"
                );
                assert!(!err.to_string().contains('\x1b'), "{err}");
            }
        }
    }
    assert_eq!(
        list_dir(local.path()).len(),
        1,
        "nothing was written locally"
    );
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_never_lead_out_of_the_served_directory() {
    use std::os::unix::fs::symlink;
    let server = TestServer::start().await;
    let outside = server.local_outside();
    std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
    symlink(outside, server.local_root().join("out")).unwrap();
    symlink(
        outside.join("secret.txt"),
        server.local_root().join("outfile"),
    )
    .unwrap();
    std::fs::write(server.local_root().join("real.txt"), b"inside").unwrap();
    symlink(
        server.local_root().join("real.txt"),
        server.local_root().join("inlink"),
    )
    .unwrap();
    let before = snapshot(outside);

    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("new.txt");
    std::fs::write(&src, b"new").unwrap();
    let refused = |r: Result<(), ClientError>| match r {
        Err(ClientError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::InvalidName, "{message}");
            assert!(
                message.contains("outside the served directory"),
                "{message}"
            );
        }
        other => panic!("not refused: {other:?}"),
    };
    refused(
        client
            .download("outfile", &local.path().join("a"), false, &no_progress())
            .await
            .map(|_| ()),
    );
    refused(
        client
            .download(
                "out/secret.txt",
                &local.path().join("b"),
                false,
                &no_progress(),
            )
            .await
            .map(|_| ()),
    );
    refused(
        client
            .upload(&src, "out/new.txt", &no_progress())
            .await
            .map(|_| ()),
    );
    refused(
        client
            .upload(&src, "out/deeper/new.txt", &no_progress())
            .await
            .map(|_| ()),
    );
    refused(client.delete("out/secret.txt").await);
    refused(client.list("out").await.map(|_| ()));
    assert_eq!(snapshot(outside), before, "nothing outside changed");

    // The listing does not describe what an escaping link points at.
    let listing = client.list("").await.unwrap();
    let kind = |n: &str| listing.iter().find(|e| e.name == n).unwrap().kind;
    assert_eq!(kind("out"), EntryKind::Other);
    assert_eq!(kind("outfile"), EntryKind::Other);
    assert_eq!(kind("inlink"), EntryKind::File);

    // Deleting the escaping link removes the link (it lives inside), never what it names.
    client.delete("outfile").await.unwrap();
    assert!(std::fs::symlink_metadata(server.local_root().join("outfile")).is_err());
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).unwrap(),
        b"secret"
    );

    // A link that stays inside works like the file it names.
    client
        .download("inlink", &local.path().join("c"), false, &no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(local.path().join("c")).unwrap(), b"inside");
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_inside_link_removes_the_link_not_the_file() {
    let server = TestServer::start().await;
    std::fs::write(server.local_root().join("real.txt"), b"keep").unwrap();
    std::os::unix::fs::symlink("real.txt", server.local_root().join("link")).unwrap();
    let client = server.client().await;
    client.delete("link").await.unwrap();
    assert!(std::fs::symlink_metadata(server.local_root().join("link")).is_err());
    assert_eq!(
        std::fs::read(server.local_root().join("real.txt")).unwrap(),
        b"keep"
    );
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_area_cannot_be_reached_through_a_link_to_the_root() {
    let server = TestServer::start().await;
    std::os::unix::fs::symlink(".", server.local_root().join("self")).unwrap();
    std::fs::write(
        server.local_root().join(".qft/tmp/upload-someone-else"),
        b"in progress",
    )
    .unwrap();
    let before = snapshot(server.local_outside());
    let client = server.client().await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("x");
    std::fs::write(&src, b"x").unwrap();

    let listing = client.list("self").await.unwrap();
    assert!(
        listing.iter().all(|e| !e.name.eq_ignore_ascii_case(".qft")),
        "{listing:?}"
    );
    for name in [
        "self/.qft/tmp/upload-someone-else",
        ".QFT/tmp/upload-someone-else",
        "self/.qft",
    ] {
        let attempts = [
            client
                .download(name, &local.path().join("y"), false, &no_progress())
                .await
                .map(|_| ()),
            client.upload(&src, name, &no_progress()).await.map(|_| ()),
            client.delete(name).await,
            client.list(name).await.map(|_| ()),
        ];
        for result in attempts {
            match result {
                Err(ClientError::Remote { code, .. }) => assert!(
                    matches!(code, ErrorCode::InvalidName | ErrorCode::NotFound),
                    "{name}: {code:?}"
                ),
                other => panic!("{name}: not refused: {other:?}"),
            }
        }
    }
    assert_eq!(snapshot(server.local_outside()), before);
    server.stop().await;
}
