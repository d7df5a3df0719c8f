//! The command line. [`main`] parses it (`args`: the clap types and their conversion into the
//! library's configs), starts logging and the runtime, hands each mode to its module (`serve`,
//! `connect`) and turns every outcome into one status from the [`exit`] table, printing an error
//! once. Nothing below this module sees clap.

mod args;
mod connect;
pub mod exit;
mod serve;
mod share;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use args::{Cli, Mode};

/// Parses the command line, runs it, and returns the exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qft: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.mode {
            Mode::Serve(args) => {
                init_logging(cli.verbose, "info");
                report(serve::serve(args).await)
            }
            Mode::Connect(args) => {
                init_logging(cli.verbose, "warn");
                connect::connect(args).await
            }
            Mode::Fingerprint(args) => {
                init_logging(cli.verbose, "warn");
                report(serve::fingerprint(args))
            }
            Mode::Id => {
                init_logging(cli.verbose, "warn");
                report(
                    connect::client_identity()
                        .map(|id| crate::client::display::emit(&id.fingerprint().to_string())),
                )
            }
            Mode::Share(args) => {
                init_logging(cli.verbose, "warn");
                report(share::share(args))
            }
            Mode::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "qft", &mut std::io::stdout());
                exit::SUCCESS
            }
        }
    });
    // Don't wait for blocked readers (a prompt's stdin) on the way out.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// The status for a mode that either worked or failed; the error is printed here, once.
fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("qft: {e:#}");
            exit::FAILURE
        }
    }
}

/// Logs to stderr: `default` for qft's own events (debug with -v, trace with -vv), warnings from
/// the libraries; RUST_LOG replaces all of it.
fn init_logging(verbose: u8, default: &str) {
    let level = match verbose {
        0 => default,
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,qft={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
