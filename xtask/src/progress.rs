//! Terminal progress: a spinner for builds, a bar over benchmark cases.
//! Everything goes to stderr so stdout stays clean for tables and pipes.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// A spinner with `msg`, hidden when stderr is not a terminal.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, draw_target());
    pb.set_style(ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]").expect("valid template"));
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar over `len` steps (cases, rounds).
pub fn bar(len: u64, prefix: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), draw_target());
    pb.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed}, eta {eta}]")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.into());
    pb
}

fn draw_target() -> ProgressDrawTarget {
    if console::Term::stderr().is_term() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Print a line to stderr without tearing a live bar.
pub fn note(pb: &ProgressBar, line: impl AsRef<str>) {
    if pb.is_hidden() {
        eprintln!("{}", line.as_ref());
    } else {
        pb.println(line.as_ref());
    }
}
