//! Where results go: colors on stdout (`--color`) and the output files
//! (`--json-output`, `--markdown`, `--csv`), each a PATH or `-` for stdout.

use clap::ValueEnum;
use std::sync::OnceLock;

/// `--color`: whether the tables on stdout take ANSI colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// When stdout is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always (even piped, even with `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

static COLOR: OnceLock<ColorWhen> = OnceLock::new();

/// Set `--color` for this process (the first call wins).
pub fn init_color(when: ColorWhen) {
    let _ = COLOR.set(when);
}

/// Whether stdout takes colors.
pub fn color() -> bool {
    match COLOR.get().copied().unwrap_or_default() {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => console::Term::stdout().is_term() && std::env::var_os("NO_COLOR").is_none(),
    }
}
