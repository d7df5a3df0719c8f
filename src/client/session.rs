//! Running commands for a person: pick local paths, show progress, print each result on stdout
//! and each failure on stderr. The prompt and one-shot use share this.

use std::path::{Path, PathBuf};

use super::command::Command;
use super::display::{self, emit};
use super::progress::Progress;
use super::{Client, ClientError};
use crate::paths::{sanitize, SafeName};

/// A connected client and how to present its work.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub client: Client,
    /// Progress bars (or none).
    pub progress: Progress,
    /// Human-readable output (stdout is a terminal) rather than tab-separated.
    pub human: bool,
    /// Replace existing local files on download.
    pub force: bool,
}

impl Session {
    /// Runs `command` and returns how many of its operations failed (each already reported).
    /// `Logout` is the caller's business and does nothing here.
    pub async fn run(&self, command: &Command) -> usize {
        match command {
            Command::List { dir } => self.report(self.list(dir).await),
            Command::Help => self.report(self.help().await),
            Command::Get { names, output } => {
                let mut failed = 0;
                for name in names {
                    failed += self.report(self.get(name, output.as_deref(), names.len() > 1).await);
                }
                failed
            }
            Command::Put { paths } => {
                let mut failed = 0;
                for path in paths {
                    failed += self.report(self.put(path).await);
                }
                failed
            }
            Command::Delete { names } => {
                let mut failed = 0;
                for name in names {
                    let result = self.client.delete(name).await;
                    failed += self.report(result.map(|()| {
                        if self.human {
                            format!("deleted {}", sanitize(name))
                        } else {
                            format!("deleted\t{}", sanitize(name))
                        }
                    }));
                }
                failed
            }
            Command::Shutdown => self.report(
                self.client
                    .shutdown()
                    .await
                    .map(|()| "the server is shutting down".to_string()),
            ),
            Command::Logout => 0,
        }
    }

    fn report(&self, result: Result<String, ClientError>) -> usize {
        match result {
            Ok(text) => {
                // An empty script-mode listing prints nothing rather than a blank line.
                if !text.is_empty() {
                    emit(&text);
                }
                0
            }
            Err(e) => {
                eprintln!("qft: {e}");
                1
            }
        }
    }

    async fn list(&self, dir: &str) -> Result<String, ClientError> {
        Ok(display::listing(&self.client.list(dir).await?, self.human))
    }

    async fn help(&self) -> Result<String, ClientError> {
        Ok(display::help(&self.client.help().await?))
    }

    async fn get(
        &self,
        name: &str,
        output: Option<&Path>,
        many: bool,
    ) -> Result<String, ClientError> {
        let dest = local_target(name, output, many)?;
        let bar = self.progress.bar(name);
        let report = self.client.download(name, &dest, self.force, &bar).await?;
        Ok(display::transfer("downloaded", &report, self.human))
    }

    async fn put(&self, path: &Path) -> Result<String, ClientError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::Local {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "has no usable file name",
                ),
            })?;
        let bar = self.progress.bar(name);
        let report = self.client.upload(path, name, &bar).await?;
        Ok(display::transfer("uploaded", &report, self.human))
    }
}

/// Where a download of `name` goes: `output` itself for one file, else `output` (or the current
/// directory) joined with the name's last component. Only that plain component comes from the
/// network side, and it was validated, so nothing lands outside the chosen directory.
fn local_target(name: &str, output: Option<&Path>, many: bool) -> Result<PathBuf, ClientError> {
    let safe = SafeName::new(name).map_err(|reason| ClientError::InvalidName {
        name: sanitize(name),
        reason,
    })?;
    let file = safe.file_name();
    Ok(match output {
        None => PathBuf::from(file),
        Some(out) if many || out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') => {
            out.join(file)
        }
        Some(out) => out.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_land_under_the_chosen_place() {
        assert_eq!(
            local_target("a/b.txt", None, false).unwrap(),
            PathBuf::from("b.txt")
        );
        assert_eq!(
            local_target("b.txt", Some(Path::new("/tmp/x.bin")), false).unwrap(),
            PathBuf::from("/tmp/x.bin")
        );
        assert_eq!(
            local_target("d/b.txt", Some(Path::new("out")), true).unwrap(),
            PathBuf::from("out/b.txt")
        );
        assert!(local_target("../b.txt", None, false).is_err());
    }
}
