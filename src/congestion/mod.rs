//! Congestion control beyond quinn's own: a window held to a multiple of the path's measured
//! bandwidth-delay product ([`Capped`]), and a controller chosen by the path's round trip
//! ([`ByPath`]). Each has a file of its own.

mod by_path;
mod capped;

pub use by_path::{ByPath, ByPathFactory, SHORT_PATH};
pub use capped::{Capped, CappedFactory};
