use super::*;

fn new_share(max_uses: Option<u64>, expires_in: Duration) -> NewShare {
    NewShare {
        root: "/srv".into(),
        name: "a b.txt".into(),
        kind: ShareKind::File,
        access: ShareAccess::Read,
        expires_in,
        max_uses,
    }
}

#[test]
fn a_token_opens_its_share_only_and_is_not_kept() {
    let home = tempfile::tempdir().unwrap();
    let store = ShareStore::new(home.path());
    let (share, token) = store
        .create(new_share(None, Duration::from_secs(60)))
        .unwrap();
    assert_eq!(store.open(&token, "/srv").unwrap(), share);
    assert_eq!(store.open(&token, "/other"), Err(Refusal::Unknown));
    assert_eq!(store.open("nope", "/srv"), Err(Refusal::Unknown));
    let kept = std::fs::read_to_string(store.path(&share.id)).unwrap();
    assert!(!kept.contains(&token), "the token itself is never stored");
    let link = share.link("http://h:1/", &token, &[[7; 32]], None);
    assert!(list_line(&ShareInfo::from(&share), now()).contains("\tactive\ta b.txt"));
    assert!(
        link.contains(&format!("#t={token}&")) && link.contains("n=a%20b.txt"),
        "{link}"
    );

    assert!(store.revoke(&share.id).unwrap());
    assert!(!store.revoke(&share.id).unwrap());
    assert_eq!(store.open(&token, "/srv"), Err(Refusal::Unknown));
}

#[test]
fn uses_run_out_and_expiry_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let store = ShareStore::new(home.path());
    let (share, token) = store
        .create(new_share(Some(2), Duration::from_secs(60)))
        .unwrap();
    store.take_use(&share.id).unwrap();
    store.take_use(&share.id).unwrap();
    assert_eq!(store.take_use(&share.id), Err(Refusal::UsedUp(2)));
    assert_eq!(store.open(&token, "/srv"), Err(Refusal::UsedUp(2)));
    assert_eq!(store.list().unwrap()[0].used, 2);

    let (_, token) = store.create(new_share(None, Duration::ZERO)).unwrap();
    let refused = store.open(&token, "/srv").unwrap_err();
    assert!(
        refused.to_string().starts_with("this link expired at "),
        "{refused}"
    );
}
