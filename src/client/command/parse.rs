//! A prompt line into a [`Command`]: which word names which command, and what each command
//! accepts and requires.

use super::flags::{Flags, Opt};
use super::typo::closest;
use super::{Command, WORDS};
use crate::client::local::expand_tilde;
use crate::client::share::ShareCommand;
use crate::client::sync::SyncSpec;

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
            let (names, output) =
                super::get_destination(flags.rest, flags.output.as_deref().map(expand_tilde));
            Command::Get {
                names,
                output,
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
            if flags
                .rest
                .iter()
                .any(|p| p == crate::client::pipe::STD_STREAM)
            {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::client::keep::Keep;

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
}
