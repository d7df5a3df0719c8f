//! The command line as clap sees it: the modes and their flags, the parsers for sizes and
//! addresses, and the conversions from flags into the library's plain configs ([`Tuning`],
//! [`Limits`], [`Command`]). The only module of qft that names clap's derive types.
//!
//! This file holds the top ([`Cli`] and its [`Mode`]s) and the small modes' flags; each large
//! mode's flags have a file of their own (`serve`; `connect`, whose one command is an `action`),
//! and so do the network flags both ends take (`tuning`).
//!
//! [`Tuning`]: crate::tuning::Tuning
//! [`Limits`]: crate::server::Limits
//! [`Command`]: crate::client::command::Command

mod action;
mod connect;
mod serve;
mod tuning;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

pub(super) use connect::ConnectArgs;
pub(super) use serve::ServeArgs;

/// qft: secure file transfer over QUIC.
#[derive(Debug, Parser)]
#[command(name = "qft", version, about, propagate_version = true)]
pub(super) struct Cli {
    /// More log detail (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(super) verbose: u8,
    #[command(subcommand)]
    pub(super) mode: Mode,
}

#[derive(Debug, Subcommand)]
pub(super) enum Mode {
    /// Serve a directory over QUIC.
    Serve(ServeArgs),
    /// Connect to a server: an interactive prompt, or one command and exit.
    Connect(ConnectArgs),
    /// Print the fingerprint of this machine's server identity (made on first use).
    Fingerprint(FingerprintArgs),
    /// Print this client's fingerprint (made on first use), for a server's authorized-clients file.
    Id,
    /// Make a link that lets a browser download (or upload) one file or directory; --list, --revoke.
    Share(super::share::ShareArgs),
    /// Download the file a share link names (verified), without a server address or key.
    Get(super::get_link::GetLinkArgs),
    /// Show or edit the servers this client trusts (the qft home's known_hosts).
    KnownHosts(KnownHostsArgs),
    /// Print a shell completion script (e.g. `qft completions bash > ~/.local/share/bash-completion/completions/qft`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(super) struct KnownHostsArgs {
    /// Remove every key recorded for HOST[:PORT] (as `ssh-keygen -R`), e.g. after the server's
    /// identity was deliberately replaced.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(super) forget: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct FingerprintArgs {
    /// Print the fingerprint of this certificate (PEM) instead.
    #[arg(long, value_name = "PEM")]
    pub(super) cert: Option<PathBuf>,
}

impl Cli {
    /// What clap cannot check, as a usage error.
    pub(super) fn check(&self) -> Result<(), clap::Error> {
        let Mode::Connect(ConnectArgs {
            action: Some(action),
            ..
        }) = &self.mode
        else {
            return Ok(());
        };
        action.check().map_err(|why| {
            use clap::CommandFactory;
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{why}\n"))
                .format(&mut Cli::command())
        })
    }
}
