//! Moving a file body: exactly `size` bytes from a reader to a writer, hashed with SHA-256 on the
//! way, with a progress hook. Both sides of every transfer use this one copy loop.

use std::io;
use std::time::Duration;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes moved per read and write.
pub const BLOCK: usize = 1 << 20;

/// Why a body copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source ended before `size` bytes.
    #[error("the data ended after {got} of {expected} bytes")]
    Short {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// Reading the source failed.
    #[error("{0}")]
    Read(#[source] io::Error),
    /// Writing the destination failed.
    #[error("{0}")]
    Write(#[source] io::Error),
    /// A block did not move within the stall timeout (a peer trickling or not reading).
    #[error("the transfer stalled: no block moved within {} s", .0.as_secs())]
    Stalled(Duration),
}

/// Copies exactly `size` bytes from `src` to `dst`, returning their SHA-256. With `stall`, each
/// block (read and write) must complete within that time.
pub async fn copy_hashed<R, W>(
    src: &mut R,
    dst: &mut W,
    size: u64,
    stall: Option<Duration>,
    progress: &ProgressBar,
) -> Result<[u8; 32], CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; usize::try_from(size).map_or(BLOCK, |s| s.clamp(1, BLOCK))];
    let mut done = 0u64;
    while done < size {
        let want = usize::try_from(size - done).map_or(buf.len(), |left| left.min(buf.len()));
        let block = copy_block(src, dst, &mut buf[..want], done, size);
        let filled = match stall {
            Some(limit) => tokio::time::timeout(limit, block)
                .await
                .map_err(|_| CopyError::Stalled(limit))??,
            None => block.await?,
        };
        hasher.update(&buf[..filled]);
        done += filled as u64;
        progress.inc(filled as u64);
    }
    Ok(hasher.finalize().into())
}

/// Fills `buf` from `src` and writes it to `dst`: one large write per block, because a write per
/// network chunk halves throughput (measured; see FIELD-NOTES). Returns the bytes moved.
async fn copy_block<R, W>(
    src: &mut R,
    dst: &mut W,
    buf: &mut [u8],
    done: u64,
    size: u64,
) -> Result<usize, CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut filled = 0;
    while filled < buf.len() {
        match src
            .read(&mut buf[filled..])
            .await
            .map_err(CopyError::Read)?
        {
            0 => {
                return Err(CopyError::Short {
                    got: done + filled as u64,
                    expected: size,
                })
            }
            n => filled += n,
        }
    }
    dst.write_all(buf).await.map_err(CopyError::Write)?;
    Ok(filled)
}

/// Lower-case hex of a digest, for logs and JSON.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_exactly_size_and_hashes_it() {
        let data: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let digest = copy_hashed(
            &mut &data[..],
            &mut out,
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
        copy_hashed(&mut &data[..], &mut out, 40, None, &ProgressBar::hidden())
            .await
            .unwrap();
        assert_eq!(out.len(), 40);
        let err = copy_hashed(
            &mut &data[..],
            &mut Vec::new(),
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
            &mut rx,
            &mut Vec::new(),
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
}
