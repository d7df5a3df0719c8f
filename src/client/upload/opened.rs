//! What an upload sends, opened and measured before the exchange starts: a local file (a small
//! one read whole at once), or what stdin gave, kept first in an unnamed temp file.

use std::io;
use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;

use crate::client::progress;
use crate::client::{ClientError, Keep};
use crate::fsutil::describe_io;
use crate::protocol::{FileMeta, SMALL_FILE};

/// A file opened to upload: its size, and a small file's content, read when it was measured.
pub(super) struct Opened {
    pub(super) file: Arc<std::fs::File>,
    pub(super) size: u64,
    pub(super) whole: Option<Vec<u8>>,
    /// What the stored file is to keep of this one (`put -p`, sync); `None`: nothing.
    pub(super) keep: Option<FileMeta>,
}

/// Opens a file to upload and measures it; a small file's content is read in the same blocking
/// call (one hand-off to a thread per small file, not four).
pub(super) async fn open_upload(path: &Path, keep: Keep) -> Result<Opened, ClientError> {
    let owned = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&owned)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let size = meta.len();
        let keep = keep.any().then(|| keep.of_local(&meta));
        if size >= SMALL_FILE {
            return Ok(Opened {
                file: Arc::new(file),
                size,
                whole: None,
                keep,
            });
        }
        // Exactly `size` bytes: a file that shrank since is caught here, one that grew is
        // sent as it was when measured, as the streamed path does.
        let mut body = vec![0; size as usize];
        io::Read::read_exact(&mut file, &mut body)
            .map_err(|e| io::Error::other(format!("changed while it was being read ({e})")))?;
        Ok(Opened {
            file: Arc::new(file),
            size,
            whole: Some(body),
            keep,
        })
    });
    match opened.await {
        Ok(result) => result.map_err(ClientError::local(path)),
        Err(e) => Err(ClientError::local(path)(io::Error::other(e))),
    }
}

/// Reads stdin to its end into an unnamed temp file, and opens that as a file to upload.
pub(super) async fn spool_stdin(progress: &ProgressBar) -> Result<Opened, ClientError> {
    use io::{Read, Seek, Write};
    progress::reading_stdin(progress);
    let bar = progress.clone();
    // Which side failed: stdin itself (`-`), or the temp file (named by its directory).
    let stdin_failed = ClientError::local(Path::new("-"));
    let temp_failed = |e: io::Error| ClientError::Local {
        path: std::env::temp_dir(),
        source: io::Error::new(
            e.kind(),
            format!("keeping what stdin sent: {}", describe_io(&e)),
        ),
    };
    let spooled = tokio::task::spawn_blocking(move || {
        let mut file = tempfile::tempfile().map_err(temp_failed)?;
        let mut stdin = io::stdin().lock();
        let mut block = vec![0u8; crate::transfer::BLOCK];
        loop {
            let n = match stdin.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stdin_failed(e)),
            };
            file.write_all(&block[..n]).map_err(temp_failed)?;
            bar.inc(n as u64);
        }
        let measured = (|| {
            let size = file.stream_position()?;
            file.rewind()?;
            let whole = match size < SMALL_FILE {
                true => {
                    let mut body = vec![0; size as usize];
                    file.read_exact(&mut body)?;
                    Some(body)
                }
                false => None,
            };
            Ok((size, whole))
        })();
        let (size, whole) = measured.map_err(temp_failed)?;
        Ok(Opened {
            file: Arc::new(file),
            size,
            whole,
            keep: None,
        })
    });
    spooled
        .await
        .unwrap_or_else(|e| Err(ClientError::local(Path::new("-"))(io::Error::other(e))))
}
