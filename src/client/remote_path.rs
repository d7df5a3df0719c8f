//! The prompt's remote working directory: how a name typed at `qft>` becomes a name on the wire.
//!
//! The server knows no current directory; every name it receives is relative to its root. So the
//! prompt keeps one (`cd`, `pwd`) and resolves each typed name against it here, lexically: `/`
//! starts from the root, `.` is dropped, `..` steps up but never above the root. What comes out is
//! still checked by [`crate::paths::SafeName`] before it is sent.

use super::ClientError;

/// Resolves `arg` against `cwd` ("" is the root). The result is "" for the root itself.
pub fn resolve(cwd: &str, arg: &str) -> Result<String, ClientError> {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ClientError::InvalidName {
                        name: crate::paths::sanitize(arg),
                        reason: crate::paths::NameError::DotComponent,
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// How the prompt shows a remote directory: `/` for the root, `/a/b` below it.
pub fn display(cwd: &str) -> String {
    format!("/{}", crate::paths::sanitize(cwd))
}

/// The last component of a remote name ("" for the root).
pub fn last(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `dir` and `name` joined ("" is the root).
pub fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_against_the_working_directory() {
        assert_eq!(resolve("", "a.txt").unwrap(), "a.txt");
        assert_eq!(resolve("logs", "a.txt").unwrap(), "logs/a.txt");
        assert_eq!(resolve("logs/2026", "../x").unwrap(), "logs/x");
        assert_eq!(resolve("logs", "/top.txt").unwrap(), "top.txt");
        assert_eq!(resolve("logs", "./sub//y/").unwrap(), "logs/sub/y");
        assert_eq!(resolve("logs", "..").unwrap(), "");
        assert_eq!(resolve("logs", "/").unwrap(), "");
        assert_eq!(resolve("a", "*.log").unwrap(), "a/*.log");
    }

    #[test]
    fn nothing_resolves_above_the_root() {
        assert!(resolve("", "..").is_err());
        assert!(resolve("a", "../../etc/passwd").is_err());
        assert!(resolve("a/b", "/../x").is_err());
    }

    #[test]
    fn joins_and_last_parts() {
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", "x"), "a/x");
        assert_eq!(join("a", ""), "a");
        assert_eq!(last("a/b/c"), "c");
        assert_eq!(last("c"), "c");
        assert_eq!(display(""), "/");
        assert_eq!(display("a/b"), "/a/b");
    }
}
