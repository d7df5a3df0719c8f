//! qft's integration tests: one binary (one link step), a module per area.
//! Every test runs a real server on 127.0.0.1 with a real client and real files in temp dirs.

mod adversarial;
mod bounds;
mod browser;
mod bundles;
mod bwlimit;
mod cli;
mod commands;
mod commits;
mod compress;
mod contract;
mod corruption;
mod crash;
mod crowds;
mod df;
mod faults;
mod habits;
mod hostile;
mod hosts;
mod manage;
mod many;
mod names;
mod operations;
mod pipes;
mod polish;
mod prompt;
#[cfg(unix)]
mod races;
mod relay;
mod resume;
mod resume_feedback;
mod s3;
mod safety;
mod seaweed;
mod serving;
mod sessions;
mod share;
mod shell;
mod support;
mod sync;
mod trust;
mod web;
