use super::*;
use object_store::ObjectStoreExt;

#[test]
fn parts_grow_so_that_any_size_fits_the_part_count() {
    assert_eq!(part_size(0), MIN_PART);
    assert_eq!(part_size(1 << 30), MIN_PART);
    // 48 GiB at 5 MiB parts would be 9,831 parts: over the limit with the margin.
    for size in [48u64 << 30, 100 << 30, 1 << 40, 5 << 40] {
        let part = part_size(size);
        assert!(size.div_ceil(part) <= MAX_PARTS, "{size}: {part}");
        assert_eq!(part % (1 << 20), 0);
    }
    assert_eq!(part_size(u64::MAX), MAX_PART);
}

#[tokio::test]
async fn parts_are_stored_in_order_and_an_object_below_one_part_is_one_put() {
    let store = Store::in_memory();
    let key = Path::from("obj");
    let mut writer = PartWriter::new(
        store.clone(),
        "obj".into(),
        key.clone(),
        1,
        Default::default(),
    );
    let data: Vec<u8> = (0..(MIN_PART as usize * 2 + 100))
        .map(|i| (i % 251) as u8)
        .collect();
    for piece in data.chunks(1 << 16) {
        writer
            .write(&[Bytes::copy_from_slice(piece)])
            .await
            .unwrap();
    }
    assert!(writer.upload_id().is_some());
    assert_eq!(writer.written(), data.len() as u64);
    writer.complete(Attributes::new()).await.unwrap();
    let got = read(&store, &key).await;
    assert_eq!(got, data);

    let small = Path::from("small");
    let mut writer = PartWriter::new(
        store.clone(),
        "small".into(),
        small.clone(),
        3,
        Default::default(),
    );
    writer.write(&[Bytes::from_static(b"abc")]).await.unwrap();
    assert!(writer.upload_id().is_none());
    writer.complete(Attributes::new()).await.unwrap();
    let got = read(&store, &small).await;
    assert_eq!(&got[..], b"abc");
}

#[tokio::test]
async fn a_hashing_writer_gives_each_part_its_hash_and_the_whole_its_digest() {
    let store = Store::in_memory();
    let key = Path::from("hashed");
    let data: Vec<u8> = (0..(MIN_PART as usize * 2 + 12345))
        .map(|i| (i % 241) as u8)
        .collect();
    let mut writer = PartWriter::new(
        store.clone(),
        "hashed".into(),
        key.clone(),
        data.len() as u64,
        Default::default(),
    )
    .hashing(Sha256::new());
    for piece in data.chunks(100_000) {
        writer
            .write(&[Bytes::copy_from_slice(piece)])
            .await
            .unwrap();
    }
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(writer.digest().await.unwrap(), digest);
    let parts = writer.parts().to_vec();
    assert_eq!(parts.len(), 3, "two whole parts and the last");
    let mut end = 0;
    for part in &parts {
        let bytes = &data[end..end + part.len as usize];
        end += part.len as usize;
        let hashed = part.hashed.as_ref().unwrap();
        assert_eq!(hashed.sha256, <[u8; 32]>::from(Sha256::digest(bytes)));
        assert_eq!(
            hashed.state.clone().finalize(),
            Sha256::digest(&data[..end]),
            "the whole object's state after the part"
        );
    }
    writer.complete(Attributes::new()).await.unwrap();
    let got = read(&store, &key).await;
    assert_eq!(got, data);

    // Continued by another writer after its first part, from the state recorded there.
    let resumed_key = Path::from("resumed");
    let mut first = PartWriter::new(
        store.clone(),
        "resumed".into(),
        resumed_key.clone(),
        data.len() as u64,
        Default::default(),
    )
    .hashing(Sha256::new());
    first
        .write(&[Bytes::copy_from_slice(&data[..MIN_PART as usize + 10])])
        .await
        .unwrap();
    first.flush().await.unwrap();
    let kept = first.parts().to_vec();
    let upload = first.upload_id().unwrap().clone();
    let state = kept[0].hashed.as_ref().unwrap().state.clone();
    let mut next = PartWriter::resume(
        store.clone(),
        "resumed".into(),
        resumed_key.clone(),
        MIN_PART,
        upload,
        kept,
    )
    .hashing(state);
    next.write(&[Bytes::copy_from_slice(&data[MIN_PART as usize..])])
        .await
        .unwrap();
    assert_eq!(next.digest().await.unwrap(), digest);
    next.complete(Attributes::new()).await.unwrap();
    let got = read(&store, &resumed_key).await;
    assert_eq!(
        got, data,
        "the second writer's parts replaced what the first had not kept"
    );
}

/// The object's bytes as the store holds them.
async fn read(store: &Store, key: &Path) -> Bytes {
    store.objects.get(key).await.unwrap().bytes().await.unwrap()
}
