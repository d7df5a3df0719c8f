//! What a `sync` was asked to do, as typed at the prompt or given to `qft connect HOST sync`:
//! the two sides (exactly one remote, written with a leading `:`) and the options.

use std::path::PathBuf;

use super::exclude::Excludes;
use crate::client::local::expand_tilde;

/// One side of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// A local directory.
    Local(PathBuf),
    /// A remote directory: relative to the prompt's `cd` as typed, then (once resolved) the
    /// name from the server's top ("" is the top itself).
    Remote(String),
}

/// A sync to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSpec {
    /// What to copy from.
    pub src: Side,
    /// What to make hold what `src` holds.
    pub dst: Side,
    /// Remove what `dst` has and `src` does not (never what is excluded).
    pub delete: bool,
    /// Print the plan; change nothing.
    pub dry_run: bool,
    /// Compare contents by SHA-256, not by size and time.
    pub checksum: bool,
    /// Keep permission bits too.
    pub perms: bool,
    /// `--exclude` patterns, in order.
    pub excludes: Vec<String>,
    /// `--exclude-from` files, read when the sync runs.
    pub exclude_from: Vec<PathBuf>,
}

impl SyncSpec {
    /// A sync from `src` to `dst` as typed (a remote side starts with `:`), with no options.
    pub fn new(src: &str, dst: &str) -> Result<Self, String> {
        let src = side(src);
        let dst = side(dst);
        match (&src, &dst) {
            (Side::Local(_), Side::Remote(_)) | (Side::Remote(_), Side::Local(_)) => {}
            (Side::Local(_), Side::Local(_)) => return Err(
                "SYNC needs one remote side, written with a leading ':' (sync ./photos :photos)"
                    .into(),
            ),
            (Side::Remote(_), Side::Remote(_)) => {
                return Err(
                    "SYNC copies between this machine and the server: only one side may be remote"
                        .into(),
                )
            }
        }
        Ok(SyncSpec {
            src,
            dst,
            delete: false,
            dry_run: false,
            checksum: false,
            perms: false,
            excludes: Vec::new(),
            exclude_from: Vec::new(),
        })
    }

    /// Parses the prompt's `sync [options] SRC DST`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut sides = Vec::new();
        let (mut delete, mut dry_run, mut checksum, mut perms) = (false, false, false, false);
        let (mut excludes, mut exclude_from) = (Vec::new(), Vec::new());
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let mut value = |flag: &str| {
                words
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("SYNC {flag} needs a value"))
            };
            match word.as_str() {
                "--" => {
                    sides.extend(words.cloned());
                    break;
                }
                "--delete" => delete = true,
                "-n" | "--dry-run" => dry_run = true,
                "-c" | "--checksum" => checksum = true,
                "--perms" => perms = true,
                "--exclude" => excludes.push(value("--exclude")?),
                "--exclude-from" => exclude_from.push(expand_tilde(&value("--exclude-from")?)),
                w if w.starts_with("--exclude=") => excludes.push(w["--exclude=".len()..].into()),
                w if w.starts_with("--exclude-from=") => {
                    exclude_from.push(expand_tilde(&w["--exclude-from=".len()..]))
                }
                w if w.starts_with('-') && w.len() > 1 => {
                    return Err(format!(
                        "SYNC has no option '{}' (it takes --delete, -n/--dry-run, -c/--checksum, \
                         --perms, --exclude GLOB, --exclude-from FILE)",
                        crate::paths::sanitize(w)
                    ))
                }
                _ => sides.push(word.clone()),
            }
        }
        let [src, dst] = <[String; 2]>::try_from(sides)
            .map_err(|_| "SYNC needs a source and a destination (sync ./photos :photos)")?;
        Excludes::new(&excludes)?;
        Ok(SyncSpec {
            delete,
            dry_run,
            checksum,
            perms,
            excludes,
            exclude_from,
            ..SyncSpec::new(&src, &dst)?
        })
    }

    /// The remote side's name, whichever side it is.
    pub fn remote_mut(&mut self) -> Option<&mut String> {
        match (&mut self.src, &mut self.dst) {
            (Side::Remote(name), _) | (_, Side::Remote(name)) => Some(name),
            _ => None,
        }
    }
}

/// `:name` is remote (`:` alone: the remote working directory); anything else is a local path.
fn side(typed: &str) -> Side {
    match typed.strip_prefix(':') {
        Some(rest) => Side::Remote(rest.to_owned()),
        None => Side::Local(expand_tilde(typed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        shlex::split(line).unwrap()
    }

    #[test]
    fn one_side_remote_and_the_options() {
        let spec = SyncSpec::parse(&args(
            "--delete -n --exclude '*.tmp' --exclude=cache/ ./photos :photos",
        ))
        .unwrap();
        assert_eq!(spec.src, Side::Local("./photos".into()));
        assert_eq!(spec.dst, Side::Remote("photos".into()));
        assert!(spec.delete && spec.dry_run && !spec.checksum);
        assert_eq!(spec.excludes, ["*.tmp", "cache/"]);
        let spec = SyncSpec::parse(&args(": here -c --perms")).unwrap();
        assert_eq!(spec.src, Side::Remote(String::new()));
        assert!(spec.checksum && spec.perms);
        assert!(SyncSpec::parse(&args("a b"))
            .unwrap_err()
            .contains("one remote side"));
        assert!(SyncSpec::parse(&args(":a :b"))
            .unwrap_err()
            .contains("only one"));
        assert!(SyncSpec::parse(&args("a"))
            .unwrap_err()
            .contains("a source and a destination"));
        assert!(SyncSpec::parse(&args("--frob a :b"))
            .unwrap_err()
            .contains("no option"));
        assert!(SyncSpec::parse(&args("a :b --exclude"))
            .unwrap_err()
            .contains("needs a value"));
        assert!(SyncSpec::parse(&args("a :b --exclude '[x'")).is_err());
        let spec = SyncSpec::parse(&args("-- -odd :b")).unwrap();
        assert_eq!(spec.src, Side::Local("-odd".into()));
    }
}
