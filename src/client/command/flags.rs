//! The options of one command line: which a command takes ([`Opt`]), how they are spelled and
//! combined ([`Flags`]), and the sentence for one it does not take.

use super::typo::closest;
use crate::client::keep::Keep;

/// An option a command may take at the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opt {
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
pub(super) struct Flags {
    /// `-r`
    pub(super) recursive: bool,
    /// `-o PATH`, as typed.
    pub(super) output: Option<String>,
    /// `-f`
    pub(super) force: bool,
    /// The words that are not options, in order.
    pub(super) rest: Vec<String>,
    /// `-p` for mkdir.
    pub(super) parents: bool,
    /// `-p` and `--perms` for get and put.
    pub(super) keep: Keep,
    /// `-y`
    pub(super) yes: bool,
    /// `--sha256`
    pub(super) sha256: bool,
}

impl Flags {
    pub(super) fn parse(command: &str, args: &[String], allowed: &[Opt]) -> Result<Self, String> {
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
