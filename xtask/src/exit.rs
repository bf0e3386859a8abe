//! The exit-code contract of every command, in one place (doc/exit-codes.md).
//!
//! CI and the pre-push hook act on these codes, so each has exactly one
//! meaning: clap's own usage-error code (2) would read as "significant
//! change", hence [`parse`].

/// Done; no `--fail-on*` flag triggered (also `--help` and `--version`).
pub const OK: i32 = 0;
/// Could not run: a usage error, a bad ref, a build failure of a compared
/// revision, no BPF, ... The `error:` line says why.
pub const ERROR: i32 = 1;
/// A significant change selected by `--fail-on regression|improvement|any`.
pub const SIGNIFICANT: i32 = 2;
/// A benchmark or build failure selected by `--fail-on-benchmark-error`.
pub const BENCHMARK_ERROR: i32 = 3;
/// Interrupted (Ctrl-C, SIGTERM).
pub const INTERRUPTED: i32 = bench_harness::interrupt::EXIT_CODE;

/// What `--fail-on` fails on (bench-compare and bench-history alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A case significantly slower.
    #[value(alias = "worse")] // bench-history's old `--fail-on-significant-change worse`
    Regression,
    /// A case significantly faster (e.g. to force updating a baseline).
    #[value(alias = "better")]
    Improvement,
    /// Either.
    Any,
}

/// The exit code for a clap error: [`OK`] for `--help`/`--version`,
/// [`ERROR`] for a usage error (a missing subcommand included).
pub fn of_clap_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => OK,
        // No subcommand: clap prints the help, but nothing was asked for.
        _ => ERROR,
    }
}

/// Parse the command line; on a usage error print clap's message and exit
/// [`ERROR`], on `--help`/`--version` print and exit [`OK`].
pub fn parse<P: clap::Parser>() -> P {
    P::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(of_clap_error(&e))
    })
}

/// Not a failure: the command already ran to its end in another process (it
/// re-executed itself inside a systemd slice, `--slice`) and exited with this
/// code, which is the command's. `main` exits with it and prints nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished(pub i32);

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command ran in another process and exited with {}", self.0)
    }
}

impl std::error::Error for Finished {}

/// The code of a [`Finished`] error (through any context added on the way), if it is one.
pub fn finished(e: &anyhow::Error) -> Option<i32> {
    e.downcast_ref::<Finished>().map(|f| f.0)
}

/// The exit code for an error that ended a command: [`INTERRUPTED`] after a
/// Ctrl-C, else [`ERROR`].
pub fn of_error() -> i32 {
    if bench_harness::interrupt::requested() {
        INTERRUPTED
    } else {
        ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(version)]
    struct Cli {
        #[arg(long)]
        since: String,
    }

    #[test]
    fn usage_errors_are_1_help_and_version_0() {
        let code = |args: &[&str]| of_clap_error(&Cli::try_parse_from(args).unwrap_err());
        assert_eq!(code(&["x", "--no-such-flag"]), ERROR);
        assert_eq!(code(&["x", "--since"]), ERROR);
        assert_eq!(code(&["x"]), ERROR);
        assert_eq!(code(&["x", "--help"]), OK);
        assert_eq!(code(&["x", "--version"]), OK);
        // The contract's codes are distinct: 2 must only ever mean "significant change".
        let all = [OK, ERROR, SIGNIFICANT, BENCHMARK_ERROR, INTERRUPTED];
        assert_eq!(all, [0, 1, 2, 3, 130]);
    }

    #[test]
    fn a_run_finished_elsewhere_keeps_its_code_through_context() {
        use anyhow::Context as _;
        let e = Err::<(), _>(Finished(SIGNIFICANT)).context("entering the slice").unwrap_err();
        assert_eq!(finished(&e), Some(SIGNIFICANT));
        assert_eq!(finished(&anyhow::anyhow!("no BPF")), None);
    }
}
