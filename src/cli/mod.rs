//! The command line. [`main`] parses it (`args`: the clap types and their conversion into the
//! library's configs), starts logging (`logging`) and the runtime, hands each mode to its module (`serve`,
//! `connect`) and turns every outcome into one status from the [`exit`] table, printing an error
//! once. Nothing below this module sees clap.

mod args;
mod connect;
pub mod exit;
mod get_link;
mod logging;
mod serve;
mod share;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Mode};
use logging::LogFormat;

/// Parses the command line, runs it, and returns the exit status.
pub fn main() -> ExitCode {
    // The matches are kept beside the parsed flags: `connect` asks them which flags were given
    // on the command line, to let those win over a host's saved settings.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)))
        .and_then(|(cli, matches)| cli.check().map(|()| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    // One thread for the QUIC endpoints and every task; what blocks or burns CPU (hashing, file
    // I/O, storage calls) runs on threads of its own (crate::transfer). A worker per core moved
    // each connection's packets between cores: a third of the transport's speed and 0.2-0.3
    // CPU s/GB per end in wake-ups (BENCHMARKS.md; quinn #1433).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qft: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.mode {
            Mode::Serve(args) => {
                logging::init(cli.verbose, "info", args.log_format);
                report(serve::serve(args).await)
            }
            Mode::Connect(args) => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                let given = connect::Given::from(matches.subcommand_matches("connect"));
                connect::connect(args, given).await
            }
            Mode::Fingerprint(args) => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                report(serve::fingerprint(args))
            }
            Mode::Id => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                report(
                    connect::client_identity()
                        .map(|id| crate::client::display::emit(&id.fingerprint().to_string())),
                )
            }
            Mode::Get(args) => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                report(get_link::get(args).await)
            }
            Mode::Share(args) => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                report(share::share(args).await)
            }
            Mode::KnownHosts(args) => {
                logging::init(cli.verbose, "warn", LogFormat::Text);
                report(connect::known_hosts(args))
            }
            Mode::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "qft", &mut std::io::stdout());
                exit::SUCCESS
            }
        }
    });
    // Don't wait for blocked readers (a prompt's stdin) on the way out.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// An error and its causes as one line, each said once: a cause already spelled out in the
/// message before it (many errors quote their source) is not repeated, and io errors lose their
/// "(os error N)" tail.
fn one_sentence(e: &anyhow::Error) -> String {
    use crate::fsutil::strip_os_error;
    let mut line = String::new();
    for cause in e.chain() {
        let text = strip_os_error(&cause.to_string());
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The status for a mode that either worked or failed; the error is printed here, once.
fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("qft: {}", one_sentence(&e));
            exit::FAILURE
        }
    }
}
