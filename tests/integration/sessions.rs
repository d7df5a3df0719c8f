//! Sessions that outlive a change on the server: permissions are asked again on every command.

use std::path::Path;

use qft::client::ClientError;
use qft::protocol::ErrorCode;
use qft::server::Access;
use qft::tls::Identity;

use crate::support::{no_progress, TestServer};

/// Writes the authorized-clients file: one `(identity, permissions)` per line.
fn write_list(path: &Path, grants: &[(&Identity, &str)]) {
    let text: String = grants
        .iter()
        .map(|(id, perms)| format!("{} {perms} test client\n", id.fingerprint()))
        .collect();
    // As an operator's editor does: a new file renamed over the old one.
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_loses_its_live_session() {
    let writer = Identity::generate().unwrap();
    let other = Identity::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("authorized_clients");
    write_list(&list, &[(&writer, "read,write,delete"), (&other, "read")]);
    let access = Access::Authorized(list.clone());
    let server = TestServer::start_with_config(|c| c.access = access).await;
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("f.txt");
    std::fs::write(&file, b"one").unwrap();

    let client = server.client_as(writer.clone()).await;
    let bystander = server.client_as(other.clone()).await;
    client.upload(&file, "a.txt", &no_progress()).await.unwrap();

    // Write taken away: the same session may still read, no longer write.
    write_list(&list, &[(&writer, "read"), (&other, "read")]);
    match client.upload(&file, "b.txt", &no_progress()).await {
        Err(ClientError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::PermissionDenied, "{message}")
        }
        other => panic!("expected permission denied, got {other:?}"),
    }
    assert!(!server.exists("b.txt"));
    assert_eq!(client.list("").await.unwrap().len(), 1);

    // Removed from the list: its next command is refused and its session closed.
    write_list(&list, &[(&other, "read")]);
    match client.list("").await {
        Err(ClientError::Refused(reason)) => {
            assert!(reason.contains("no longer authorized"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(client.delete("a.txt").await.is_err());
    assert!(server.exists("a.txt"), "nothing more was done for it");
    assert!(client.closed().is_some(), "its connection is closed");
    // Everyone else goes on.
    assert_eq!(bystander.list("").await.unwrap().len(), 1);
    server.stop().await;
}
