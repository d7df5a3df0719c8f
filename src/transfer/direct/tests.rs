//! Direct writes against a real file: what goes direct, what through the page cache, and that
//! nothing is lost either way.

use super::*;
use std::os::unix::fs::FileExt;

/// A new file in a temporary directory.
fn scratch() -> (tempfile::TempDir, File) {
    let dir = tempfile::tempdir().unwrap();
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("f"))
        .unwrap();
    (dir, file)
}

/// Writes that go direct on `file`'s filesystem whatever it is: the tests need one that
/// takes O_DIRECT (ext4, XFS, btrfs, tmpfs since Linux 6.6), and say so rather than pass
/// without it.
fn direct_anywhere(file: &File) -> Writes {
    let kind = rustix::fs::fstatfs(file).unwrap().f_type;
    assert!(
        Direct::open_any(file).is_some(),
        "these tests need a TMPDIR whose filesystem takes O_DIRECT (this one, type {kind:#x}, does not)"
    );
    Writes {
        state: State::Untried,
        open: Direct::open_any,
    }
}

/// `data` cut into pieces of odd sizes, as packets arrive.
fn pieces(data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    for size in [1, 1399, 4096, 3, 65_000].iter().cycle() {
        if at == data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        out.push(Bytes::copy_from_slice(&data[at..end]));
        at = end;
    }
    out
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn read_all(file: &File, len: usize) -> Vec<u8> {
    let mut got = vec![0; len];
    file.read_exact_at(&mut got, 0).unwrap();
    got
}

#[test]
fn direct_writes_are_for_ext4_and_xfs_only() {
    assert!(platform::suits_kind(0xEF53));
    assert!(platform::suits_kind(0x5846_5342));
    // tmpfs, NFS, btrfs, FUSE, overlayfs.
    for other in [0x0102_1994, 0x6969, 0x9123_683E, 0x6573_5546, 0x794C_7630] {
        assert!(!platform::suits_kind(other), "{other:#x}");
    }
}

#[test]
fn a_large_block_goes_direct_and_only_its_tail_through_the_page_cache() {
    let (_dir, file) = scratch();
    let mut writes = direct_anywhere(&file);
    let small = data(4000, 1);
    assert!(writes.write_at(&file, 0, &pieces(&small)).unwrap());
    let mut want = small;
    let aligned = data(4096 * 3 - 4000, 2);
    assert!(writes.write_at(&file, 4000, &pieces(&aligned)).unwrap());
    want.extend_from_slice(&aligned);
    // A 256 KiB block opens no second file: a slow link's blocks stay in the page cache.
    let block = data(LARGE_BLOCK / 4, 3);
    assert!(writes
        .write_at(&file, want.len() as u64, &pieces(&block))
        .unwrap());
    assert!(!writes.is_direct(), "a 256 KiB block opened a second file");
    want.extend_from_slice(&block);
    // From an aligned offset: a whole large block, all of it direct; then one with a tail.
    let whole = data(LARGE_BLOCK, 4);
    let cached = writes
        .write_at(&file, want.len() as u64, &pieces(&whole))
        .unwrap();
    assert!(writes.is_direct());
    assert!(
        !cached,
        "an aligned large block went through the page cache"
    );
    want.extend_from_slice(&whole);
    let last = data(LARGE_BLOCK + 777, 5);
    assert!(writes
        .write_at(&file, want.len() as u64, &pieces(&last))
        .unwrap());
    want.extend_from_slice(&last);
    assert!(writes.is_direct());
    file.sync_all().unwrap();
    assert_eq!(read_all(&file, want.len()), want);
}

#[test]
fn a_block_at_an_odd_offset_goes_through_the_page_cache_whole() {
    let (_dir, file) = scratch();
    let mut writes = direct_anywhere(&file);
    let head = data(1000, 6);
    file.write_all_at(&head, 0).unwrap();
    let body = data(2 * LARGE_BLOCK + 5, 7);
    assert!(writes.write_at(&file, 1000, &pieces(&body)).unwrap());
    assert!(
        writes.is_direct(),
        "the large block did not open the direct file"
    );
    // None of it went direct: at an odd offset nothing is aligned.
    let State::On(direct) = &mut writes.state else {
        unreachable!("checked just above")
    };
    assert_eq!(direct.write(1000, &pieces(&body)).unwrap().direct, 0);
    let mut want = head;
    want.extend_from_slice(&body);
    assert_eq!(read_all(&file, want.len()), want);
}

#[test]
fn a_refused_direct_write_loses_nothing_and_turns_direct_writes_off() {
    let (_dir, file) = scratch();
    let _ = direct_anywhere(&file);
    let first = data(4096, 8);
    file.write_all_at(&first, 0).unwrap();
    // Alignment 1 is one the kernel refuses: an offset of 4097 reaches the disk as is.
    let own = platform::reopen_direct(&file).expect("O_DIRECT");
    let mut writes = Writes {
        state: State::On(Direct::with(own, 1)),
        open: Direct::open_any,
    };
    let odd = data(LARGE_BLOCK, 9);
    let mut want = first;
    want.push(9);
    file.write_all_at(&[9], 4096).unwrap();
    assert!(writes.write_at(&file, 4097, &pieces(&odd)).unwrap());
    assert!(
        !writes.is_direct(),
        "the kernel took an unaligned direct write"
    );
    want.extend_from_slice(&odd);
    assert_eq!(read_all(&file, want.len()), want);
}

#[test]
fn the_aligned_part_is_copied_out_of_any_pieces() {
    let src = data(10_000, 10);
    let parts = pieces(&src);
    let mut dst = vec![0; 5000];
    copy_out(&parts, 1234, &mut dst);
    assert_eq!(dst, src[1234..6234]);
    let rest: Vec<u8> = after(&parts, 6234)
        .iter()
        .flat_map(|p| p.to_vec())
        .collect();
    assert_eq!(rest, src[6234..]);
}
