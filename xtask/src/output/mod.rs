//! The output layer: every result kind ([`Results`]: a run, a comparison, a
//! history, an optimize run) goes through one interface, [`Exporter`], to
//! every [`Format`] (terminal table, JSON, Markdown, CSV, HTML), as
//! hyperfine's exporters do.
//!
//! * [`format`]: numbers, units, percentages and verdict words, for all formats;
//! * [`export`]: the trait and one exporter per format;
//! * [`table`] (a run) and [`report`] (a comparison): terminal tables, Markdown, CSV;
//! * [`csv`]: CSV cells that a spreadsheet cannot run as formulas;
//! * [`html`]: the pages, from minijinja templates (`xtask/templates/`) with
//!   one stylesheet; [`svg`]: the one plot module of every page.
//!
//! This module itself: colors on stdout (`--color`) and where the output files
//! go (`--json-output`, `--markdown`, `--csv`, each a PATH or `-` for stdout,
//! and `$GITHUB_STEP_SUMMARY`).

pub mod csv;
pub mod export;
pub mod format;
pub mod html;
pub mod report;
pub mod svg;
pub mod table;

pub use export::{exporter, Exporter, Format, Outputs, Results};

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use std::io::Write as _;
use std::path::Path;
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

/// Whether an output flag's value is `-`: stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Write one output (`--json-output`, `--markdown`, `--csv`): to stdout for
/// `-` (with a final newline), else atomically to the file (a reader never
/// sees half of it).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        if !bytes.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        return out.flush().context("cannot write to stdout");
    }
    bench_harness::results::write_atomic(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Where a command's human output (tables, summaries, `JSON: <path>`) goes:
/// stdout, unless an output file is `-`. Then stdout is that output alone
/// (pure JSON, Markdown or CSV, for a pipe) and the human output goes to
/// stderr.
#[derive(Debug, Clone, Copy)]
pub struct Human {
    to_stderr: bool,
}

impl Human {
    /// For a command whose output flags are `outputs`: refuses two of them on
    /// stdout at once.
    pub fn new(outputs: &[(&str, Option<&Path>)]) -> Result<Human> {
        let dashes: Vec<&str> = outputs.iter().filter(|(_, p)| p.is_some_and(is_stdout)).map(|(f, _)| *f).collect();
        anyhow::ensure!(
            dashes.len() <= 1,
            "{} all ask for stdout (`-`): give all but one of them a file",
            dashes.join(" and ")
        );
        Ok(Human { to_stderr: !dashes.is_empty() })
    }

    /// Print one line (or a block) of human output.
    pub fn line(&self, text: impl std::fmt::Display) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Print where an output went (nothing when it went to stdout).
    pub fn wrote(&self, what: &str, path: &Path) {
        if !is_stdout(path) {
            self.line(format!("{what}: {}", path.display()));
        }
    }
}

/// The variable GitHub Actions sets to the job summary's file.
pub const STEP_SUMMARY_VAR: &str = "GITHUB_STEP_SUMMARY";

/// Append `markdown` to the file named by `$GITHUB_STEP_SUMMARY` when it is
/// set (GitHub Actions shows it on the run's page). Returns the file
/// appended to. The file is appended to, never truncated (earlier steps
/// wrote there too), and the name comes from the environment: a symbolic
/// link, a FIFO or anything else than a regular file is refused.
pub fn append_step_summary(markdown: &str) -> Result<Option<std::path::PathBuf>> {
    use crate::planted::{self, Refused};
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(var) = std::env::var_os(STEP_SUMMARY_VAR).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(var);
    let shown = path.display();
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true).mode(0o644);
    let (file, _) = planted::open(&path, &mut options).map_err(|why| match why {
        Refused::Link => anyhow::anyhow!(
            "${STEP_SUMMARY_VAR} ({shown}) is a symbolic link: refusing to follow it; point the variable at a regular file"
        ),
        Refused::NotRegular => anyhow::anyhow!(
            "${STEP_SUMMARY_VAR} ({shown}) is not a regular file: point the variable at a regular file"
        ),
        Refused::Io(e) => anyhow::anyhow!("cannot open ${STEP_SUMMARY_VAR} ({shown}): {e}; unset the variable or fix the path"),
    })?;
    let mut text = markdown.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    (&file).write_all(text.as_bytes()).with_context(|| format!("cannot append to ${STEP_SUMMARY_VAR} ({shown})"))?;
    Ok(Some(path))
}
