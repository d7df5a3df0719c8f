//! Commands as a person types them at the prompt: the original design's names, case-insensitive,
//! with short aliases.

use std::path::PathBuf;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// LIST [dir]
    List {
        /// "" for the root.
        dir: String,
    },
    /// DOWNLOAD <name>...
    Get {
        /// Remote names.
        names: Vec<String>,
        /// Where to write: a file (one name) or a directory; `None` is the current directory.
        output: Option<PathBuf>,
    },
    /// UPLOAD <path>...
    Put {
        /// Local files; each is stored under its file name.
        paths: Vec<PathBuf>,
    },
    /// DELETE <name>...
    Delete {
        /// Remote names.
        names: Vec<String>,
    },
    /// HELP
    Help,
    /// LOGOUT
    Logout,
    /// SHUTDOWN (admin only)
    Shutdown,
}

/// Parses a prompt line. `Ok(None)` for a blank line. Arguments may be quoted as in a shell.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    let Some((first, args)) = words.split_first() else {
        return Ok(None);
    };
    let need = |what: &str| -> Result<Vec<String>, String> {
        if args.is_empty() {
            Err(format!("{} needs {what}", first.to_uppercase()))
        } else {
            Ok(args.to_vec())
        }
    };
    let none = || -> Result<(), String> {
        match args.is_empty() {
            true => Ok(()),
            false => Err(format!("{} takes no arguments", first.to_uppercase())),
        }
    };
    let command = match first.to_lowercase().as_str() {
        "list" | "ls" => match args {
            [] => Command::List { dir: String::new() },
            [dir] => Command::List { dir: dir.clone() },
            _ => return Err("LIST takes at most one directory".into()),
        },
        "download" | "get" => Command::Get {
            names: need("a file name")?,
            output: None,
        },
        "upload" | "put" => Command::Put {
            paths: need("a local path")?
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        },
        "delete" | "rm" => Command::Delete {
            names: need("a file name")?,
        },
        "help" | "?" => {
            none()?;
            Command::Help
        }
        "shutdown" => {
            none()?;
            Command::Shutdown
        }
        "logout" | "quit" | "exit" => {
            none()?;
            Command::Logout
        }
        other => {
            return Err(format!(
                "unknown command '{}'; type HELP for the list",
                crate::paths::sanitize(other)
            ))
        }
    };
    Ok(Some(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_in_any_case() {
        assert_eq!(
            parse("LiSt").unwrap(),
            Some(Command::List { dir: String::new() })
        );
        assert_eq!(
            parse("ls sub").unwrap(),
            Some(Command::List { dir: "sub".into() })
        );
        assert_eq!(
            parse("GET 'my file.txt' b").unwrap(),
            Some(Command::Get {
                names: vec!["my file.txt".into(), "b".into()],
                output: None
            })
        );
        assert_eq!(
            parse("put ./x").unwrap(),
            Some(Command::Put {
                paths: vec!["./x".into()]
            })
        );
        assert_eq!(
            parse("Rm a").unwrap(),
            Some(Command::Delete {
                names: vec!["a".into()]
            })
        );
        assert_eq!(parse("?").unwrap(), Some(Command::Help));
        for q in ["logout", "QUIT", "exit"] {
            assert_eq!(parse(q).unwrap(), Some(Command::Logout));
        }
        assert_eq!(parse("   ").unwrap(), None);
    }

    #[test]
    fn mistakes_get_a_sentence() {
        assert_eq!(parse("get").unwrap_err(), "GET needs a file name");
        assert_eq!(parse("help me").unwrap_err(), "HELP takes no arguments");
        assert!(parse("frobnicate")
            .unwrap_err()
            .contains("unknown command 'frobnicate'"));
        assert_eq!(parse("get 'open").unwrap_err(), "unbalanced quotes");
    }
}
