use super::*;

#[test]
fn stale_partial_uploads_are_removed_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("upload-old");
    let fresh = dir.path().join("upload-fresh");
    let other = dir.path().join("keep-me");
    for p in [&old, &fresh, &other] {
        std::fs::write(p, b"x").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for p in [&old, &other] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    let fd = std::fs::File::open(dir.path()).unwrap();
    let kept = remove_stale(fd.as_fd(), "upload-", Duration::from_secs(3600), |_| true);
    assert_eq!(kept, [OsString::from("upload-fresh")]);
    assert!(!old.exists());
    assert!(fresh.exists() && other.exists());
}

#[test]
fn partials_are_admitted_within_the_limits_per_client_and_in_all() {
    let limits = PartialLimits {
        per_client: 2,
        total: 3,
    };
    let mut index = Index::default();
    let file = |client: &str, key: &str| OsString::from(format!("partial-{client}-{key}"));
    assert_eq!(index.admit(&file("a", "1"), limits), Ok(true));
    assert_eq!(index.admit(&file("a", "1"), limits), Ok(false), "known");
    assert_eq!(index.admit(&file("a", "2"), limits), Ok(true));
    assert_eq!(index.admit(&file("a", "3"), limits), Err("for this client"));
    assert_eq!(index.admit(&file("b", "1"), limits), Ok(true));
    assert_eq!(index.admit(&file("c", "1"), limits), Err("for any client"));
    index.remove(&file("a", "1"));
    assert_eq!(index.admit(&file("a", "3"), limits), Ok(true));
}
