//! The client's record of servers it trusts, like OpenSSH's known_hosts: one `HOST:PORT
//! SHA256:...` per line, `#` comments allowed.

use std::io;
use std::path::{Path, PathBuf};

use super::Fingerprint;

/// A known server: where it is recorded and what its key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost {
    /// The recorded fingerprint.
    pub fingerprint: Fingerprint,
    /// 1-based line number in the file, for "remove line N" advice.
    pub line: usize,
}

/// The known-hosts file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The known-hosts file at `path` (it need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KnownHosts { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first entry for `host`. Lines for other hosts are not even parsed, so a hand edit gone
    /// wrong does not lock the user out of every other server; a
    /// broken line for `host` itself is an error, because treating the host as unknown would let
    /// `--accept-new` record whatever key it now presents.
    pub fn lookup(&self, host: &str) -> io::Result<Option<KnownHost>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let Some(h) = parts.next() else { continue };
            if h != host {
                continue;
            }
            let fp = parts.next().unwrap_or("");
            return match fp.parse() {
                Ok(fingerprint) => Ok(Some(KnownHost {
                    fingerprint,
                    line: i + 1,
                })),
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {} is malformed for {host} ({e}); fix or remove it",
                        i + 1
                    ),
                )),
            };
        }
        Ok(None)
    }

    /// Records `host` with `fingerprint`. The whole file is rewritten through a temp file and a
    /// rename, so a crash leaves either the old file or the new one.
    pub fn add(&self, host: &str, fingerprint: &Fingerprint) -> io::Result<()> {
        let mut text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{host} {fingerprint}\n"));
        std::fs::create_dir_all(crate::fsutil::parent_dir(&self.path))?;
        use crate::fsutil::{write_atomic, Mode, Replace};
        write_atomic(
            &self.path,
            text.as_bytes(),
            Replace::Yes,
            Mode::Private,
            "known_hosts",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Identity;

    #[test]
    fn add_then_lookup_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::new(dir.path().join("known_hosts"));
        let a = Identity::generate().unwrap().fingerprint();
        let b = Identity::generate().unwrap().fingerprint();
        assert_eq!(kh.lookup("h:1").unwrap(), None);
        kh.add("h:1", &a).unwrap();
        kh.add("h:2", &b).unwrap();
        assert_eq!(
            kh.lookup("h:2").unwrap(),
            Some(KnownHost {
                fingerprint: b,
                line: 2
            })
        );
        assert_eq!(kh.lookup("h:1").unwrap().unwrap().fingerprint, a);
        assert_eq!(kh.lookup("h:3").unwrap(), None);
    }

    #[test]
    fn malformed_lines_are_skipped_unless_they_name_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let a = Identity::generate().unwrap().fingerprint();
        let text = format!("# comment\ngarbage\nh:2 SHA256:nope\nh:1 {a}\n");
        std::fs::write(&path, text).unwrap();
        let kh = KnownHosts::new(&path);
        let found = kh.lookup("h:1").unwrap().unwrap();
        assert_eq!((found.fingerprint, found.line), (a, 4));
        // A broken record for the host asked about must not read as "unknown".
        let err = kh.lookup("h:2").unwrap_err();
        assert!(
            err.to_string().contains("line 3 is malformed for h:2"),
            "{err}"
        );
    }
}
