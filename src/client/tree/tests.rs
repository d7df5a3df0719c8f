use super::*;

fn parts(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

#[test]
fn directories_are_made_but_never_through_a_link() {
    let base = tempfile::tempdir().unwrap();
    let made = ensure_dirs(base.path(), &parts(&["a", "b"])).unwrap();
    assert!(made.is_dir() && made.ends_with("a/b"));
    assert_eq!(ensure_dirs(base.path(), &parts(&["a", "b"])).unwrap(), made);
    std::fs::write(base.path().join("file"), b"x").unwrap();
    let err = ensure_dirs(base.path(), &parts(&["file", "x"])).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), base.path().join("link")).unwrap();
        let err = ensure_dirs(base.path(), &parts(&["link", "x"])).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!outside.path().join("x").exists());
    }
}

#[test]
fn a_local_walk_lists_files_and_skips_links_and_empty_dirs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("d/e")).unwrap();
    std::fs::create_dir(root.path().join("empty")).unwrap();
    std::fs::write(root.path().join("d/e/f.txt"), b"abc").unwrap();
    std::fs::write(root.path().join("top"), b"").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tree = rt.block_on(walk_local(root.path().to_path_buf()));
    let files: Vec<_> = tree
        .files
        .iter()
        .map(|(_, p, s)| (p.join("/"), *s))
        .collect();
    assert_eq!(
        files,
        [("d/e/f.txt".to_string(), 3), ("top".to_string(), 0)]
    );
    let reasons: Vec<_> = tree.skipped.iter().map(|s| s.reason).collect();
    assert!(reasons.iter().any(|r| r.contains("empty")), "{reasons:?}");
    #[cfg(unix)]
    assert!(reasons.iter().any(|r| r.contains("symlink")), "{reasons:?}");
    assert!(tree.failed.is_empty());
}

#[test]
fn a_tree_is_bounded_by_what_its_entries_really_cost() {
    let limits = TreeLimits::default();
    let deep: Vec<String> = (0..63).map(|i| format!("d{i}")).collect();
    let shallow: Vec<String> = ["photos", "2026", "march"].map(String::from).to_vec();
    let cost = |parent: &[String], n: usize| n * entry_cost(parent, "IMG_0001.jpg");
    // The malicious server's 999k entries 63 levels deep: far over.
    assert!(cost(&deep, 999_000) > 10 * limits.memory);
    // A real million files three levels down: within.
    assert!(cost(&shallow, 1_000_000) < limits.memory);
}

/// A server whose every directory lists as `answer` says, and a client of it.
async fn fake(answer: fn(&str) -> Vec<Entry>) -> (Client, quinn::Endpoint) {
    use crate::protocol::{read_frame, write_frame, Request, Response};
    let identity = crate::tls::Identity::generate().unwrap();
    let transport = quinn::TransportConfig::default();
    let config = crate::tls::server_config(&identity, false, transport).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let Ok(conn) = incoming.await else { continue };
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let Ok(Request::List { dir }) = read_frame(&mut recv).await else {
                        continue;
                    };
                    let entries = answer(&dir);
                    let pages: Vec<_> = entries.chunks(200).collect();
                    for (i, page) in pages.iter().enumerate() {
                        let page = Response::ListPage {
                            entries: page.to_vec(),
                            last: i + 1 == pages.len(),
                        };
                        write_frame(&mut send, &page).await.unwrap();
                    }
                    let _ = send.finish();
                }
            });
        }
    });
    let trust = super::super::Trust {
        pin: Some(identity.fingerprint()),
        ..Default::default()
    };
    let target = super::super::Target::parse(&addr.to_string()).unwrap();
    let config = super::super::ConnectConfig::new(target, trust);
    (Client::connect(&config).await.unwrap(), endpoint)
}

fn entry(name: String, kind: EntryKind) -> Entry {
    Entry {
        name,
        kind,
        size: 1,
        modified: Some(1_700_000_000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_faking_endless_nesting_is_refused_by_what_it_would_cost() {
    // Every directory: one more directory, and 100 files. 64 levels of that is only 6,400
    // entries, but each path deep down costs far more than its bytes.
    let (client, _server) = fake(|dir| {
        let depth = dir.matches('/').count();
        let mut all = vec![entry("d".into(), EntryKind::Dir)];
        all.extend((0..100).map(|i| entry(format!("f{i}-{depth}"), EntryKind::File)));
        all
    })
    .await;
    let limits = TreeLimits {
        entries: 1_000_000,
        memory: 4 << 20,
    };
    let err = walk_remote_within(&client, "top", limits)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("4 MiB of paths"), "{err}");
    // By bytes alone (the old bound) the same tree fits: 64 levels of 100 names, each with
    // its directory's path ("top/d/d/...").
    let by_bytes: usize = (0..64).map(|depth| 100 * (depth * 2 + 3 + 6)).sum();
    assert!(by_bytes < limits.memory);
    let err = walk_remote_within(
        &client,
        "top",
        TreeLimits {
            entries: 1000,
            ..limits
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("more than 1000 entries"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_lists_as_one_above_it_is_skipped_not_walked() {
    // "top" holds a file and "loop", which is "top" again (a link to "."); "top/sub" holds
    // a file of its own and so is walked.
    let (client, _server) = fake(|dir| match dir {
        "top/sub" => vec![entry("g".into(), EntryKind::File)],
        _ => vec![
            entry("f".into(), EntryKind::File),
            entry("loop".into(), EntryKind::Dir),
            entry("sub".into(), EntryKind::Dir),
        ],
    })
    .await;
    let tree = walk_remote(&client, "top").await.unwrap();
    let files: Vec<String> = tree.files.iter().map(|(p, _)| p.join("/")).collect();
    assert_eq!(files, ["f", "sub/g"]);
    assert_eq!(tree.skipped.len(), 1, "{:?}", tree.skipped);
    assert_eq!(tree.skipped[0].name, "top/loop");
    assert!(tree.skipped[0].reason.contains("link back up"));
}
