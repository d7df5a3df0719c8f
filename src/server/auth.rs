//! Who may do what: permissions, and the authorized-clients file that grants them by client key
//! fingerprint, like OpenSSH's authorized_keys.
//!
//! File format, one client per line (`#` comments and blank lines allowed):
//! ```text
//! SHA256:<fingerprint> read,write,delete   laptop of Ann
//! SHA256:<fingerprint> read,admin          ops
//! ```
//! The file is looked at again for every new connection and every command ([`Grants`]: one
//! `stat`, and a new read only when it changed), so an edit applies without a restart, to the
//! sessions already open too: a client removed from the list can do nothing more. A line that
//! does not parse grants nothing and is logged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::tls::Fingerprint;

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// LIST and DOWNLOAD.
    pub const READ: Permissions = Permissions(1);
    /// UPLOAD (which may replace files).
    pub const WRITE: Permissions = Permissions(2);
    /// DELETE.
    pub const DELETE: Permissions = Permissions(4);
    /// SHUTDOWN.
    pub const ADMIN: Permissions = Permissions(8);
    /// Nothing.
    pub const NONE: Permissions = Permissions(0);
    /// Everything.
    pub const ALL: Permissions = Permissions(1 | 2 | 4 | 8);
    /// What anyone may do on a server without an authorized-clients file: the original design
    /// let every client list, upload, download and delete (but not stop the server).
    pub const OPEN: Permissions = Permissions(1 | 2 | 4);

    const NAMES: [(&'static str, Permissions); 4] = [
        ("read", Self::READ),
        ("write", Self::WRITE),
        ("delete", Self::DELETE),
        ("admin", Self::ADMIN),
    ];

    /// Whether every permission in `other` is in `self`.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets' permissions.
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// The permissions in both sets.
    pub fn intersection(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    /// Parses `read,write` (any of read, write, delete, admin; comma-separated).
    pub fn parse(list: &str) -> Result<Permissions, String> {
        let mut set = Permissions::NONE;
        for word in list.split(',') {
            let word = word.trim();
            let (_, p) = Self::NAMES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(word))
                .ok_or_else(|| {
                    format!(
                        "unknown permission '{}' (use read, write, delete, admin)",
                        crate::paths::sanitize(word)
                    )
                })?;
            set = set.union(*p);
        }
        Ok(set)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(_, p)| self.contains(*p))
            .map(|(name, _)| *name)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// A listed client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What it may do.
    pub permissions: Permissions,
    /// The operator's comment (who it is), for logs.
    pub comment: String,
}

/// Parses the file's text into grants by fingerprint, plus one warning per line that grants
/// nothing because it does not parse. A fingerprint listed twice keeps its first line.
pub fn parse(text: &str) -> (HashMap<Fingerprint, Grant>, Vec<String>) {
    let mut grants = HashMap::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Any run of blanks separates the fields, so columns may be lined up; the comment is
        // the rest of the line, its own spacing kept.
        let (fp, rest) = first_field(line);
        let (perms, comment) = first_field(rest);
        let comment = comment.to_owned();
        let parsed = fp
            .parse::<Fingerprint>()
            .map_err(|e| e.to_string())
            .and_then(|fp| Ok((fp, Permissions::parse(perms)?)));
        match parsed {
            Ok((fp, permissions)) => {
                grants.entry(fp).or_insert(Grant {
                    permissions,
                    comment,
                });
            }
            Err(e) => warnings.push(format!("line {}: {e}", i + 1)),
        }
    }
    (grants, warnings)
}

/// The first blank-separated field of `text`, and what follows it with leading blanks removed.
fn first_field(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
}

/// How a server decides what a client may do.
#[derive(Debug, Clone)]
pub enum Access {
    /// No list: everyone gets [`Permissions::OPEN`].
    Open,
    /// Only clients in this authorized-clients file, with the permissions it grants.
    Authorized(PathBuf),
}

/// Why the authorized-clients file could not be used. The server then admits nobody: failing
/// closed is the only safe reading of a list it cannot read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the authorized-clients file {}: {source}", path.display())]
pub struct AuthFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl Access {
    /// What `client` may do: `Ok(None)` if it is not admitted at all.
    pub async fn grant(
        &self,
        client: Option<&Fingerprint>,
    ) -> Result<Option<Grant>, AuthFileError> {
        match self {
            Access::Open => Ok(Some(Grant {
                permissions: Permissions::OPEN,
                comment: String::new(),
            })),
            Access::Authorized(path) => {
                let Some(client) = client else {
                    return Ok(None);
                };
                let (grants, warnings) = read(path).await?;
                for w in &warnings {
                    tracing::warn!(file = %path.display(), "ignoring {w}");
                }
                Ok(grants.get(client).cloned())
            }
        }
    }

    /// Reads the file once at start, so a typo in the path fails there, with the warnings of
    /// every line that grants nothing; returns how many clients are listed.
    pub async fn check(&self) -> Result<(usize, Vec<String>), AuthFileError> {
        match self {
            Access::Open => Ok((0, Vec::new())),
            Access::Authorized(path) => {
                let (grants, warnings) = read(path).await?;
                Ok((grants.len(), warnings))
            }
        }
    }
}

/// What a server decides grants with: its [`Access`], and the authorized-clients file as last
/// read, kept until the file changes.
#[derive(Debug)]
pub struct Grants {
    access: Access,
    last: Mutex<Option<(Stamp, Table)>>,
}

/// The grants of one reading of the file.
type Table = Arc<HashMap<Fingerprint, Grant>>;

/// What changes when a file is written or replaced: its size, times and inode. Any edit, in
/// place or by a rename over it, changes one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl Grants {
    /// Grants by `access`; the file, if any, is read at the first question.
    pub fn new(access: Access) -> Self {
        Grants {
            access,
            last: Mutex::new(None),
        }
    }

    /// What `client` may do now: `Ok(None)` if it is not (or no longer) admitted at all.
    pub async fn grant(
        &self,
        client: Option<&Fingerprint>,
    ) -> Result<Option<Grant>, AuthFileError> {
        let path = match &self.access {
            Access::Open => return self.access.grant(client).await,
            Access::Authorized(path) => path,
        };
        let Some(client) = client else {
            return Ok(None);
        };
        let failed = |source| AuthFileError {
            path: path.clone(),
            source,
        };
        let stamp = Stamp::of(&tokio::fs::metadata(path).await.map_err(failed)?);
        let cached = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let grants = match cached {
            Some((seen, grants)) if seen == stamp => grants,
            _ => {
                // Read after the stamp was taken: a change while reading leaves a stamp that
                // no longer matches, so the next question reads again.
                let (grants, warnings) = read(path).await?;
                for w in &warnings {
                    tracing::warn!(file = %path.display(), "ignoring {w}");
                }
                let grants = Arc::new(grants);
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((stamp, grants.clone()));
                grants
            }
        };
        Ok(grants.get(client).cloned())
    }
}

async fn read(path: &Path) -> Result<(HashMap<Fingerprint, Grant>, Vec<String>), AuthFileError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| AuthFileError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Identity;

    #[test]
    fn permissions_parse_and_print() {
        let p = Permissions::parse("read,WRITE").unwrap();
        assert!(p.contains(Permissions::READ) && p.contains(Permissions::WRITE));
        assert!(!p.contains(Permissions::DELETE));
        assert_eq!(p.to_string(), "read,write");
        assert_eq!(Permissions::NONE.to_string(), "none");
        assert!(Permissions::parse("read,root")
            .unwrap_err()
            .contains("unknown permission 'root'"));
        assert!(Permissions::parse("").is_err());
        assert!(!Permissions::OPEN.contains(Permissions::ADMIN));
    }

    #[test]
    fn the_file_grants_per_fingerprint_and_reports_bad_lines() {
        let a = Identity::generate().unwrap().fingerprint();
        let b = Identity::generate().unwrap().fingerprint();
        let text = format!(
            "# clients\n\n{a} read,write  laptop of Ann\n{b} read\n{a} admin\nSHA256:bad read\n{b}\n{b} fly\n"
        );
        let (grants, warnings) = parse(&text);
        assert_eq!(grants.len(), 2);
        assert_eq!(
            grants[&a],
            Grant {
                permissions: Permissions::parse("read,write").unwrap(),
                comment: "laptop of Ann".into()
            },
            "the first line for a key wins"
        );
        assert_eq!(grants[&b].permissions, Permissions::READ);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("line 6:"), "{warnings:?}");
        assert!(
            warnings[2].contains("unknown permission 'fly'"),
            "{warnings:?}"
        );
    }

    #[test]
    fn lined_up_columns_in_the_authorized_clients_file_are_read_as_fields() {
        // The README's own layout: fields lined up with runs of blanks, tabs too.
        let a = Identity::generate().unwrap().fingerprint();
        let b = Identity::generate().unwrap().fingerprint();
        let text = format!("{a}   read,write,delete   Ann's  laptop\n  {b}\t\tread\n");
        let (grants, warnings) = parse(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            grants[&a],
            Grant {
                permissions: Permissions::parse("read,write,delete").unwrap(),
                comment: "Ann's  laptop".into()
            }
        );
        assert_eq!(grants[&b].permissions, Permissions::READ);
        assert_eq!(grants[&b].comment, "");
    }
}
