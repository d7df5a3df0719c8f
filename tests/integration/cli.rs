//! The binary as a person and a script use it.
