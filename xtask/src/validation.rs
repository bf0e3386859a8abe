//! Validation of an attempt, relative to the baseline: the same commands are
//! run once on the baseline and the tests that already fail there are
//! recorded, so an attempt fails only on *new* failures (bpfilter's e2e tests
//! partly fail on some kernels; that must not reject every attempt).

use crate::sandbox::Policy;
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// bpfilter's validation: build everything, fix the style, build and run the tests.
pub const BPFILTER_COMMANDS: &[&str] = &[
    "make -C {build} -j{jobs}",
    "make -C {build} fixstyle",
    "make -C {build} -j{jobs} test_bin",
    "make -C {build} test",
];

/// What a failing command means for the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A build step (anything before the tests).
    Build,
    /// A test step (the command's name contains `test`).
    Test,
}

/// A validation failure not seen on the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Build or test.
    pub kind: Kind,
    /// The command.
    pub command: String,
    /// New failing tests (ctest names), if the command ran tests.
    pub new_tests: Vec<String>,
    /// The last lines of its output.
    pub tail: String,
    /// Its full log.
    pub log: PathBuf,
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// The command as run.
    pub command: String,
    /// Whether it exited 0.
    pub ok: bool,
    /// Failing ctest test names found in its output.
    pub failed_tests: Vec<String>,
    /// The log file.
    pub log: PathBuf,
    /// Last lines of output.
    pub tail: String,
}

/// Expand `{build}`, `{source}` (shell-quoted: the command runs under `sh -c`)
/// and `{jobs}` in a command.
pub fn expand(command: &str, build: &Path, source: &Path) -> String {
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    command
        .replace("{build}", &crate::remote::ssh::quote(&build.display().to_string()))
        .replace("{source}", &crate::remote::ssh::quote(&source.display().to_string()))
        .replace("{jobs}", &jobs.to_string())
}

/// Failing test names from ctest's summary (`The following tests FAILED:` then
/// lines like `\t  3 - e2e.foo (Failed)`).
pub fn ctest_failures(output: &str) -> Vec<String> {
    let mut names = vec![];
    let mut in_list = false;
    for line in output.lines() {
        if line.contains("The following tests FAILED:") {
            in_list = true;
            continue;
        }
        if in_list {
            let t = line.trim();
            let Some((num, rest)) = t.split_once(" - ") else {
                if !t.is_empty() {
                    in_list = false;
                }
                continue;
            };
            if num.trim().parse::<u32>().is_err() {
                in_list = false;
                continue;
            }
            let name = rest.rsplit_once(" (").map(|(n, _)| n).unwrap_or(rest).trim();
            names.push(name.to_owned());
        }
    }
    names
}

/// Run `commands` in `dir` (expanded), each logged to `logs/<tag>-<n>.log`,
/// confined by `sandbox`: they run model-written code, and may write only to
/// `dir` and `build` (see [`crate::sandbox`]).
pub fn run_all(
    commands: &[String],
    dir: &Path,
    build: &Path,
    logs: &Path,
    tag: &str,
    sandbox: &Policy,
) -> Result<Vec<CommandResult>> {
    std::fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
    std::fs::create_dir_all(build).with_context(|| format!("cannot create {}", build.display()))?;
    // A worktree's git data is in its repository's `.git` (possibly under the
    // private /tmp): kept visible, read-only, so `git describe` still works.
    let common = crate::sandbox::git_common_dir(dir);
    let repo: Vec<&Path> = common.iter().map(PathBuf::as_path).filter(|c| !c.starts_with(dir)).collect();
    let mut out = vec![];
    for (i, raw) in commands.iter().enumerate() {
        bench_harness::interrupt::check()?;
        let command = expand(raw, build, dir);
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c").arg(&command).current_dir(dir);
        let output = sandbox.output(&sh, &[dir, build], &repo).with_context(|| format!("cannot run {command}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let log = logs.join(format!("{tag}-{i}.log"));
        std::fs::write(&log, format!("$ {command}\n{text}"))
            .with_context(|| format!("cannot write {}", log.display()))?;
        let ok = output.status.success();
        out.push(CommandResult {
            command: raw.clone(),
            ok,
            failed_tests: ctest_failures(&text),
            log,
            tail: crate::build::tail(&text, 60),
        });
        // A failed build makes the later steps meaningless.
        if !ok && classify(raw) == Kind::Build {
            break;
        }
    }
    Ok(out)
}

/// Build or test, from the command text.
pub fn classify(command: &str) -> Kind {
    if command.contains("test") {
        Kind::Test
    } else {
        Kind::Build
    }
}

/// The first failure of `results` that the baseline did not have.
pub fn new_failure(
    results: &[CommandResult],
    baseline_tests: &[String],
    baseline_commands: &[String],
) -> Option<Failure> {
    for r in results.iter().filter(|r| !r.ok) {
        let new_tests: Vec<String> = r.failed_tests.iter().filter(|t| !baseline_tests.contains(t)).cloned().collect();
        let known =
            if r.failed_tests.is_empty() { baseline_commands.contains(&r.command) } else { new_tests.is_empty() };
        if !known {
            return Some(Failure {
                kind: classify(&r.command),
                command: r.command.clone(),
                new_tests,
                tail: r.tail.clone(),
                log: r.log.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTEST: &str = "50% tests passed, 2 tests failed out of 4\n\nThe following tests FAILED:\n\t  2 - e2e.cli (Failed)\n\t  4 - unit.set (SEGFAULT)\nErrors while running CTest\n";

    #[test]
    fn ctest_summary_is_parsed() {
        assert_eq!(ctest_failures(CTEST), vec!["e2e.cli".to_string(), "unit.set".to_string()]);
        assert!(ctest_failures("100% tests passed").is_empty());
    }

    #[test]
    fn only_new_failures_count() {
        let r = |cmd: &str, ok, tests: &[&str]| CommandResult {
            command: cmd.into(),
            ok,
            failed_tests: tests.iter().map(|s| s.to_string()).collect(),
            log: "/l".into(),
            tail: "t".into(),
        };
        let baseline = vec!["e2e.cli".to_string()];
        assert!(new_failure(&[r("make test", false, &["e2e.cli"])], &baseline, &[]).is_none());
        let f = new_failure(&[r("make test", false, &["e2e.cli", "unit.set"])], &baseline, &[]).unwrap();
        assert_eq!((f.kind, f.new_tests), (Kind::Test, vec!["unit.set".to_string()]));
        let f = new_failure(&[r("make -j2", false, &[])], &baseline, &[]).unwrap();
        assert_eq!(f.kind, Kind::Build);
        assert!(new_failure(&[r("make fixstyle", false, &[])], &baseline, &["make fixstyle".into()]).is_none());
    }

    #[test]
    fn commands_expand() {
        let c = expand("make -C {build} -j{jobs} && ls {source}", Path::new("/b"), Path::new("/s"));
        assert!(c.starts_with("make -C /b -j") && c.ends_with("ls /s"), "{c}");
        let c = expand("make -C {build}", Path::new("/my build/$x"), Path::new("/s"));
        assert_eq!(c, "make -C '/my build/$x'");
    }
}
