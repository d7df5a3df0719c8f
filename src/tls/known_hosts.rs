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
    /// wrong (a typo, a byte that is not UTF-8) does not lock the user out of every other server;
    /// a broken line for `host` itself is an error, because treating the host as unknown would
    /// let `--accept-new` record whatever key it now presents.
    pub fn lookup(&self, host: &str) -> io::Result<Option<KnownHost>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        find(&bytes, host, &self.path)
    }

    /// Removes every line for `host` (as `ssh-keygen -R` does), under the same lock as
    /// [`KnownHosts::add`]; returns how many there were. Other lines, comments and lines that
    /// do not parse are kept byte for byte.
    pub fn forget(&self, host: &str) -> io::Result<usize> {
        use crate::fsutil::{open_locked, write_atomic, Mode, Replace};
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true);
        let locked = match open_locked(&self.path, &options, LOCK_WAIT) {
            Ok(Some(locked)) => locked,
            Ok(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} stayed locked by another qft", self.path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut &locked, &mut bytes)?;
        let mut kept = Vec::with_capacity(bytes.len());
        let mut removed = 0;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let first = line
                .split(|b| b.is_ascii_whitespace())
                .find(|w| !w.is_empty());
            if first == Some(host.as_bytes()) {
                removed += 1;
            } else {
                kept.extend_from_slice(line);
            }
        }
        if removed > 0 {
            write_atomic(
                &self.path,
                &kept,
                Replace::Yes,
                Mode::Private,
                "known_hosts",
            )?;
        }
        Ok(removed)
    }

    /// Records `host` with `fingerprint`. The whole file is rewritten through a temp file and a
    /// rename, so a crash leaves either the old file or the new one; the file is locked from the
    /// read to the rename, so clients recording at once (each its own server) all keep their
    /// lines. If another client recorded `host` meanwhile, its key must be this one.
    pub fn add(&self, host: &str, fingerprint: &Fingerprint) -> io::Result<()> {
        use crate::fsutil::{open_locked, write_atomic, Mode, Replace};
        std::fs::create_dir_all(crate::fsutil::parent_dir(&self.path))?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // The lock is held on the file as it is until the rename replaces it; a client that
        // waited then finds the new file and locks that (open_locked checks).
        let Some(mut locked) = open_locked(&self.path, &options, LOCK_WAIT)? else {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} stayed locked by another qft", self.path.display()),
            ));
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut locked, &mut bytes)?;
        match find(&bytes, host, &self.path)? {
            Some(known) if known.fingerprint == *fingerprint => return Ok(()),
            Some(known) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{host} was recorded meanwhile with another key (line {})",
                        known.line
                    ),
                ))
            }
            None => {}
        }
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(format!("{host} {fingerprint}\n").as_bytes());
        write_atomic(
            &self.path,
            &bytes,
            Replace::Yes,
            Mode::Private,
            "known_hosts",
        )
    }
}

/// How long a client waits for another one that is recording a host.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The first entry for `host` in the file's bytes. A line that is not UTF-8 is skipped with a
/// warning, unless it names `host` (then it is an error, as any broken line for `host` is).
fn find(bytes: &[u8], host: &str, path: &Path) -> io::Result<Option<KnownHost>> {
    let broken = |line: usize, why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line {line} is malformed for {host} ({why}); fix or remove it"),
        )
    };
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line.trim(),
            Err(_) => {
                let first = raw
                    .split(|b| b.is_ascii_whitespace())
                    .find(|w| !w.is_empty());
                if first == Some(host.as_bytes()) {
                    return Err(broken(i + 1, "it is not UTF-8".into()));
                }
                tracing::warn!(
                    "{}: skipping line {}, which is not UTF-8",
                    path.display(),
                    i + 1
                );
                continue;
            }
        };
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
            Err(e) => Err(broken(i + 1, e.to_string())),
        };
    }
    Ok(None)
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

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_unless_it_names_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let a = Identity::generate().unwrap().fingerprint();
        let b = Identity::generate().unwrap().fingerprint();
        let mut text = b"# comment\nother:1 \xff\xfe garbage\n".to_vec();
        text.extend_from_slice(format!("h:1 {a}\n").as_bytes());
        text.extend_from_slice(b"h:2 SHA256:\xff\n");
        std::fs::write(&path, &text).unwrap();
        let kh = KnownHosts::new(&path);
        assert_eq!(kh.lookup("h:1").unwrap().unwrap().fingerprint, a);
        assert_eq!(kh.lookup("h:3").unwrap(), None);
        let err = kh.lookup("h:2").unwrap_err();
        assert!(
            err.to_string().contains("line 4 is malformed for h:2"),
            "{err}"
        );
        // Recording another host keeps every byte of the lines it does not understand.
        kh.add("h:3", &b).unwrap();
        let now = std::fs::read(&path).unwrap();
        assert!(
            now.starts_with(&text),
            "the old lines are kept as they were"
        );
        assert_eq!(kh.lookup("h:3").unwrap().unwrap().fingerprint, b);
    }

    #[test]
    fn recording_a_host_twice_keeps_one_line_and_refuses_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::new(dir.path().join("sub/known_hosts"));
        let a = Identity::generate().unwrap().fingerprint();
        let b = Identity::generate().unwrap().fingerprint();
        kh.add("h:1", &a).unwrap();
        kh.add("h:1", &a).unwrap();
        let text = std::fs::read_to_string(kh.path()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let err = kh.add("h:1", &b).unwrap_err();
        assert!(err.to_string().contains("recorded meanwhile"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(kh.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn clients_recording_at_once_all_keep_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys: Vec<Fingerprint> = (0..8)
            .map(|_| Identity::generate().unwrap().fingerprint())
            .collect();
        std::thread::scope(|scope| {
            for (i, key) in keys.iter().enumerate() {
                let kh = KnownHosts::new(&path);
                scope.spawn(move || kh.add(&format!("h:{i}"), key).unwrap());
            }
        });
        let kh = KnownHosts::new(&path);
        for (i, key) in keys.iter().enumerate() {
            let found = kh.lookup(&format!("h:{i}")).unwrap();
            assert_eq!(found.map(|k| k.fingerprint), Some(*key), "h:{i}");
        }
    }

    #[test]
    fn forgetting_a_host_removes_its_lines_and_keeps_every_other_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let (a, b) = (
            Identity::generate().unwrap().fingerprint(),
            Identity::generate().unwrap().fingerprint(),
        );
        let text = format!("# mine\nfiles:4433 {a}\nother:4433 {b}\nfiles:4433 {b}\n");
        let mut bytes = text.into_bytes();
        // A byte that is not UTF-8, in a line for another host: kept as it is.
        bytes.extend_from_slice(b"broken\xfe line\n");
        std::fs::write(&path, &bytes).unwrap();
        let known = KnownHosts::new(&path);
        assert_eq!(known.forget("files:4433").unwrap(), 2);
        assert_eq!(known.lookup("files:4433").unwrap(), None);
        assert_eq!(known.lookup("other:4433").unwrap().unwrap().fingerprint, b);
        let after = std::fs::read(&path).unwrap();
        assert!(after.starts_with(b"# mine\nother:4433 "));
        assert!(after.ends_with(b"broken\xfe line\n"));
        assert_eq!(known.forget("files:4433").unwrap(), 0);
        assert_eq!(
            KnownHosts::new(dir.path().join("none"))
                .forget("x:1")
                .unwrap(),
            0
        );
    }
}
