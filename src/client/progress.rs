//! Progress bars: on stderr, only when stderr is a terminal and not `--quiet`, so that stdout
//! stays clean for scripts.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes a bar per transfer, or hidden ones when progress is off.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Shows bars only if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        use std::io::IsTerminal;
        Progress {
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }

    /// A bar for one file, labelled with its (sanitized) name; the length is set when known.
    pub fn bar(&self, label: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(crate::paths::sanitize(label));
        bar
    }
}
