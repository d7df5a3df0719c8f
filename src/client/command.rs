//! Commands as a person types them at the prompt: the original design's names, case-insensitive,
//! with short aliases, each with the options that apply to it (and only those).

use std::path::PathBuf;

use super::keep::Keep;
use super::local::expand_tilde;
use super::share::ShareCommand;
use super::sync::SyncSpec;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LIST [-l] [dir | file | pattern]`
    List {
        /// "" for the root; a file lists that file alone, a pattern what it matches.
        dir: String,
    },
    /// `DOWNLOAD [-r] [-f] [-o PATH] <name>...`
    Get {
        /// Remote names; wildcards in the last part match against the server's listing.
        names: Vec<String>,
        /// Where to write: a file (one name) or a directory; `None` is the current directory.
        output: Option<PathBuf>,
        /// Copy directories with everything in them.
        recursive: bool,
        /// Replace existing local files (otherwise an identical one is skipped, a different one
        /// refused).
        force: bool,
        /// What the local files keep of the server's (`-p`: the time, `--perms`: the bits).
        keep: Keep,
    },
    /// `UPLOAD [-r] [-o REMOTE] <path>... [REMOTE_DIR/]`
    Put {
        /// Local paths; wildcards are expanded on the local disk. Each is stored under its file
        /// name.
        paths: Vec<PathBuf>,
        /// Send directories with everything in them.
        recursive: bool,
        /// The remote directory names are relative to ("" for the root): the prompt's `cd`.
        into: String,
        /// Where to store, as typed (relative to `into`): a remote directory (several paths, a
        /// tree, a trailing `/`, or a directory that exists) or, for one file, its remote name.
        output: Option<String>,
        /// What the stored files keep of the local ones (`-p`: the time, `--perms`: the bits).
        keep: Keep,
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
    /// `lls [-l] [dir | file]`: list a local directory (or show one file).
    Lls {
        /// The directory (the current one without an argument).
        dir: Option<PathBuf>,
    },
    /// `lpwd`: show the local working directory.
    Lpwd,
    /// `DF`: how much more the server can store.
    Df,
    /// `!command`: run a local shell command (`!` alone: an interactive shell), as in sftp.
    Shell {
        /// The command line for the shell; `None` for the shell itself.
        command: Option<String>,
    },
    // Managing the server's names, and sync.
    /// `MKDIR [-p] <dir>...`
    Mkdir {
        /// Remote directories to make.
        names: Vec<String>,
        /// Make missing parents; one already there is fine.
        parents: bool,
    },
    /// `RMDIR <dir>...`: remove empty remote directories.
    Rmdir {
        /// Remote directories.
        names: Vec<String>,
    },
    /// `RENAME <from> <to>` (`mv`): into `to` if it is a directory (or ends in `/`).
    Rename {
        /// The remote name.
        from: String,
        /// Its new name, or the directory to move it into.
        to: String,
    },
    /// `STAT [--sha256] <name>...`
    Stat {
        /// Remote names; wildcards match files.
        names: Vec<String>,
        /// Have the server compute the SHA-256 if it does not know it.
        digest: bool,
    },
    /// `SUM <name>...`: `SHA256  NAME` lines, as sha256sum prints them.
    Sum {
        /// Remote names as typed (relative to `into`); wildcards match files.
        names: Vec<String>,
        /// The remote directory names are relative to ("" for the root): the prompt's `cd`.
        /// Lines name files relative to it, as they were typed.
        into: String,
    },
    /// `DELETE -r [-y] <name>...`: a directory and everything in it.
    DeleteTree {
        /// Remote names.
        names: Vec<String>,
        /// Do not ask (and, away from a terminal, where nobody can be asked, proceed).
        yes: bool,
    },
    /// `SYNC [options] SRC DST`: make DST hold what SRC holds.
    Sync(SyncSpec),
    /// `SHARE NAME [options]`, `SHARE --list`, `SHARE --revoke ID` (admin only).
    Share(ShareCommand),
}

/// Every command word the prompt knows, for completion and "did you mean".
pub const WORDS: &[&str] = &[
    "bye", "cd", "delete", "df", "download", "exit", "get", "help", "lcd", "list", "lls", "logout",
    "lpwd", "ls", "mkdir", "mv", "put", "pwd", "quit", "rename", "rm", "rmdir", "share",
    "shutdown", "stat", "sum", "sync", "upload",
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
        "get" | "download" | "rm" | "delete" | "ls" | "list" => Some(false),
        "mv" | "rename" | "stat" | "sum" | "share" => Some(false),
        "cd" | "mkdir" | "rmdir" => Some(true),
        _ => None,
    }
}

/// A line of a script (or of a paste) that starts with `-` may fail without stopping the lines
/// after it, as in `sftp -b`. Returns whether it may, and the line without the `-`.
pub fn may_fail(line: &str) -> (bool, &str) {
    match line.trim_start().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, line),
    }
}

/// Parses a prompt line. `Ok(None)` for a blank line. Arguments may be quoted as in a shell.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    if let Some(rest) = line.trim_start().strip_prefix('!') {
        let rest = rest.trim();
        return Ok(Some(Command::Shell {
            command: (!rest.is_empty()).then(|| rest.to_owned()),
        }));
    }
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    let Some((first, args)) = words.split_first() else {
        return Ok(None);
    };
    let upper = first.to_uppercase();
    let options = |allowed: &'static [Opt]| Flags::parse(&upper, args, allowed);
    let none = || -> Result<(), String> {
        match args.is_empty() {
            true => Ok(()),
            false => Err(format!("{upper} takes no arguments")),
        }
    };
    let at_most_one = |what: &str, rest: Vec<String>| -> Result<Option<String>, String> {
        match <[String; 1]>::try_from(rest) {
            Ok([one]) => Ok(Some(one)),
            Err(rest) if rest.is_empty() => Ok(None),
            Err(_) => Err(format!("{upper} takes at most one {what}")),
        }
    };
    let command = match first.to_lowercase().as_str() {
        "list" | "ls" => {
            // The listing is always the long one; `-l` is accepted for the habit.
            let flags = options(&[Opt::Long])?;
            Command::List {
                dir: at_most_one("directory", flags.rest)?.unwrap_or_default(),
            }
        }
        "download" | "get" => {
            let flags = options(&[
                Opt::Recursive,
                Opt::Output,
                Opt::Force,
                Opt::Preserve,
                Opt::Perms,
            ])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a file name"));
            }
            Command::Get {
                names: flags.rest,
                output: flags.output.as_deref().map(expand_tilde),
                recursive: flags.recursive,
                force: flags.force,
                keep: flags.keep,
            }
        }
        "upload" | "put" => {
            let flags = options(&[Opt::Recursive, Opt::Output, Opt::Preserve, Opt::Perms])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a local path"));
            }
            // At the prompt stdin is the prompt's own input (the terminal, or the script).
            if flags.rest.iter().any(|p| p == super::pipe::STD_STREAM) {
                return Err(format!(
                    "{upper} - reads stdin, which is this prompt's own input; run it as one \
                     command: qft connect HOST put - --name NAME"
                ));
            }
            Command::Put {
                paths: flags.rest.iter().map(|p| expand_tilde(p)).collect(),
                recursive: flags.recursive,
                into: String::new(),
                output: flags.output,
                keep: flags.keep,
            }
        }
        "delete" | "rm" => {
            let flags = options(&[Opt::Recursive, Opt::Yes])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a file name"));
            }
            match flags.recursive {
                true => Command::DeleteTree {
                    names: flags.rest,
                    yes: flags.yes,
                },
                false => Command::Delete { names: flags.rest },
            }
        }
        "mkdir" => {
            let flags = options(&[Opt::Parents])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a directory name"));
            }
            Command::Mkdir {
                names: flags.rest,
                parents: flags.parents,
            }
        }
        "rmdir" => {
            let flags = options(&[])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a directory name"));
            }
            Command::Rmdir { names: flags.rest }
        }
        "rename" | "mv" => match <[String; 2]>::try_from(options(&[])?.rest) {
            Ok([from, to]) => Command::Rename { from, to },
            Err(_) => return Err(format!("{upper} needs two names: the old and the new")),
        },
        "stat" => {
            let flags = options(&[Opt::Sha256])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a name"));
            }
            Command::Stat {
                names: flags.rest,
                digest: flags.sha256,
            }
        }
        "sum" => {
            let flags = options(&[])?;
            if flags.rest.is_empty() {
                return Err(format!("{upper} needs a file name"));
            }
            Command::Sum {
                names: flags.rest,
                into: String::new(),
            }
        }
        "sync" => Command::Sync(SyncSpec::parse(args)?),
        "share" => Command::Share(ShareCommand::parse(args)?),
        "help" | "?" => {
            none()?;
            Command::Help
        }
        "shutdown" => {
            none()?;
            Command::Shutdown
        }
        "df" => {
            none()?;
            Command::Df
        }
        "logout" | "quit" | "exit" | "bye" => {
            none()?;
            Command::Logout
        }
        "cd" => Command::Cd {
            dir: at_most_one("directory", options(&[])?.rest)?,
        },
        "pwd" => {
            none()?;
            Command::Pwd
        }
        "lcd" => Command::Lcd {
            dir: at_most_one("directory", options(&[])?.rest)?.map(|d| expand_tilde(&d)),
        },
        "lls" => Command::Lls {
            dir: at_most_one("directory", options(&[Opt::Long])?.rest)?.map(|d| expand_tilde(&d)),
        },
        "lpwd" => {
            none()?;
            Command::Lpwd
        }
        other => {
            let other = crate::paths::sanitize(other);
            return Err(match closest(&other.to_lowercase(), WORDS) {
                Some(word) => format!(
                    "unknown command '{other}'; did you mean '{word}'? (HELP lists them all)"
                ),
                None => format!("unknown command '{other}'; type HELP for the list"),
            });
        }
    };
    Ok(Some(command))
}

/// An option a command may take at the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    /// `-r`, `-R`, `--recursive`
    Recursive,
    /// `-o PATH`, `--output PATH`
    Output,
    /// `-f`, `--force`
    Force,
    /// `-l`, `-a`: the listing is always long and shows every name; accepted because people
    /// type them.
    Long,
    /// `-p`, `--parents` (mkdir)
    Parents,
    /// `-p`, `--preserve` (get, put): keep the modification time
    Preserve,
    /// `--perms` (get, put): keep the permission bits
    Perms,
    /// `-y`, `--yes` (rm -r): do not ask
    Yes,
    /// `--sha256` (stat)
    Sha256,
}

impl Opt {
    fn spellings(self) -> &'static [&'static str] {
        match self {
            Opt::Recursive => &["-r", "-R", "--recursive"],
            Opt::Output => &["-o", "--output"],
            Opt::Force => &["-f", "--force"],
            Opt::Long => &["-l", "-a"],
            Opt::Parents => &["-p", "--parents"],
            Opt::Preserve => &["-p", "--preserve"],
            Opt::Perms => &["--perms"],
            Opt::Yes => &["-y", "--yes"],
            Opt::Sha256 => &["--sha256"],
        }
    }

    fn shown(self) -> &'static str {
        match self {
            Opt::Recursive => "-r",
            Opt::Output => "-o PATH",
            Opt::Force => "-f",
            Opt::Long => "-l",
            Opt::Parents | Opt::Preserve => "-p",
            Opt::Perms => "--perms",
            Opt::Yes => "-y",
            Opt::Sha256 => "--sha256",
        }
    }
}

/// The options of one command line, and the words that are not options. `--` ends the options,
/// so a name may start with `-`. Single-letter options combine (`-rf`).
struct Flags {
    recursive: bool,
    output: Option<String>,
    force: bool,
    rest: Vec<String>,
    parents: bool,
    keep: Keep,
    yes: bool,
    sha256: bool,
}

impl Flags {
    fn parse(command: &str, args: &[String], allowed: &[Opt]) -> Result<Self, String> {
        let mut flags = Flags {
            recursive: false,
            output: None,
            force: false,
            rest: Vec::new(),
            parents: false,
            keep: Keep::default(),
            yes: false,
            sha256: false,
        };
        let mut words = args.iter();
        while let Some(word) = words.next() {
            if word == "--" {
                flags.rest.extend(words.cloned());
                break;
            }
            if !word.starts_with('-') || word.len() == 1 {
                flags.rest.push(word.clone());
                continue;
            }
            // "-rf" is "-r -f"; a long option is itself.
            let given: Vec<String> = if word.starts_with("--") {
                vec![word.clone()]
            } else {
                word.chars().skip(1).map(|c| format!("-{c}")).collect()
            };
            for flag in given {
                let opt = allowed
                    .iter()
                    .copied()
                    .find(|o| o.spellings().contains(&flag.as_str()))
                    .ok_or_else(|| unknown_option(command, &flag, allowed))?;
                match opt {
                    Opt::Recursive => flags.recursive = true,
                    Opt::Force => flags.force = true,
                    Opt::Long => {}
                    Opt::Parents => flags.parents = true,
                    Opt::Preserve => flags.keep.time = true,
                    Opt::Perms => flags.keep.perms = true,
                    Opt::Yes => flags.yes = true,
                    Opt::Sha256 => flags.sha256 = true,
                    Opt::Output => {
                        let path = words
                            .next()
                            .ok_or_else(|| format!("{command} -o needs a path"))?;
                        flags.output = Some(path.clone());
                    }
                }
            }
        }
        Ok(flags)
    }
}

/// "GET has no option '-x'", with what it does take, and the nearest if it looks like a typo.
fn unknown_option(command: &str, flag: &str, allowed: &[Opt]) -> String {
    let flag = crate::paths::sanitize(flag);
    let mut text = format!("{command} has no option '{flag}'");
    let spellings: Vec<&str> = allowed
        .iter()
        .flat_map(|o| o.spellings())
        .copied()
        .collect();
    if let Some(near) = closest(&flag, &spellings).filter(|_| flag.starts_with("--")) {
        text.push_str(&format!("; did you mean '{near}'?"));
    } else if allowed.is_empty() {
        text.push_str(" (it takes none)");
    } else {
        let shown: Vec<&str> = allowed.iter().map(|o| o.shown()).collect();
        text.push_str(&format!(" (it takes {})", shown.join(", ")));
    }
    text.push_str("; a name starting with '-' goes after --");
    text
}

/// The word of `words` nearest to `typed`, if it is near enough to be a slip of the fingers
/// (at most two edits, and fewer than the word's length).
fn closest<'w>(typed: &str, words: &[&'w str]) -> Option<&'w str> {
    words
        .iter()
        .map(|w| (distance(typed, w), *w))
        .filter(|(d, w)| *d <= 2 && *d < w.len().min(typed.len()).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(names: &[&str], output: Option<&str>, recursive: bool, force: bool) -> Command {
        Command::Get {
            names: names.iter().map(|n| n.to_string()).collect(),
            output: output.map(PathBuf::from),
            recursive,
            force,
            keep: Keep::default(),
        }
    }

    fn put(paths: &[&str], recursive: bool, output: Option<&str>) -> Command {
        Command::Put {
            paths: paths.iter().map(PathBuf::from).collect(),
            recursive,
            into: String::new(),
            output: output.map(str::to_owned),
            keep: Keep::default(),
        }
    }

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
            Some(get(&["my file.txt", "b"], None, false, false))
        );
        assert_eq!(parse("put ./x").unwrap(), Some(put(&["./x"], false, None)));
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
            .contains("unknown command 'frobnicate'; type HELP"));
        assert_eq!(parse("get 'open").unwrap_err(), "unbalanced quotes");
        let bad = parse("get -x a").unwrap_err();
        assert!(
            bad.contains("no option '-x' (it takes -r, -o PATH, -f, -p, --perms)"),
            "{bad}"
        );
        assert_eq!(parse("put -r").unwrap_err(), "PUT needs a local path");
        assert_eq!(parse("get a -o").unwrap_err(), "GET -o needs a path");
        assert!(
            parse("put -f a").is_err(),
            "an upload replaces anyway: no -f"
        );
        assert!(parse("rmdir -r a").unwrap_err().contains("(it takes none)"));
        assert_eq!(
            parse("cd a b").unwrap_err(),
            "CD takes at most one directory"
        );
    }

    #[test]
    fn regression_an_unknown_command_or_option_says_what_was_meant() {
        let typo = parse("lsa").unwrap_err();
        assert!(typo.contains("did you mean 'ls'?"), "{typo}");
        assert!(parse("gte a").unwrap_err().contains("did you mean 'get'?"));
        assert!(parse("lpdw").unwrap_err().contains("did you mean 'lpwd'?"));
        let far = parse("xyzzy").unwrap_err();
        assert!(!far.contains("did you mean"), "{far}");
        let option = parse("get --froce a").unwrap_err();
        assert!(option.contains("did you mean '--force'?"), "{option}");
    }

    #[test]
    fn regression_force_at_the_prompt_for_get() {
        for line in ["get -f a", "get --force a", "GET a -f", "get -rf a"] {
            let Some(Command::Get { force, .. }) = parse(line).unwrap() else {
                panic!("{line}")
            };
            assert!(force, "{line}");
        }
        assert_eq!(
            parse("get -rf d -o out").unwrap(),
            Some(get(&["d"], Some("out"), true, true))
        );
    }

    #[test]
    fn options_and_the_prompts_own_commands() {
        assert_eq!(
            parse("get -r docs -o out -- -odd").unwrap(),
            Some(get(&["docs", "-odd"], Some("out"), true, false))
        );
        assert_eq!(
            parse("PUT *.txt --recursive").unwrap(),
            Some(put(&["*.txt"], true, None))
        );
        assert_eq!(
            parse("put a b -o docs/").unwrap(),
            Some(put(&["a", "b"], false, Some("docs/")))
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
        assert_eq!(
            parse("ls -l sub").unwrap(),
            Some(Command::List { dir: "sub".into() })
        );
        assert_eq!(parse("lls -la").unwrap(), Some(Command::Lls { dir: None }));
        assert_eq!(parse("lcd").unwrap(), Some(Command::Lcd { dir: None }));
        assert_eq!(
            parse("!ls -l | wc").unwrap(),
            Some(Command::Shell {
                command: Some("ls -l | wc".into())
            })
        );
        assert_eq!(
            parse(" ! ").unwrap(),
            Some(Command::Shell { command: None })
        );
        for word in WORDS {
            assert!(
                parse(word).is_ok()
                    || parse(&format!("{word} x")).is_ok()
                    || parse(&format!("{word} x :y")).is_ok(),
                "{word}"
            );
        }
    }

    #[test]
    fn managing_commands_and_their_options() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse("mkdir -p a/b c").unwrap(),
            Some(Command::Mkdir {
                names: strings(&["a/b", "c"]),
                parents: true
            })
        );
        assert_eq!(
            parse("mv a 'b c'").unwrap(),
            Some(Command::Rename {
                from: "a".into(),
                to: "b c".into()
            })
        );
        assert!(parse("rename a").unwrap_err().contains("two names"));
        assert_eq!(
            parse("rm -ry d").unwrap(),
            Some(Command::DeleteTree {
                names: strings(&["d"]),
                yes: true
            })
        );
        assert_eq!(
            parse("rm d").unwrap(),
            Some(Command::Delete {
                names: strings(&["d"])
            })
        );
        assert_eq!(
            parse("stat --sha256 f").unwrap(),
            Some(Command::Stat {
                names: strings(&["f"]),
                digest: true
            })
        );
        let Some(Command::Get { keep, .. }) = parse("get -p --perms f").unwrap() else {
            panic!()
        };
        assert_eq!(
            keep,
            Keep {
                time: true,
                perms: true
            }
        );
        let Some(Command::Put { keep, .. }) = parse("put -rp d").unwrap() else {
            panic!()
        };
        assert!(keep.time && !keep.perms);
        assert!(parse("mkdir --perms d").is_err());
    }

    #[test]
    fn a_leading_dash_lets_a_line_fail() {
        assert_eq!(may_fail("-rm x"), (true, "rm x"));
        assert_eq!(may_fail("  -cd a"), (true, "cd a"));
        assert_eq!(may_fail("rm -x"), (false, "rm -x"));
    }

    #[test]
    fn typos_are_near_and_other_words_are_not() {
        assert_eq!(distance("ls", "ls"), 0);
        assert_eq!(distance("lsa", "ls"), 1);
        assert_eq!(distance("gte", "get"), 1);
        assert_eq!(closest("x", WORDS), None);
        assert_eq!(closest("putt", WORDS), Some("put"));
    }
}
