//! `--exclude GLOB` and `--exclude-from FILE`, read as rsync reads them: a pattern without `/`
//! matches a name at any depth; with one, the path from the top of the sync (a leading `/`
//! anchors it there, as it is anyway); a trailing `/` matches directories only. `*` and `?`
//! stop at `/`, `**` crosses it. What a directory pattern excludes, it excludes with everything
//! below it. Excluded names are neither sent nor deleted.

use std::path::Path;

use glob::{MatchOptions, Pattern};

/// One pattern.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    /// Matched against the whole path (it has a `/`), else against the last name.
    whole_path: bool,
    /// Matches directories only.
    dirs_only: bool,
}

/// The patterns of one sync.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    rules: Vec<Rule>,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Excludes {
    /// The patterns `globs`; a malformed one is refused with a sentence.
    pub fn new(globs: &[String]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for glob in globs {
            let mut text = glob.trim_end_matches('\r').to_owned();
            let dirs_only = text.ends_with('/') && text.len() > 1;
            if dirs_only {
                text.pop();
            }
            let anchored = text.starts_with('/');
            let text = text.trim_start_matches('/');
            if text.is_empty() {
                continue;
            }
            let pattern = Pattern::new(text).map_err(|e| {
                format!(
                    "bad exclude pattern '{}': {}",
                    crate::paths::sanitize(glob),
                    e.msg
                )
            })?;
            rules.push(Rule {
                pattern,
                whole_path: anchored || text.contains('/'),
                dirs_only,
            });
        }
        Ok(Excludes { rules })
    }

    /// [`Excludes::new`] with the patterns of `files` added (one a line; blank lines and lines
    /// starting with `#` or `;` are left out, as rsync does).
    pub fn with_files(globs: &[String], files: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut all = globs.to_vec();
        for file in files {
            let file = file.as_ref();
            let text = std::fs::read_to_string(file).map_err(|e| {
                format!(
                    "cannot read the exclude file {}: {}",
                    crate::paths::sanitize(&file.display().to_string()),
                    crate::fsutil::describe_io(&e)
                )
            })?;
            all.extend(
                text.lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                    .map(str::to_owned),
            );
        }
        Excludes::new(&all)
    }

    /// Whether `path` (from the top of the sync, `/`-separated) is excluded, itself or through
    /// a directory above it.
    pub fn excludes(&self, path: &str, is_dir: bool) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            if self.matches(&path[..at + i], true) {
                return true;
            }
            at += i + 1;
        }
        self.matches(path, is_dir)
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.rules.iter().any(|rule| {
            (!rule.dirs_only || is_dir)
                && match rule.whole_path {
                    true => rule.pattern.matches_with(path, OPTIONS),
                    false => rule.pattern.matches_with(name, OPTIONS),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(globs: &[&str]) -> Excludes {
        Excludes::new(&globs.iter().map(|g| g.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_read_as_rsync_reads_them() {
        let e = ex(&["*.tmp", "cache/", "/top.txt", "docs/*.log", "**/deep"]);
        assert!(e.excludes("a.tmp", false) && e.excludes("x/y/a.tmp", false));
        assert!(e.excludes("cache", true) && e.excludes("x/cache", true));
        assert!(
            !e.excludes("cache", false),
            "a file named cache is not a directory"
        );
        assert!(
            e.excludes("cache/inner/file", false),
            "below an excluded directory"
        );
        assert!(e.excludes("top.txt", false) && !e.excludes("sub/top.txt", false));
        assert!(e.excludes("docs/a.log", false) && !e.excludes("docs/sub/a.log", false));
        assert!(e.excludes("a/b/deep", false));
        assert!(!e.excludes("keep.txt", false));
        assert!(!Excludes::default().excludes("anything", false));
    }

    #[test]
    fn exclude_files_skip_comments_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ex");
        std::fs::write(&file, "# comment\n\n*.bak\n; also\nbuild/\n").unwrap();
        let e = Excludes::with_files(&[], &[&file]).unwrap();
        assert!(e.excludes("x.bak", false) && e.excludes("build", true));
        assert!(!e.excludes("# comment", false));
        let missing = Excludes::with_files(&[], &[dir.path().join("nope")]).unwrap_err();
        assert!(
            missing.contains("cannot read the exclude file"),
            "{missing}"
        );
    }
}
