//! Issue 14: compressed bodies (`-C`). What crosses the network shrinks for data that
//! compresses, the files arrive whole and verified either way, and a server without
//! compression gets the plain exchange.

use std::sync::{Arc, Mutex};

use qft::protocol::{read_frame, write_frame, ErrorCode, Request, Response, Trailer};
use sha2::{Digest, Sha256};

use crate::shell::{stderr, Shell};
use crate::support::{client_of, no_progress, random_bytes, TestServer};

/// Text that compresses well, as logs do.
fn log_text(len: usize) -> Vec<u8> {
    (0u64..)
        .flat_map(|i| {
            format!(
                "2026-11-29T10:{:02}:{:02}Z GET /item/{i} 200\n",
                i % 60,
                i % 59
            )
            .into_bytes()
        })
        .take(len)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_transfers_round_trip_and_send_less() {
    let server = TestServer::start().await;
    // With a key of its own: compressed uploads go the resumable way, which needs one.
    let client = client_of(server.addr, server.fingerprint, |c| {
        c.compress = true;
        c.identity = Some(qft::tls::Identity::generate().unwrap());
    })
    .await;
    let local = tempfile::tempdir().unwrap();
    let text = log_text(6 << 20);
    let path = local.path().join("app.log");
    std::fs::write(&path, &text).unwrap();

    let (sent_before, _) = client.wire_bytes();
    let up = client
        .upload(&path, "app.log", &no_progress())
        .await
        .unwrap();
    let (sent_after, _) = client.wire_bytes();
    assert_eq!(server.read("app.log").unwrap(), text);
    assert_eq!(
        up.sha256,
        <[u8; 32]>::from(Sha256::digest(&text)),
        "the file's own digest"
    );
    assert!(
        sent_after - sent_before < text.len() as u64 / 3,
        "{} bytes on the wire for {}",
        sent_after - sent_before,
        text.len()
    );

    let (_, got_before) = client.wire_bytes();
    let back = local.path().join("back.log");
    client
        .download("app.log", &back, false, &no_progress())
        .await
        .unwrap();
    let (_, got_after) = client.wire_bytes();
    assert_eq!(std::fs::read(&back).unwrap(), text);
    assert!(got_after - got_before < text.len() as u64 / 3);

    // Data that does not shrink goes as it is, whole.
    let noise = random_bytes(3 << 20);
    let path = local.path().join("noise.bin");
    std::fs::write(&path, &noise).unwrap();
    client
        .upload(&path, "noise.bin", &no_progress())
        .await
        .unwrap();
    assert_eq!(server.read("noise.bin").unwrap(), noise);
    let back = local.path().join("noise.back");
    client
        .download("noise.bin", &back, false, &no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), noise);
}

/// A server of before compression: it knows neither resuming nor compressing, and answers
/// plain downloads and uploads. Records what it was asked.
fn old_server(asked: Arc<Mutex<Vec<String>>>, file: Vec<u8>) -> Shell {
    Shell::fake(move |request, mut send, mut recv| {
        let (asked, file) = (asked.clone(), file.clone());
        async move {
            asked.lock().unwrap().push(
                format!("{request:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_owned(),
            );
            match request {
                Request::Download { .. } => {
                    let header = Response::FileHeader {
                        size: file.len() as u64,
                        modified: None,
                    };
                    write_frame(&mut send, &header).await.unwrap();
                    send.write_all(&file).await.unwrap();
                    let sha256 = Sha256::digest(&file).into();
                    write_frame(&mut send, &Trailer { sha256 }).await.unwrap();
                }
                Request::Upload { size, .. } => {
                    write_frame(&mut send, &Response::Ready).await.unwrap();
                    let mut body = vec![0u8; size as usize];
                    recv.read_exact(&mut body).await.unwrap();
                    let trailer: Trailer = read_frame(&mut recv).await.unwrap();
                    assert_eq!(trailer.sha256, <[u8; 32]>::from(Sha256::digest(&body)));
                    let done = Response::Done {
                        sha256: trailer.sha256,
                    };
                    write_frame(&mut send, &done).await.unwrap();
                }
                _ => {
                    let no = Response::Error {
                        code: ErrorCode::Unsupported,
                        message: "unknown request".into(),
                    };
                    write_frame(&mut send, &no).await.unwrap();
                }
            }
            let _ = send.finish();
            let _ = send.stopped().await;
        }
    })
}

#[test]
fn compression_falls_back_against_a_server_that_lacks_it() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let file = log_text(2 << 20);
    let sh = old_server(asked.clone(), file.clone());
    let out = sh.qft(&["-C", "get", "big.log"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(sh.local().join("big.log")).unwrap(), file);
    assert_eq!(
        *asked.lock().unwrap(),
        ["ResumeDownloadCompressed", "Download"],
        "asked for compression first, then the plain exchange"
    );
    asked.lock().unwrap().clear();
    std::fs::write(sh.local().join("up.log"), &file).unwrap();
    let out = sh.qft(&["--compress", "put", "up.log"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(*asked.lock().unwrap(), ["ResumeUploadCompressed", "Upload"]);
}
