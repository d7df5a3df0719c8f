//! Progress bars: on stderr, only when stderr is a terminal, stdout is not a pipe, and not
//! `--quiet`, so that stdout stays clean for scripts. All bars of a session share one indicatif `MultiProgress`: a bar per
//! active transfer above a total bar, and results printed through [`Progress::suspend`] so a line
//! never tears a bar. Colours follow the terminal and `NO_COLOR` (indicatif's `console` checks).

use bytes::Bytes;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::transfer::Source;

/// Makes bars for transfers, or hidden ones when progress is off.
#[derive(Debug, Clone)]
pub struct Progress {
    /// `None` when bars are off: every bar is then hidden.
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Shows bars only if `enabled`, stderr is a terminal and stdout is not a pipe.
    pub fn new(enabled: bool) -> Self {
        use std::io::IsTerminal;
        let on = enabled && std::io::stderr().is_terminal() && !stdout_is_a_pipe();
        Progress {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Whether bars are drawn.
    pub fn enabled(&self) -> bool {
        self.multi.is_some()
    }

    /// A bar for one file, labelled with its (sanitized) name; the length is set when known.
    /// It is placed above `total` when given, and disappears when dropped, however the transfer
    /// ended (done, failed or cancelled).
    pub fn bar(&self, label: &str, total: Option<&Bar>) -> Bar {
        let Some(multi) = &self.multi else {
            return Bar::hidden();
        };
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(style(FILE_BAR));
        bar.set_message(crate::paths::sanitize(label));
        let bar = match total {
            // Only a total bar that is itself drawn can be placed under.
            Some(total) if total.multi.is_some() => multi.insert_before(&total.bar, bar),
            _ => multi.add(bar),
        };
        Bar {
            bar,
            multi: Some(multi.clone()),
        }
    }

    /// The bar under a batch's file bars: bytes of the whole batch, files done in its message.
    pub fn total(&self) -> Bar {
        let Some(multi) = &self.multi else {
            return Bar::hidden();
        };
        let bar = multi.add(ProgressBar::with_draw_target(
            Some(0),
            ProgressDrawTarget::hidden(),
        ));
        bar.set_style(style(
            "{msg:24!} [{bar:30.green/blue}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
        ));
        Bar {
            bar,
            multi: Some(multi.clone()),
        }
    }

    /// Runs `f` (which prints) with the bars lifted off the screen, then redraws them.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(multi) => multi.suspend(f),
            None => f(),
        }
    }
}

/// Whether stdout goes into a pipe or a socket (`qft ... get a b | tee log`). What is written
/// there reaches the terminal later, behind the bars' back: the bars' redraws (which move the
/// cursor up over the lines they drew) would then erase those lines and leave torn bars behind.
/// Bars cannot be drawn safely around output they do not control, so there are none. Stdout on
/// the terminal itself (lines printed between redraws) or in a file is fine.
fn stdout_is_a_pipe() -> bool {
    #[cfg(unix)]
    {
        use rustix::fs::{fstat, FileType};
        fstat(std::io::stdout()).is_ok_and(|st| {
            matches!(
                FileType::from_raw_mode(st.st_mode),
                FileType::Fifo | FileType::Socket
            )
        })
    }
    #[cfg(not(unix))]
    {
        use std::io::IsTerminal;
        !std::io::stdout().is_terminal()
    }
}

/// A file's bar while its bytes move.
const FILE_BAR: &str =
    "{msg:24!} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}";

/// A file's bar while what a partial already holds is checked against the other side's pieces:
/// without it a large partial meant seconds of a blank screen before anything moved.
const CHECK_BAR: &str =
    "{msg:24!} checking {total_bytes} already here [{bar:30.yellow/blue}] {percent}%";

/// Shows on `bar` that the `held` bytes of a partial are being checked (hashed, piece by piece);
/// the position then counts the bytes checked. Drawn at once: the phase may be short.
pub fn checking(bar: &ProgressBar, held: u64) {
    bar.set_style(style(CHECK_BAR));
    bar.set_length(held);
    bar.set_position(0);
    bar.tick();
}

/// Back from [`checking`] to moving bytes: `size` in all, the first `from` already here. The
/// rate starts afresh, so bytes that did not move do not count as moved.
pub fn transferring(bar: &ProgressBar, size: u64, from: u64) {
    bar.set_style(style(FILE_BAR));
    bar.set_length(size);
    bar.set_position(from);
    bar.tick();
    bar.reset_eta();
}

/// Shows on `bar` that stdin is being read (`put -`), its size unknown until it ends.
pub fn reading_stdin(bar: &ProgressBar) {
    bar.set_style(style("{msg:24!} reading stdin: {bytes} {bytes_per_sec}"));
    bar.tick();
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("static template")
        .progress_chars("=> ")
}

/// A progress bar that clears itself and leaves the `MultiProgress` when dropped; indicatif would
/// leave a cancelled one drawn.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
    multi: Option<MultiProgress>,
}

impl Bar {
    /// A bar that draws nothing (progress off, or a library caller).
    pub fn hidden() -> Bar {
        Bar {
            bar: ProgressBar::hidden(),
            multi: None,
        }
    }
}

impl std::ops::Deref for Bar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.bar
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(&self.bar);
        }
    }
}

/// A source whose reads advance a bar: what a partial holds, read to be checked.
pub(super) struct Counted<'a, S> {
    /// What is read.
    pub inner: S,
    /// Advanced by every block read.
    pub bar: &'a ProgressBar,
}

impl<S: Source + Send> Source for Counted<'_, S> {
    async fn read_block(&mut self, max: usize) -> std::io::Result<Vec<Bytes>> {
        let block = self.inner.read_block(max).await?;
        self.bar
            .inc(block.iter().map(Bytes::len).sum::<usize>() as u64);
        Ok(block)
    }
}
