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
    /// It disappears when dropped, however the transfer ended (done, failed or cancelled).
    pub fn bar(&self, label: &str) -> Bar {
        Bar(self.make(label))
    }

    fn make(&self, label: &str) -> ProgressBar {
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

/// A progress bar that clears itself when dropped; indicatif would leave a cancelled one drawn.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl std::ops::Deref for Bar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
