//! A hostile server against the client: one that stalls half way through an answer, sends more
//! than it announced, or feeds a `get -r` without end (a loop of links does that too). The client
//! fails the command with a clear reason, holds bounded memory and leaves nothing behind.

use std::time::Duration;

use qft::client::{Client, ClientError};
use qft::protocol::{read_frame, write_frame, Entry, EntryKind, Request, Response, Resume};

use crate::support::{client_of, fake_server, list_dir, no_progress};

/// Waits for the server's side of a stream to be dropped by the client, holding it open till
/// then: a server that sends nothing more but does not go away.
async fn stall(send: quinn::SendStream) {
    let _ = send.stopped().await;
}

/// A server that answers each request with the start of a reply, then nothing.
async fn stalling_server() -> (std::net::SocketAddr, qft::tls::Fingerprint, quinn::Endpoint) {
    fake_server(|request, mut send, mut recv| async move {
        match request {
            // A header and ten bytes of a thousand.
            Request::ResumeDownload { .. } => {
                let prefix = Response::Prefix {
                    size: 1000,
                    modified: None,
                    chunk: 1 << 20,
                    hashes: Vec::new(),
                };
                write_frame(&mut send, &prefix).await.unwrap();
                let _ = read_frame::<Resume, _>(&mut recv).await;
                send.write_all(&[7; 10]).await.unwrap();
            }
            // One page of a listing that never ends.
            Request::List { .. } => {
                let page = Response::ListPage {
                    entries: vec![Entry {
                        name: "a".into(),
                        kind: EntryKind::File,
                        size: 1,
                        modified: None,
                    }],
                    last: false,
                };
                write_frame(&mut send, &page).await.unwrap();
            }
            // Ready for an upload, and then never reads it.
            Request::ResumeUpload { .. } => {
                let no = Response::Error {
                    code: qft::protocol::ErrorCode::Unsupported,
                    message: "old server".into(),
                };
                write_frame(&mut send, &no).await.unwrap();
                return;
            }
            Request::Upload { .. } => {
                write_frame(&mut send, &Response::Ready).await.unwrap();
                std::mem::forget(recv);
            }
            // No answer at all.
            _ => {}
        }
        stall(send).await;
    })
    .await
}

/// Runs `what`, which must fail as stalled within a few stall timeouts.
async fn stalls<T: std::fmt::Debug>(
    what: &str,
    op: impl std::future::Future<Output = Result<T, ClientError>>,
) {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(20), op)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 20 s"));
    match result {
        Err(e @ ClientError::Stalled(_)) => {
            assert!(e.to_string().contains("stopped answering"), "{what}: {e}");
            assert_eq!(e.code(), "stalled");
        }
        other => panic!("{what}: expected a stall, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{what}: not before the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_fails_each_command_within_the_stall_timeout() {
    let (addr, fp, _server) = stalling_server().await;
    let client: Client = client_of(addr, fp, |c| c.stall_timeout = Duration::from_secs(1)).await;
    let local = tempfile::tempdir().unwrap();

    stalls(
        "a download body",
        client.download("f", &local.path().join("f"), false, &no_progress()),
    )
    .await;
    // What did arrive waits in the partial, to resume, as for any interrupted download.
    assert_eq!(list_dir(local.path()).len(), 1);
    stalls("a listing", client.list("")).await;
    stalls("a response", client.delete("f")).await;
    let big = local.path().join("big");
    std::fs::write(&big, vec![1u8; 8 << 20]).unwrap();
    stalls("an upload body", client.upload(&big, "big", &no_progress())).await;
}

#[cfg(unix)]
#[test]
fn get_r_follows_no_directory_link_into_a_loop() {
    use crate::shell::{json_lines, read_tree, stderr, Shell};
    let sh = Shell::start();
    sh.served()
        .put_all(&[("d/f.txt", b"f"), ("d/sub/g.txt", b"g")]);
    // Links inside the served directory, back up to where they are.
    let root = sh.served().local_root();
    std::os::unix::fs::symlink(".", root.join("d/self")).unwrap();
    std::os::unix::fs::symlink("..", root.join("d/sub/up")).unwrap();
    let get = sh.qft(&["get", "-r", "d", "--json"]).output().unwrap();
    assert!(get.status.success(), "{}", stderr(&get));
    let skipped: Vec<String> = json_lines(&get)
        .iter()
        .filter(|r| r["type"] == "skipped")
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(skipped, ["d/self", "d/sub/up"]);
    let copied: Vec<String> = read_tree(&sh.local().join("d"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(copied, ["f.txt", "sub/", "sub/g.txt"]);
}

#[test]
fn names_that_display_as_something_else_are_escaped_wherever_printed() {
    use crate::shell::{stderr, stdout, Shell};
    // Shown raw, it reads "invoiceexe.pdf"; with a zero-width space, "pay" looks like "pay".
    let evil = "invoice\u{202E}fdp.exe";
    let sh = Shell::start();
    sh.served().put_all(&[(evil, b"x"), ("pa\u{200B}y", b"y")]);
    let clean = |text: &str| !text.chars().any(qft::paths::is_deceptive);
    let list = sh.qft(&["list"]).output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let shown = stdout(&list);
    assert!(clean(&shown), "{shown:?}");
    assert!(shown.contains("invoice\\u{202e}fdp.exe"), "{shown}");
    assert!(shown.contains("pa\\u{200b}y"), "{shown}");
    let get = sh.qft(&["get", evil]).output().unwrap();
    assert!(get.status.success(), "{}", stderr(&get));
    assert!(clean(&stdout(&get)), "{:?}", stdout(&get));
    assert!(
        sh.local().join(evil).exists(),
        "the file keeps its real name"
    );
    // The same again: skipped as identical, and the line names the file escaped too.
    let again = sh.qft(&["get", evil]).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let shown = stdout(&again);
    assert!(clean(&shown) && shown.starts_with("skipped\t"), "{shown:?}");
    // A local file that differs: refused, and the refusal names the file escaped too.
    std::fs::write(sh.local().join(evil), b"mine").unwrap();
    let again = sh.qft(&["get", evil]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let err = stderr(&again);
    assert!(clean(&err) && err.contains("already exists"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sending_bytes_after_the_body_leaves_no_partial_behind() {
    use sha2::{Digest, Sha256};
    let body = crate::support::random_bytes(3 << 20);
    let sha256: [u8; 32] = Sha256::digest(&body).into();
    let body = std::sync::Arc::new(body);
    let (addr, fp, _server) = fake_server(move |_, mut send, mut recv| {
        let body = body.clone();
        async move {
            let prefix = Response::Prefix {
                size: body.len() as u64,
                modified: None,
                chunk: 1 << 20,
                hashes: Vec::new(),
            };
            write_frame(&mut send, &prefix).await.unwrap();
            let _ = read_frame::<Resume, _>(&mut recv).await;
            // The whole body and its right hash, then more.
            let _ = send.write_all(&body).await;
            let _ = write_frame(&mut send, &qft::protocol::Trailer { sha256 }).await;
            let _ = send.write_all(b"and one more thing").await;
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    })
    .await;
    let client = client_of(addr, fp, |_| {}).await;
    let local = tempfile::tempdir().unwrap();
    let err = client
        .download("f", &local.path().join("f"), false, &no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("after the end"), "{err}");
    let left = list_dir(local.path());
    assert!(
        left.is_empty(),
        "neither the file nor a hidden partial: {left:?}"
    );
}
