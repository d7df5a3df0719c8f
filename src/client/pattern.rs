//! Wildcards: `put *.txt` expanded on the local disk, `get '*.log'` matched against the server's
//! listing. Both use the `glob` crate's shell rules, with a leading `.` matched only literally
//! (as shells do), so `*` never picks up hidden files.
//!
//! A pattern that matches nothing is an error, never an empty success: a script that asked for
//! `*.log` and got nothing must learn it. A name that merely contains a wildcard character and
//! exists as typed is taken literally.

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::ClientError;
use crate::paths::sanitize;

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// Whether `text` holds a wildcard (`*`, `?` or `[`).
pub fn has_wildcards(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// A remote pattern split into the literal directory to list and the pattern for the names in it.
/// Wildcards are accepted in the last component only: the server is listed one directory at a
/// time, and a pattern over a whole tree could make a client list all of it.
#[derive(Debug)]
pub struct RemotePattern {
    /// The directory to list ("" for the root).
    pub dir: String,
    pattern: Pattern,
}

impl RemotePattern {
    /// Parses `text`, a remote name with wildcards in its last component.
    pub fn new(text: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadPattern {
            pattern: sanitize(text),
            reason: reason.to_owned(),
        };
        let (dir, last) = match text.rsplit_once('/') {
            Some((dir, last)) => (dir, last),
            None => ("", text),
        };
        if has_wildcards(dir) {
            return Err(bad("wildcards are allowed only in the last part of a name"));
        }
        let pattern = Pattern::new(last).map_err(|e| bad(e.msg))?;
        Ok(RemotePattern {
            dir: dir.to_owned(),
            pattern,
        })
    }

    /// Whether a listed name (one component) matches.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern.matches_with(name, OPTIONS)
    }
}

/// Expands a local argument: itself if it has no wildcards or exists as typed, else every path
/// the pattern matches, sorted.
pub fn expand_local(arg: &Path) -> Result<Vec<PathBuf>, ClientError> {
    let Some(text) = arg.to_str() else {
        return Ok(vec![arg.to_path_buf()]);
    };
    if !has_wildcards(text) || arg.symlink_metadata().is_ok() {
        return Ok(vec![arg.to_path_buf()]);
    }
    let paths = glob::glob_with(text, OPTIONS).map_err(|e| ClientError::BadPattern {
        pattern: sanitize(text),
        reason: e.msg.to_owned(),
    })?;
    let mut found = Vec::new();
    for path in paths {
        match path {
            Ok(path) => found.push(path),
            // A directory on the way that cannot be read: say so rather than skip it silently.
            Err(e) => {
                return Err(ClientError::Local {
                    path: e.path().to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    if found.is_empty() {
        return Err(ClientError::NoMatch {
            pattern: sanitize(text),
            remote: false,
        });
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_patterns_match_like_a_shell() {
        let p = RemotePattern::new("logs/*.log").unwrap();
        assert_eq!(p.dir, "logs");
        assert!(p.matches("a.log"));
        assert!(!p.matches("a.txt"));
        assert!(
            !p.matches(".hidden.log"),
            "a leading dot is matched only literally"
        );
        let q = RemotePattern::new("file-[0-9]?").unwrap();
        assert_eq!(q.dir, "");
        assert!(q.matches("file-1a") && !q.matches("file-x1"));
        assert!(RemotePattern::new("*/x").is_err());
        assert!(RemotePattern::new("[").is_err());
    }

    #[test]
    fn local_patterns_expand_or_say_nothing_matched() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.txt", "a.txt", "c.bin", ".h.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let got = expand_local(&dir.path().join("*.txt")).unwrap();
        assert_eq!(got, [dir.path().join("a.txt"), dir.path().join("b.txt")]);
        let none = expand_local(&dir.path().join("*.zip")).unwrap_err();
        assert!(matches!(none, ClientError::NoMatch { remote: false, .. }));
        assert!(
            none.to_string().starts_with("no local file matches"),
            "{none}"
        );
        // A literal name with a wildcard character is itself.
        std::fs::write(dir.path().join("odd[1]"), b"x").unwrap();
        assert_eq!(
            expand_local(&dir.path().join("odd[1]")).unwrap(),
            [dir.path().join("odd[1]")]
        );
    }
}
