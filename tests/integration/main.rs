//! qft's integration tests: one binary (one link step), a module per area.
//! Every test runs a real server on 127.0.0.1 with a real client and real files in temp dirs.

mod cli;
mod commands;
mod corruption;
mod many;
mod names;
mod prompt;
mod shell;
mod support;
mod trust;
