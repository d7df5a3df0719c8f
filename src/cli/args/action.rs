//! The one command `qft connect HOST ACTION` runs, as clap reads it, and its conversion into the
//! prompt's [`Command`], so a command given on the command line runs the same code as one typed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::connect::jobs_range;
use crate::client::command::Command;
use crate::client::sync::{Side, SyncSpec};
use crate::client::{Keep, ShareCommand};

#[derive(Debug, Subcommand)]
pub(in crate::cli) enum Action {
    /// List files (in DIR, or the top).
    #[command(visible_alias = "ls")]
    List {
        /// A directory on the server.
        dir: Option<String>,
    },
    /// Download files into the current directory (or -o; `-o -` writes one file to stdout).
    #[command(visible_alias = "download")]
    Get {
        /// Names on the server; quote wildcards ('*.log') to match them against its listing. A
        /// last local path (/…, ./…, ../…, . or ..) is where they go, as with -o.
        #[arg(required = true)]
        names: Vec<String>,
        /// Where to write: a file name for one download, or a directory (made if missing).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Copy directories with everything in them, into a directory of the same name.
        #[arg(short, long)]
        recursive: bool,
        /// Replace existing local files (without it, one already identical is skipped).
        #[arg(short, long)]
        force: bool,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Upload local files; each is stored under its file name (in -o, or a last DIR/);
    /// `put - --name NAME` stores what stdin gives.
    #[command(visible_alias = "upload")]
    Put {
        /// Local files (wildcards the shell left alone are expanded here); a last argument
        /// ending in / that is no local path is the remote directory to store into.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Send directories with everything in them (symlinks are skipped).
        #[arg(short, long)]
        recursive: bool,
        /// Where to store on the server: a directory (several files, -r, a trailing /, or one
        /// that exists), or one file's remote name.
        #[arg(short, long, value_name = "REMOTE")]
        output: Option<String>,
        /// For `put -` (stdin): the remote name to store what it gives as.
        #[arg(long, value_name = "NAME", conflicts_with = "output")]
        name: Option<String>,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Delete files on the server.
    #[command(visible_alias = "rm")]
    Delete {
        /// Names on the server; quoted wildcards match files, never directories.
        #[arg(required = true)]
        names: Vec<String>,
        /// Delete directories with everything in them.
        #[arg(short, long)]
        recursive: bool,
        /// With -r: do not ask (needed when not at a terminal).
        #[arg(short, long, requires = "recursive")]
        yes: bool,
    },
    // Managing the server's names, and sync.
    /// Make directories on the server.
    Mkdir {
        /// Directories to make.
        #[arg(required = true)]
        names: Vec<String>,
        /// Make missing parents too; one already there is fine.
        #[arg(short, long)]
        parents: bool,
    },
    /// Remove empty directories on the server.
    Rmdir {
        /// Directories to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Rename a file or directory on the server (into TO if it is a directory); never replaces
    /// a file.
    #[command(visible_alias = "mv")]
    Rename {
        /// The name now.
        from: String,
        /// The new name, or a directory to move it into.
        to: String,
    },
    /// Show size, time, permissions and (when known, or with --sha256) the SHA-256.
    Stat {
        /// Names on the server; quoted wildcards match files.
        #[arg(required = true)]
        names: Vec<String>,
        /// Have the server read the file for its SHA-256 if it does not know it.
        #[arg(long)]
        sha256: bool,
    },
    /// Print the SHA-256 of files on the server as `sha256sum` does (check copies with
    /// `sha256sum -c`).
    Sum {
        /// Names on the server; quoted wildcards match files.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Make DST hold what SRC holds: new and changed files sent (their times kept), the same
    /// ones skipped; one side remote, written with a leading ':' (`sync ./photos :photos`,
    /// `sync :photos ./photos`; ':' alone is the top).
    Sync {
        /// Where to copy from: a local directory, or :DIR on the server.
        src: String,
        /// What to make hold the same: :DIR on the server, or a local directory.
        dst: String,
        /// Delete what DST has and SRC does not (never excluded names).
        #[arg(long)]
        delete: bool,
        /// Print what would be done; change nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Compare files by SHA-256 (the server's where it knows it) instead of size and time.
        #[arg(short, long)]
        checksum: bool,
        /// Keep permission bits too (never setuid, setgid or sticky).
        #[arg(long)]
        perms: bool,
        /// Leave out names matching GLOB (repeatable): without '/' a name at any depth, with one
        /// the path from the top; a trailing '/' matches directories only.
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Read --exclude patterns from FILE, one a line ('#' starts a comment).
        #[arg(long, value_name = "FILE")]
        exclude_from: Vec<PathBuf>,
        /// Transfers to run at once, each on its own stream [default: 16].
        #[arg(short, long, value_name = "N", value_parser = jobs_range())]
        jobs: Option<u16>,
    },
    /// Show how much more the server can store (its free space as uploads see it).
    Df,
    /// Make a share link to a file or directory, for a browser or `qft get LINK` (needs the
    /// admin permission and a server started with --web); --list the links, --revoke one.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["name", "list", "revoke"])))]
    Share {
        /// The file or directory on the server.
        name: Option<String>,
        /// How long the link works (e.g. 30m, 1h, 7d; at most 30d).
        #[arg(long, value_name = "TIME", default_value = "1d", value_parser = crate::client::parse_expiry)]
        expires: Duration,
        /// A drop box: the link uploads new files into the directory, and can neither list nor
        /// download.
        #[arg(long)]
        upload_only: bool,
        /// Transfers (downloads or uploads) the link allows in all.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        uses: Option<u64>,
        /// The page's address as the link's holder reaches it (an https proxy in front of the
        /// server, say). Default: this server's host at its port.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// List the server's links.
        #[arg(long, conflicts_with_all = ["name", "revoke"])]
        list: bool,
        /// Revoke the link with this ID (as --list shows it).
        #[arg(long, value_name = "ID", conflicts_with = "name")]
        revoke: Option<String>,
    },
    /// Show the server's command reference.
    Help,
    /// Stop the server gracefully (needs the admin permission).
    Shutdown,
}

/// What a transfer keeps besides the bytes (get, put).
#[derive(Debug, Args)]
pub(in crate::cli) struct KeepArgs {
    /// Keep the modification time (as scp -p).
    #[arg(short = 'p', long)]
    preserve: bool,
    /// Keep the permission bits (never setuid, setgid or sticky).
    #[arg(long)]
    perms: bool,
}

impl From<KeepArgs> for Keep {
    fn from(args: KeepArgs) -> Self {
        Keep {
            time: args.preserve,
            perms: args.perms,
        }
    }
}

impl Action {
    /// `-j` given to this command, if it takes one.
    pub(in crate::cli) fn jobs(&self) -> Option<u16> {
        match self {
            Action::Get { jobs, .. } | Action::Put { jobs, .. } | Action::Sync { jobs, .. } => {
                *jobs
            }
            _ => None,
        }
    }

    /// What clap cannot check: `sync` with exactly one remote side.
    pub(in crate::cli) fn check(&self) -> Result<(), String> {
        match self {
            Action::Sync {
                src, dst, exclude, ..
            } => {
                SyncSpec::new(src, dst)?;
                crate::client::sync::Excludes::new(exclude).map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

impl From<Action> for Command {
    fn from(action: Action) -> Self {
        match action {
            Action::List { dir } => Command::List {
                dir: dir.unwrap_or_default(),
            },
            Action::Get {
                names,
                output,
                recursive,
                force,
                keep,
                ..
            } => {
                let (names, output) = crate::client::command::get_destination(names, output);
                Command::Get {
                    names,
                    output,
                    recursive,
                    force,
                    keep: keep.into(),
                }
            }
            Action::Put {
                paths,
                recursive,
                output,
                keep,
                name,
                ..
            } => Command::Put {
                paths,
                recursive,
                into: String::new(),
                // `--name` is `-o NAME` said for stdin, which has no name of its own.
                output: output.or(name),
                keep: keep.into(),
            },
            Action::Df => Command::Df,
            Action::Delete {
                names,
                recursive: false,
                ..
            } => Command::Delete { names },
            // Managing the server's names, and sync.
            Action::Delete { names, yes, .. } => Command::DeleteTree { names, yes },
            Action::Mkdir { names, parents } => Command::Mkdir { names, parents },
            Action::Rmdir { names } => Command::Rmdir { names },
            Action::Rename { from, to } => Command::Rename { from, to },
            Action::Stat { names, sha256 } => Command::Stat {
                names,
                digest: sha256,
            },
            Action::Sum { names } => Command::Sum {
                names,
                into: String::new(),
            },
            Action::Sync {
                src,
                dst,
                delete,
                dry_run,
                checksum,
                perms,
                exclude,
                exclude_from,
                ..
            } => {
                // Checked already ([`Cli::check`]); a spec that is wrong anyway is refused when
                // it runs.
                let base = SyncSpec::new(&src, &dst).unwrap_or_else(|_| SyncSpec {
                    src: Side::Local(src.into()),
                    dst: Side::Local(dst.into()),
                    ..SyncSpec::new(".", ":").expect("one remote side")
                });
                Command::Sync(SyncSpec {
                    delete,
                    dry_run,
                    checksum,
                    perms,
                    excludes: exclude,
                    exclude_from,
                    ..base
                })
            }
            Action::Share { list: true, .. } => Command::Share(ShareCommand::List),
            Action::Share {
                revoke: Some(id), ..
            } => Command::Share(ShareCommand::Revoke { id }),
            Action::Share {
                name,
                expires,
                upload_only,
                uses,
                url,
                ..
            } => Command::Share(ShareCommand::Create {
                // clap requires one of name, --list, --revoke.
                name: name.unwrap_or_default(),
                expires,
                upload_only,
                uses,
                url,
            }),
            Action::Help => Command::Help,
            Action::Shutdown => Command::Shutdown,
        }
    }
}
