//! Property tests of the wire format: every message survives encode/decode unchanged, and no byte
//! string, however hostile, makes the decoder panic or accept trailing garbage. (The fuzz targets
//! in `fuzz/` explore the same properties far longer, with coverage guidance.)

use proptest::prelude::*;

use super::frame::{decode, encode, read_frame};
use super::*;

fn name() -> impl Strategy<Value = String> {
    // Names are not validated by the codec, so any string must round-trip.
    prop_oneof![".{0,40}", "[a-z/]{1,20}"]
}

fn code() -> impl Strategy<Value = ErrorCode> {
    any::<u16>().prop_map(ErrorCode::from)
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        name(),
        prop_oneof![
            Just(EntryKind::File),
            Just(EntryKind::Dir),
            Just(EntryKind::Other)
        ],
        any::<u64>(),
        any::<Option<u64>>(),
    )
        .prop_map(|(name, kind, size, modified)| Entry {
            name,
            kind,
            size,
            modified,
        })
}

fn meta() -> impl Strategy<Value = FileMeta> {
    (any::<Option<u64>>(), any::<Option<u32>>())
        .prop_map(|(modified, mode)| FileMeta { modified, mode })
}

fn info() -> impl Strategy<Value = EntryInfo> {
    (entry(), any::<Option<u32>>(), any::<Option<[u8; 32]>>()).prop_map(|(e, mode, sha256)| {
        EntryInfo {
            name: e.name,
            kind: e.kind,
            size: e.size,
            modified: e.modified,
            mode,
            sha256,
        }
    })
}

/// The variants added for managing names, metadata and trees.
fn managing() -> impl Strategy<Value = Request> {
    prop_oneof![
        (name(), any::<bool>()).prop_map(|(name, parents)| Request::MakeDir { name, parents }),
        name().prop_map(|name| Request::RemoveDir { name }),
        (name(), name()).prop_map(|(from, to)| Request::Rename { from, to }),
        (name(), any::<bool>()).prop_map(|(name, digest)| Request::Stat { name, digest }),
        name().prop_map(|name| Request::DeleteTree { name }),
        name().prop_map(|dir| Request::Walk { dir }),
        (name(), any::<u64>(), meta()).prop_map(|(name, size, meta)| Request::UploadMeta {
            name,
            size,
            meta
        }),
        (name(), any::<u64>(), meta()).prop_map(|(name, size, meta)| Request::ResumeUploadMeta {
            name,
            size,
            meta
        }),
        (name(), any::<u64>(), proptest::option::of(meta())).prop_map(|(name, size, meta)| {
            Request::ResumeUploadCompressed { name, size, meta }
        }),
        (name(), any::<u64>())
            .prop_map(|(name, have)| Request::ResumeDownloadCompressed { name, have }),
        (name(), any::<u64>(), any::<bool>(), any::<Option<u64>>()).prop_map(
            |(name, expires, upload_only, uses)| Request::ShareCreate {
                name,
                expires,
                upload_only,
                uses
            }
        ),
        Just(Request::ShareList),
        name().prop_map(|id| Request::ShareRevoke { id }),
    ]
}

fn share_info() -> impl Strategy<Value = ShareInfo> {
    (
        (name(), name(), any::<bool>(), any::<bool>()),
        (
            any::<u64>(),
            any::<u64>(),
            any::<Option<u64>>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |((id, name, dir, upload_only), (created, expires, max_uses, used))| ShareInfo {
                id,
                name,
                dir,
                upload_only,
                created,
                expires,
                max_uses,
                used,
            },
        )
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        managing(),
        name().prop_map(|dir| Request::List { dir }),
        name().prop_map(|name| Request::Download { name }),
        (name(), any::<u64>()).prop_map(|(name, size)| Request::Upload { name, size }),
        name().prop_map(|name| Request::Delete { name }),
        Just(Request::Help),
        Just(Request::Shutdown),
        (name(), any::<u64>()).prop_map(|(name, size)| Request::ResumeUpload { name, size }),
        (name(), any::<u64>()).prop_map(|(name, have)| Request::ResumeDownload { name, have }),
        Just(Request::Space),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let help = (
        name(),
        proptest::collection::vec(name(), 0..3),
        name(),
        name(),
    )
        .prop_map(|(name, aliases, usage, summary)| CommandHelp {
            name,
            aliases,
            usage,
            summary,
        });
    prop_oneof![
        (code(), name()).prop_map(|(code, message)| Response::Error { code, message }),
        (proptest::collection::vec(entry(), 0..20), any::<bool>())
            .prop_map(|(entries, last)| Response::ListPage { entries, last }),
        (any::<u64>(), any::<Option<u64>>())
            .prop_map(|(size, modified)| Response::FileHeader { size, modified }),
        Just(Response::Ready),
        any::<[u8; 32]>().prop_map(|sha256| Response::Done { sha256 }),
        Just(Response::Deleted),
        proptest::collection::vec(help, 0..8).prop_map(|commands| Response::Help { commands }),
        Just(Response::ShuttingDown),
        (
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..5)
        )
            .prop_map(|(chunk, hashes)| Response::Held { chunk, hashes }),
        (
            any::<u64>(),
            any::<Option<u64>>(),
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..5)
        )
            .prop_map(|(size, modified, chunk, hashes)| Response::Prefix {
                size,
                modified,
                chunk,
                hashes
            }),
        (any::<Option<u64>>(), any::<Option<u64>>()).prop_map(|(available, max_upload)| {
            Response::Space {
                available,
                max_upload,
            }
        }),
        prop_oneof![
            Just(Response::Made),
            any::<u64>().prop_map(|files| Response::Removed { files }),
            Just(Response::Renamed),
            info().prop_map(Response::Info),
            (proptest::collection::vec(info(), 0..10), any::<bool>())
                .prop_map(|(entries, last)| Response::WalkPage { entries, last }),
            (
                share_info(),
                name(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..3),
                any::<u16>()
            )
                .prop_map(|(share, token, hashes, port)| Response::Shared {
                    share,
                    token,
                    hashes,
                    port
                }),
            (proptest::collection::vec(share_info(), 0..5), any::<bool>())
                .prop_map(|(shares, last)| Response::SharePage { shares, last }),
            Just(Response::Revoked),
        ],
    ]
}

fn round_trips<T: Message + PartialEq + std::fmt::Debug>(msg: &T) -> Result<(), TestCaseError> {
    let bytes = encode(msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = decode(&bytes[4..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, msg);
    Ok(())
}

proptest! {
    #[test]
    fn every_request_round_trips(msg in request()) {
        round_trips(&msg)?;
    }

    #[test]
    fn every_response_round_trips(msg in response()) {
        round_trips(&msg)?;
    }

    #[test]
    fn every_trailer_round_trips(sha256 in any::<[u8; 32]>()) {
        round_trips(&Trailer { sha256 })?;
    }

    #[test]
    fn every_resume_round_trips(from in any::<u64>()) {
        round_trips(&Resume { from })?;
    }

    #[test]
    fn chunks_keep_the_hash_list_bounded(len in any::<u64>()) {
        let chunk = chunk_for(len);
        prop_assert!(chunk >= 1 << 20 && chunk.is_power_of_two());
        prop_assert!(len / chunk <= MAX_CHUNKS);
    }

    #[test]
    fn error_codes_survive_as_numbers(n in any::<u16>()) {
        prop_assert_eq!(u16::from(ErrorCode::from(n)), n);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_is_exact(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Whatever decodes must re-encode to exactly the same bytes: no trailing garbage
        // accepted, no two encodings of one message.
        if let Ok(msg) = decode::<Request>(&bytes) {
            prop_assert_eq!(&encode(&msg).unwrap()[4..], &bytes[..]);
        }
        if let Ok(msg) = decode::<Response>(&bytes) {
            prop_assert_eq!(&encode(&msg).unwrap()[4..], &bytes[..]);
        }
        if let Ok(msg) = decode::<Trailer>(&bytes) {
            prop_assert_eq!(&encode(&msg).unwrap()[4..], &bytes[..]);
        }
    }

    #[test]
    fn arbitrary_streams_never_panic_the_frame_reader(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result = rt.block_on(read_frame::<Request, _>(&mut &bytes[..]));
        // A frame is read only when the prefix is within the limit and the bytes are all there.
        if result.is_ok() {
            let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            prop_assert!(len <= Request::MAX_LEN && bytes.len() >= 4 + len);
        }
    }
}
