//! Moving a file body: exactly `size` bytes from a reader to a writer, hashed with SHA-256 on the
//! way, with a progress hook. Both sides of every transfer use this one copy loop.

use std::io;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes moved per read and write. Large blocks matter: a write call per network chunk, or small
/// writes through tokio::fs, halve throughput (measured; see FIELD-NOTES).
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
}

/// Copies exactly `size` bytes from `src` to `dst`, returning their SHA-256.
pub async fn copy_hashed<R, W>(
    src: &mut R,
    dst: &mut W,
    size: u64,
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
        // Fill the block before hashing and writing it, so every write is a large one.
        let want = usize::try_from(size - done).map_or(buf.len(), |left| left.min(buf.len()));
        let mut filled = 0;
        while filled < want {
            match src
                .read(&mut buf[filled..want])
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
        hasher.update(&buf[..filled]);
        dst.write_all(&buf[..filled])
            .await
            .map_err(CopyError::Write)?;
        done += filled as u64;
        progress.inc(filled as u64);
    }
    Ok(hasher.finalize().into())
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
        copy_hashed(&mut &data[..], &mut out, 40, &ProgressBar::hidden())
            .await
            .unwrap();
        assert_eq!(out.len(), 40);
        let err = copy_hashed(&mut &data[..], &mut Vec::new(), 101, &ProgressBar::hidden())
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
}
