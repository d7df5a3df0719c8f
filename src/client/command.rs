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
    /// `DOWNLOAD [-r] [-o PATH] <name>...`
    Get {
        /// Remote names; wildcards in the last part match against the server's listing.
        names: Vec<String>,
        /// Where to write: a file (one name) or a directory; `None` is the current directory.
        output: Option<PathBuf>,
        /// Copy directories with everything in them.
        recursive: bool,
    },
    /// `UPLOAD [-r] <path>...`
    Put {
        /// Local paths; wildcards are expanded on the local disk. Each is stored under its file
        /// name.
        paths: Vec<PathBuf>,
        /// Send directories with everything in them.
        recursive: bool,
        /// The remote directory to store into ("" for the root).
        into: String,
    },
    /// DELETE <name>...
    Delete {
        /// Remote names; wildcards match files (never directories).
        names: Vec<String>,
    },
    /// HELP
    Help,
    /// LOGOUT
    Logout,
    /// SHUTDOWN (admin only)
    Shutdown,
    /// `cd [dir]`: the prompt's remote working directory (the root without an argument).
    Cd {
        /// Relative to the current one; `/` is the root.
        dir: Option<String>,
    },
    /// `pwd`: show the remote working directory.
    Pwd,
    /// `lcd [dir]`: change the local working directory (home without an argument).
    Lcd {
        /// The new directory.
        dir: Option<PathBuf>,
    },
    /// `lls [dir]`: list a local directory.
    Lls {
        /// The directory (the current one without an argument).
        dir: Option<PathBuf>,
    },
    /// `lpwd`: show the local working directory.
    Lpwd,
}

/// Every command word the prompt knows, for completion.
pub const WORDS: &[&str] = &[
    "bye", "cd", "delete", "download", "exit", "get", "help", "lcd", "list", "lls", "logout",
    "lpwd", "ls", "put", "pwd", "quit", "rm", "shutdown", "upload",
];

/// Commands whose arguments are local paths (completed from the local disk).
pub fn takes_local_paths(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "put" | "upload" | "lcd" | "lls"
    )
}

/// Commands whose arguments are remote names (completed from the server's listing), and whether
/// only directories make sense.
pub fn takes_remote_names(word: &str) -> Option<bool> {
    match word.to_lowercase().as_str() {
        "get" | "download" | "rm" | "delete" => Some(false),
        "cd" | "ls" | "list" => Some(true),
        _ => None,
    }
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
    let at_most_one = |what: &str| -> Result<Option<String>, String> {
        match args {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(format!("{} takes at most one {what}", first.to_uppercase())),
        }
    };
    let command = match first.to_lowercase().as_str() {
        "list" | "ls" => Command::List {
            dir: at_most_one("directory")?.unwrap_or_default(),
        },
        "download" | "get" => {
            let flags = Flags::parse(first, args, true)?;
            if flags.rest.is_empty() {
                return Err(format!("{} needs a file name", first.to_uppercase()));
            }
            Command::Get {
                names: flags.rest,
                output: flags.output,
                recursive: flags.recursive,
            }
        }
        "upload" | "put" => {
            let flags = Flags::parse(first, args, false)?;
            if flags.rest.is_empty() {
                return Err(format!("{} needs a local path", first.to_uppercase()));
            }
            Command::Put {
                paths: flags.rest.into_iter().map(PathBuf::from).collect(),
                recursive: flags.recursive,
                into: String::new(),
            }
        }
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
        "logout" | "quit" | "exit" | "bye" => {
            none()?;
            Command::Logout
        }
        "cd" => Command::Cd {
            dir: at_most_one("directory")?,
        },
        "pwd" => {
            none()?;
            Command::Pwd
        }
        "lcd" => Command::Lcd {
            dir: at_most_one("directory")?.map(PathBuf::from),
        },
        "lls" => Command::Lls {
            dir: at_most_one("directory")?.map(PathBuf::from),
        },
        "lpwd" => {
            none()?;
            Command::Lpwd
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

/// The options GET and PUT take at the prompt: `-r` (also `-R`, `--recursive`) and, for GET,
/// `-o PATH`; `--` ends them, so a name may start with `-`.
struct Flags {
    recursive: bool,
    output: Option<PathBuf>,
    rest: Vec<String>,
}

impl Flags {
    fn parse(command: &str, args: &[String], output_allowed: bool) -> Result<Self, String> {
        let mut flags = Flags {
            recursive: false,
            output: None,
            rest: Vec::new(),
        };
        let mut words = args.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "--" => {
                    flags.rest.extend(words.cloned());
                    break;
                }
                "-r" | "-R" | "--recursive" => flags.recursive = true,
                "-o" | "--output" if output_allowed => {
                    let path = words
                        .next()
                        .ok_or_else(|| format!("{} -o needs a path", command.to_uppercase()))?;
                    flags.output = Some(PathBuf::from(path));
                }
                flag if flag.starts_with('-') && flag.len() > 1 => {
                    return Err(format!(
                        "{} has no option '{}' (a name starting with '-' goes after --)",
                        command.to_uppercase(),
                        crate::paths::sanitize(flag)
                    ))
                }
                _ => flags.rest.push(word.clone()),
            }
        }
        Ok(flags)
    }
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
                output: None,
                recursive: false,
            })
        );
        assert_eq!(
            parse("put ./x").unwrap(),
            Some(Command::Put {
                paths: vec!["./x".into()],
                recursive: false,
                into: String::new(),
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
        assert!(parse("get -x a").unwrap_err().contains("no option '-x'"));
        assert_eq!(parse("put -r").unwrap_err(), "PUT needs a local path");
        assert_eq!(parse("get a -o").unwrap_err(), "GET -o needs a path");
        assert!(parse("put -o x a").is_err(), "-o is for GET only");
        assert_eq!(
            parse("cd a b").unwrap_err(),
            "CD takes at most one directory"
        );
    }

    #[test]
    fn options_and_the_prompts_own_commands() {
        assert_eq!(
            parse("get -r docs -o out -- -odd").unwrap(),
            Some(Command::Get {
                names: vec!["docs".into(), "-odd".into()],
                output: Some("out".into()),
                recursive: true,
            })
        );
        assert_eq!(
            parse("PUT *.txt --recursive").unwrap(),
            Some(Command::Put {
                paths: vec!["*.txt".into()],
                recursive: true,
                into: String::new(),
            })
        );
        assert_eq!(parse("cd").unwrap(), Some(Command::Cd { dir: None }));
        assert_eq!(
            parse("cd ..").unwrap(),
            Some(Command::Cd {
                dir: Some("..".into())
            })
        );
        assert_eq!(parse("pwd").unwrap(), Some(Command::Pwd));
        assert_eq!(parse("lpwd").unwrap(), Some(Command::Lpwd));
        assert_eq!(
            parse("lls /tmp").unwrap(),
            Some(Command::Lls {
                dir: Some("/tmp".into())
            })
        );
        assert_eq!(parse("lcd").unwrap(), Some(Command::Lcd { dir: None }));
        for word in WORDS {
            assert!(
                parse(word).is_ok() || parse(&format!("{word} x")).is_ok(),
                "{word}"
            );
        }
    }
}
