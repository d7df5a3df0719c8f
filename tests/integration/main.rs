//! qft's integration tests: one binary (one link step), a module per area.
//! Every test runs a real server on 127.0.0.1 with a real client and real files in temp dirs.

mod adversarial;
mod cli;
mod commands;
mod corruption;
mod faults;
mod names;
mod relay;
mod safety;
mod support;
mod trust;
