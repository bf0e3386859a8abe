//! Progress on stderr, so stdout stays clean for tables and pipes.
//!
//! On a terminal: a spinner for builds, a bar over cases. Elsewhere (a CI
//! log, a pipe) bars would be invisible, so each phase and each finished
//! case or commit is one plain line instead, as cargo does: no escapes, no
//! carriage returns. `-q` silences both, and the informational lines
//! ([`info`]); warnings and errors still print.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::OnceLock;
use std::time::Duration;

/// How progress is shown, chosen once per process ([`init`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live bars and spinners (stderr is a terminal).
    Bars,
    /// One plain line per phase and per finished step (stderr is not a terminal).
    Plain,
    /// Nothing (`-q`).
    Quiet,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Choose the mode from `-q` and whether stderr is a terminal. The first
/// call wins; without one the mode is chosen as if `quiet` were false.
pub fn init(quiet: bool) {
    let _ = MODE.set(detect(quiet));
}

fn detect(quiet: bool) -> Mode {
    if quiet {
        Mode::Quiet
    } else if console::Term::stderr().is_term() {
        Mode::Bars
    } else {
        Mode::Plain
    }
}

/// The mode in effect.
pub fn mode() -> Mode {
    *MODE.get_or_init(|| detect(false))
}

/// An informational line on stderr (not a warning or an error): silenced by `-q`.
pub fn info(line: impl AsRef<str>) {
    if mode() != Mode::Quiet {
        eprintln!("{}", line.as_ref());
    }
}

/// A spinner with `msg` on a terminal; the line `msg...` in plain mode.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let msg = msg.into();
    if mode() == Mode::Plain {
        eprintln!("{msg}...");
    }
    let pb = ProgressBar::with_draw_target(None, draw_target());
    pb.set_style(ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]").expect("valid template"));
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar over `len` steps (cases, rounds); in plain mode the line `prefix: len steps`.
pub fn bar(len: u64, prefix: impl Into<String>) -> ProgressBar {
    let prefix = prefix.into();
    if mode() == Mode::Plain {
        eprintln!("{prefix}: {len} steps");
    }
    let pb = ProgressBar::with_draw_target(Some(len), draw_target());
    pb.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed}, eta {eta}]")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
}

/// A phase of a bar starts (`prefix`, over `len` steps): the bar is reset, and
/// plain mode prints it.
pub fn phase(pb: &ProgressBar, prefix: impl Into<String>, len: u64) {
    let prefix = prefix.into();
    if mode() == Mode::Plain {
        eprintln!("{prefix}: {len} steps");
    }
    pb.set_prefix(prefix);
    pb.set_length(len);
    pb.set_position(0);
}

/// One step of `pb` finished, described by `what` (a case and its outcome, a
/// commit): the bar advances; plain mode prints `prefix [pos/len] what`.
pub fn step(pb: &ProgressBar, what: impl AsRef<str>) {
    pb.inc(1);
    if mode() == Mode::Plain {
        let len = pb.length().map(|l| l.to_string()).unwrap_or_else(|| "?".into());
        eprintln!("{} [{}/{len}] {}", pb.prefix(), pb.position(), what.as_ref());
    }
}

fn draw_target() -> ProgressDrawTarget {
    if mode() == Mode::Bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Print a line to stderr without tearing a live bar (warnings, failures:
/// printed even with `-q`).
pub fn note(pb: &ProgressBar, line: impl AsRef<str>) {
    if pb.is_hidden() {
        eprintln!("{}", line.as_ref());
    } else {
        pb.println(line.as_ref());
    }
}
