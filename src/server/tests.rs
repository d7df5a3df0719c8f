//! Command exchanges run in process, over in-memory pipes: the handlers are generic over their
//! streams, so their choreography is checked here without QUIC (the integration suite covers
//! the same commands over the network).

use sha2::{Digest, Sha256};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::slots::Who;
use super::{download, upload, Access, Context, Limits, Permissions, Storage};
use crate::protocol::{read_frame, write_frame, Response, Resume, Trailer};

fn context() -> (Context, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let ctx = Context::new(storage, Access::Open, Permissions::ALL, Limits::default());
    (ctx, dir)
}

/// The client in these exchanges.
const WHO: Who = Who::Addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

/// Both halves of a stream as the server sees them, and the client's ends.
fn pipes() -> ((DuplexStream, DuplexStream), (DuplexStream, DuplexStream)) {
    let (client_send, server_recv) = duplex(1 << 20);
    let (server_send, client_recv) = duplex(1 << 20);
    ((server_recv, server_send), (client_send, client_recv))
}

#[tokio::test]
async fn an_upload_then_a_download_round_trip_verified() {
    let (ctx, dir) = context();
    let data: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    let sha256: [u8; 32] = Sha256::digest(&data).into();

    // Upload: Ready, the body and its trailer, then Done with the server's own hash.
    let ((mut recv, mut send), (mut c_send, mut c_recv)) = pipes();
    let size = data.len() as u64;
    let client = async {
        assert_eq!(
            read_frame::<Response, _>(&mut c_recv).await.unwrap(),
            Response::Ready
        );
        c_send.write_all(&data).await.unwrap();
        write_frame(&mut c_send, &Trailer { sha256 }).await.unwrap();
        c_send.shutdown().await.unwrap();
        drop(c_send);
        read_frame::<Response, _>(&mut c_recv).await.unwrap()
    };
    let server = async {
        let outcome = upload::run(&ctx, WHO, "d/f.bin", size, None, &mut recv, &mut send).await;
        drop(send);
        outcome
    };
    let (done, outcome) = tokio::join!(client, server);
    assert_eq!(outcome.ok(), Some(size));
    assert_eq!(done, Response::Done { sha256 });
    assert_eq!(std::fs::read(dir.path().join("d/f.bin")).unwrap(), data);

    // Download: the header, exactly `size` bytes, the trailer.
    let ((_recv, mut send), (_c_send, mut c_recv)) = pipes();
    let client = async {
        let header = read_frame::<Response, _>(&mut c_recv).await.unwrap();
        assert!(matches!(header, Response::FileHeader { size: s, .. } if s == size));
        let mut body = vec![0; data.len()];
        c_recv.read_exact(&mut body).await.unwrap();
        let trailer: Trailer = read_frame(&mut c_recv).await.unwrap();
        (body, trailer)
    };
    let server = download::run(&ctx, WHO, "d/f.bin", &mut send);
    let ((body, trailer), outcome) = tokio::join!(client, server);
    assert_eq!(outcome.ok(), Some(size));
    assert_eq!(body, data);
    assert_eq!(trailer.sha256, sha256);
}

#[tokio::test]
async fn a_resumed_download_sends_the_rest_and_the_whole_files_hash() {
    let (ctx, dir) = context();
    let data: Vec<u8> = (0..(5 << 20) + 3).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("big"), &data).unwrap();
    let ((mut recv, mut send), (mut c_send, mut c_recv)) = pipes();
    let have = (2 << 20) + 100;
    let client = async {
        let Response::Prefix {
            size,
            chunk,
            hashes,
            ..
        } = read_frame::<Response, _>(&mut c_recv).await.unwrap()
        else {
            panic!("expected the pieces of the prefix");
        };
        assert_eq!(size, data.len() as u64);
        assert_eq!(
            hashes.len() as u64,
            have / chunk,
            "whole pieces of what is held"
        );
        let from = hashes.len() as u64 * chunk;
        write_frame(&mut c_send, &Resume { from }).await.unwrap();
        let mut rest = vec![0; data.len() - from as usize];
        c_recv.read_exact(&mut rest).await.unwrap();
        let trailer: Trailer = read_frame(&mut c_recv).await.unwrap();
        (from, rest, trailer)
    };
    let server = download::run_resumable(&ctx, WHO, "big", have, false, &mut recv, &mut send);
    let ((from, rest, trailer), outcome) = tokio::join!(client, server);
    assert_eq!(outcome.ok(), Some(data.len() as u64 - from));
    assert_eq!(rest, data[from as usize..]);
    assert_eq!(trailer.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
}

#[tokio::test]
async fn a_resume_point_the_pieces_do_not_allow_is_refused() {
    let (ctx, dir) = context();
    std::fs::write(dir.path().join("f"), vec![7u8; 3 << 20]).unwrap();
    let ((mut recv, mut send), (mut c_send, mut c_recv)) = pipes();
    let client = async {
        let _prefix = read_frame::<Response, _>(&mut c_recv).await.unwrap();
        // Not a piece boundary.
        write_frame(&mut c_send, &Resume { from: 12345 })
            .await
            .unwrap();
    };
    let server = download::run_resumable(&ctx, WHO, "f", 3 << 20, false, &mut recv, &mut send);
    let ((), outcome) = tokio::join!(client, server);
    let Err(super::exchange::Failure::Refuse(code, message)) = outcome else {
        panic!("expected a refusal");
    };
    assert_eq!(code, crate::protocol::ErrorCode::BadRequest);
    assert!(message.contains("12345"), "{message}");
}

/// A whole download over pipes: the body and the trailer's hash.
async fn download_of(ctx: &Context, name: &str) -> (Vec<u8>, [u8; 32]) {
    let ((_recv, mut send), (_c_send, mut c_recv)) = pipes();
    let client = async {
        let Response::FileHeader { size, .. } = read_frame(&mut c_recv).await.unwrap() else {
            panic!("expected a file header");
        };
        let mut body = vec![0; size as usize];
        c_recv.read_exact(&mut body).await.unwrap();
        let trailer: Trailer = read_frame(&mut c_recv).await.unwrap();
        (body, trailer.sha256)
    };
    let (downloaded, outcome) = tokio::join!(client, download::run(ctx, WHO, name, &mut send));
    assert!(outcome.is_ok());
    downloaded
}

#[tokio::test]
async fn a_download_is_not_served_a_digest_of_a_file_changed_in_place_since() {
    use std::os::unix::fs::FileExt;
    let (ctx, dir) = context();
    let path = dir.path().join("f.bin");
    let old: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &old).unwrap();
    // Only a file left alone for a moment is remembered from a download (a change in the same
    // tick of the filesystem's clock could follow unseen).
    tokio::time::sleep(crate::storage::local::RACY + std::time::Duration::from_millis(300)).await;
    let digest = <[u8; 32]>::from(Sha256::digest(&old));
    assert_eq!(download_of(&ctx, "f.bin").await, (old.clone(), digest));
    let name = crate::paths::SafeName::new("f.bin").unwrap();
    let opened = ctx.storage.open_read(name.clone()).await.unwrap();
    assert_eq!(
        opened.known_sha256(),
        Some(digest),
        "the next download needs no hashing"
    );
    drop(opened);

    // The same size, and the mtime put back: only the ctime shows the change.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"changed", 1000).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    let new = std::fs::read(&path).unwrap();
    assert_eq!(
        (
            new.len(),
            std::fs::metadata(&path).unwrap().modified().unwrap()
        ),
        (old.len(), mtime)
    );
    let opened = ctx.storage.open_read(name).await.unwrap();
    assert_eq!(opened.known_sha256(), None);
    drop(opened);
    let (body, sha256) = download_of(&ctx, "f.bin").await;
    assert_eq!(body, new);
    assert_eq!(
        sha256,
        <[u8; 32]>::from(Sha256::digest(&new)),
        "the trailer is the new content's"
    );
}
