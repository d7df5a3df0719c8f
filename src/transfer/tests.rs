//! The copy loop's own tests: exact sizes, short sources, stalls, and the blocks it hands on.

use super::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn copies_exactly_size_and_hashes_it() {
    let data: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    let digest = copy_hashed(
        &mut Reader(&data[..]),
        &mut Writer(&mut out),
        data.len() as u64,
        None,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(out, data);
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
}

#[tokio::test]
async fn stops_at_size_and_reports_a_short_source() {
    let data = [1u8; 100];
    let mut out = Vec::new();
    copy_hashed(
        &mut Reader(&data[..]),
        &mut Writer(&mut out),
        40,
        None,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 40);
    let err = copy_hashed(
        &mut Reader(&data[..]),
        &mut Writer(Vec::new()),
        101,
        None,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::Short {
                got: 100,
                expected: 101
            }
        ),
        "{err:?}"
    );
}

/// A source that hands on large blocks; with `ready` false, past the [`BLOCK`] a copy waits for,
/// only the rest of a packet is ever here (a slow link).
struct Paced {
    data: Bytes,
    at: usize,
    ready: bool,
}

impl Source for Paced {
    fn hand_off(&self) -> usize {
        LARGE_BLOCK
    }

    async fn read_block(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        let n = max.min(self.data.len() - self.at);
        self.at += n;
        Ok(vec![self.data.slice(self.at - n..self.at)])
    }

    async fn read_ready(&mut self, max: usize) -> io::Result<Vec<Bytes>> {
        match self.ready {
            true => self.read_block(max).await,
            false => self.read_block(max.min(1000)).await,
        }
    }
}

/// A sink that notes the size of each write.
struct Noting {
    unit: usize,
    writes: Vec<usize>,
    data: Vec<u8>,
}

impl Sink for Noting {
    fn stall_unit(&self) -> usize {
        self.unit
    }

    async fn write_block(&mut self, block: Block) -> io::Result<()> {
        self.writes.push(block.iter().map(Bytes::len).sum());
        block.iter().for_each(|p| self.data.extend_from_slice(p));
        Ok(())
    }
}

/// The writes a copy of `len` bytes from a [`Paced`] source makes to a [`Noting`] sink.
async fn writes(len: usize, ready: bool, unit: usize) -> Vec<usize> {
    let data: Bytes = (0..len).map(|i| (i % 253) as u8).collect::<Vec<_>>().into();
    let mut src = Paced {
        data: data.clone(),
        at: 0,
        ready,
    };
    let mut dst = Noting {
        unit,
        writes: Vec::new(),
        data: Vec::new(),
    };
    let digest = copy_hashed(&mut src, &mut dst, len as u64, None, &ProgressBar::hidden())
        .await
        .unwrap();
    assert_eq!(dst.data, data);
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
    dst.writes
}

#[tokio::test]
async fn blocks_grow_while_data_is_ready_and_a_peer_takes_them_a_block_at_a_time() {
    let len = 2 * LARGE_BLOCK + 5;
    // A file takes whole large blocks while the data keeps coming...
    assert_eq!(
        writes(len, true, usize::MAX).await,
        [LARGE_BLOCK, LARGE_BLOCK, 5]
    );
    // ...a peer gets them a BLOCK at a time, each within the stall timeout...
    let mut blocks = vec![BLOCK; 8];
    blocks.push(5);
    assert_eq!(writes(len, true, BLOCK).await, blocks);
    // ...and a slow source's blocks stay BLOCKs, reaching the disk as soon as each is whole
    // (the last takes the 5 bytes that are here as it ends).
    let mut slow = vec![BLOCK; 7];
    slow.push(BLOCK + 5);
    assert_eq!(writes(len, false, usize::MAX).await, slow);
}

#[test]
fn a_block_splits_in_order_into_parts_no_larger_than_asked() {
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let pieces: Vec<Bytes> = [0, 700, 701, 1900, 2500]
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect();
    let block: Block = pieces.into();
    let parts = split_block(&block, 1000);
    let lens: Vec<usize> = parts
        .iter()
        .map(|p| p.iter().map(Bytes::len).sum())
        .collect();
    assert_eq!(lens, [1000, 1000, 500]);
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| p.iter())
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(joined, data);
    assert_eq!(split_block(&block, 2500).len(), 1);
}

#[test]
fn hex_is_lowercase_and_64_chars() {
    let h = hex(&[0xab; 32]);
    assert_eq!(h.len(), 64);
    assert!(h.starts_with("abab"));
}

#[tokio::test]
async fn a_block_that_does_not_move_in_time_stalls() {
    // A reader that delivers one byte and then nothing, like a trickling or vanished peer.
    let (mut tx, mut rx) = tokio::io::duplex(64);
    tx.write_all(b"x").await.unwrap();
    let limit = Duration::from_millis(50);
    let err = copy_hashed(
        &mut Reader(&mut rx),
        &mut Writer(Vec::new()),
        10,
        Some(limit),
        &ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CopyError::Stalled(l) if l == limit),
        "{err:?}"
    );
    drop(tx);
}
