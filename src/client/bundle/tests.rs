use super::*;
use crate::client::connect::Trust;
use crate::client::{ConnectConfig, Target};
use crate::server::{Server, ServerConfig, Storage};

/// A real server over a temp dir, and a client of it.
async fn serve(dir: &Path) -> (Client, tokio::sync::oneshot::Sender<()>) {
    let identity = crate::tls::Identity::generate().unwrap();
    let storage = Storage::open(dir).unwrap();
    let config = ServerConfig::new(storage, identity, "127.0.0.1:0".parse().unwrap());
    let server = Server::bind(config).unwrap();
    let (addr, fingerprint) = (server.local_addr().unwrap(), server.fingerprint());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let target = Target::parse(&addr.to_string()).unwrap();
    let trust = Trust {
        pin: Some(fingerprint),
        ..Trust::default()
    };
    let client = Client::connect(&ConnectConfig::new(target, trust))
        .await
        .unwrap();
    (client, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_gone_grown_or_misnamed_since_the_walk_fail_or_go_alone_and_the_rest_land() {
    let served = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (client, _stop) = serve(served.path()).await;
    let at = |name: &str| local.path().join(name);
    std::fs::write(at("a"), b"first").unwrap();
    std::fs::write(at("b"), b"second").unwrap();
    // Walked small, now too large for a bundle.
    let grown = vec![7u8; BUNDLE_FILE as usize + 1];
    std::fs::write(at("grown"), &grown).unwrap();
    std::fs::create_dir(at("dir")).unwrap();
    let files: Vec<(PathBuf, String)> = [
        ("a", "up/a"),
        ("gone", "up/gone"),
        ("grown", "up/grown"),
        ("dir", "up/dir"),
        ("b", "up/b"),
        ("a", "../outside"),
    ]
    .iter()
    .map(|(path, name)| (at(path), (*name).to_owned()))
    .collect();
    let progress = ProgressBar::hidden();
    let results = client
        .upload_bundle(&files, Keep::default(), &progress)
        .await;
    assert_eq!(results.len(), files.len(), "one result per file, in order");
    let shown: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(report) => format!("ok {} {}", report.name, report.bytes),
            Err(e) => format!("err {e}"),
        })
        .collect();
    assert_eq!(shown[0], "ok up/a 5");
    assert!(
        shown[1].starts_with("err") && shown[1].contains("gone"),
        "{}",
        shown[1]
    );
    assert_eq!(shown[2], format!("ok up/grown {}", grown.len()));
    assert!(shown[3].contains("not a regular file"), "{}", shown[3]);
    assert_eq!(shown[4], "ok up/b 6");
    assert!(
        matches!(results[5], Err(ClientError::InvalidName { .. })),
        "{}",
        shown[5]
    );
    let read = |name: &str| std::fs::read(served.path().join(name)).unwrap();
    assert_eq!(read("up/a"), b"first");
    assert_eq!(read("up/b"), b"second");
    assert_eq!(read("up/grown"), grown);
    assert!(!served.path().join("up/gone").exists());
    assert!(!served.path().join("up/dir").exists());
    assert_eq!(progress.position(), 5 + 6 + grown.len() as u64);
    client.close().await;
}

#[test]
fn pack_bundles_small_items_in_order_and_leaves_a_lone_one_alone() {
    let shape = |packed: Vec<Packed<u64>>| -> Vec<Vec<u64>> {
        packed
            .into_iter()
            .map(|p| match p {
                Packed::Alone(x) => vec![x],
                Packed::Bundle(xs) => {
                    assert!(xs.len() >= 2, "a bundle of one is no bundle");
                    xs
                }
            })
            .collect()
    };
    // 0 marks an item that may not go in a bundle.
    let small = |x: &u64| (*x > 0).then_some(*x);
    assert_eq!(
        shape(pack(vec![0, 5, 0, 6, 7], small)),
        [vec![0], vec![0], vec![5, 6, 7]]
    );
    assert_eq!(shape(pack(vec![5, 0], small)), [vec![0], vec![5]]);
    let half = BYTES / 2 + 1;
    assert_eq!(
        shape(pack(vec![half, half, half, 1], small)),
        [vec![half], vec![half], vec![half, 1]],
        "no bundle over its bytes"
    );
}
