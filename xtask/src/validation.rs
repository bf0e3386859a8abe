//! Validation of an attempt, relative to the baseline: the same commands are
//! run once on the baseline and what already fails there is recorded, so an
//! attempt fails only on *new* failures (bpfilter's e2e tests partly fail on
//! some kernels; that must not reject every attempt).
//!
//! Every command has an explicit [`Role`]: `format` commands run first (they
//! may rewrite files, and what they rewrite is part of the attempt), then the
//! others in the order given. Only a `build` command that fails stops the
//! commands after it: on the baseline that is an error (nothing could be
//! validated), and a `format` or `test` command that fails never hides the
//! commands after it. Test commands must run at least one test.

use crate::sandbox::Policy;
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a validation command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Builds the tree (and the tests); a failure stops the commands after it.
    Build,
    /// Rewrites the sources to the project's style; runs before everything else.
    Format,
    /// Runs tests: ctest's summary is read for the failing tests and the counts.
    Test,
}

impl Role {
    /// Every role, in the order validation runs them.
    pub const ALL: [Role; 3] = [Role::Format, Role::Build, Role::Test];

    /// `build`, `format` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Build => "build",
            Role::Format => "format",
            Role::Test => "test",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation command and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What it is for.
    pub role: Role,
    /// The command (`{build}`, `{source}`, `{jobs}` expanded when it runs).
    pub command: String,
}

impl Step {
    /// A step.
    pub fn new(role: Role, command: impl Into<String>) -> Step {
        Step { role, command: command.into() }
    }
}

impl std::str::FromStr for Step {
    type Err = String;

    /// `ROLE:CMD` (`build:`, `format:`, `test:`); a command without a role
    /// prefix is a `build` command (never guessed from its text).
    fn from_str(s: &str) -> Result<Step, String> {
        let (role, command) = match s.split_once(':') {
            Some((r, c)) => match Role::ALL.into_iter().find(|role| role.as_str() == r.trim()) {
                Some(role) => (role, c.trim()),
                None => (Role::Build, s.trim()),
            },
            None => (Role::Build, s.trim()),
        };
        if command.is_empty() {
            return Err(format!("{s:?}: no command; use ROLE:CMD, e.g. test:make -C {{build}} test"));
        }
        Ok(Step::new(role, command))
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.role, self.command)
    }
}

/// bpfilter's validation: fix the style, build everything, build and run the tests.
pub fn bpfilter_steps() -> Vec<Step> {
    vec![
        Step::new(Role::Format, "make -C {build} fixstyle"),
        Step::new(Role::Build, "make -C {build} -j{jobs}"),
        Step::new(Role::Build, "make -C {build} -j{jobs} test_bin"),
        Step::new(Role::Test, "make -C {build} test"),
    ]
}

/// The steps in the order they run (format steps first, the others as
/// given), `--no-tests` applied: without it there must be a test step, with
/// it there may be none.
pub fn plan(steps: Vec<Step>, no_tests: bool) -> Result<Vec<Step>> {
    let has_tests = steps.iter().any(|s| s.role == Role::Test);
    if no_tests {
        anyhow::ensure!(
            !has_tests,
            "--no-tests with a test command ({}): drop one or the other",
            steps.iter().find(|s| s.role == Role::Test).map(|s| s.command.as_str()).unwrap_or("")
        );
    } else {
        anyhow::ensure!(
            has_tests,
            "no test command among --validate: give one as test:CMD (e.g. --validate 'test:make -C {{build}} test'), \
             or pass --no-tests to keep attempts that were only built"
        );
    }
    let (mut ordered, rest): (Vec<Step>, Vec<Step>) = steps.into_iter().partition(|s| s.role == Role::Format);
    ordered.extend(rest);
    Ok(ordered)
}

/// How many tests a test command ran, from ctest's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCount {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed.
    pub failed: u32,
}

impl TestCount {
    /// Tests run.
    pub fn total(&self) -> u32 {
        self.passed + self.failed
    }
}

/// The counts of ctest's summary (`100% tests passed, 0 tests failed out of
/// 37`; `No tests were found!!!` is zero tests), `None` without a summary.
/// The last summary wins (a command may run ctest more than once).
pub fn ctest_counts(output: &str) -> Option<TestCount> {
    let mut found = None;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("No tests were found") {
            found = Some(TestCount { passed: 0, failed: 0 });
            continue;
        }
        let Some((_, rest)) = line.split_once("% tests passed, ") else { continue };
        let mut words = rest.split_whitespace();
        let failed = words.next().and_then(|w| w.parse::<u32>().ok());
        let total = rest.rsplit_once("out of ").and_then(|(_, t)| t.trim().parse::<u32>().ok());
        if let (Some(failed), Some(total)) = (failed, total) {
            found = Some(TestCount { passed: total.saturating_sub(failed), failed });
        }
    }
    found
}

/// A validation failure not seen on the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failing command's role.
    pub role: Role,
    /// The command.
    pub command: String,
    /// New failing tests (ctest names), if the command ran tests.
    pub new_tests: Vec<String>,
    /// The last lines of its output (or why a passing test command failed validation).
    pub tail: String,
    /// Its full log.
    pub log: PathBuf,
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResult {
    /// The command as given (not expanded).
    pub command: String,
    /// Whether it exited 0.
    pub ok: bool,
    /// Failing ctest test names found in its output.
    pub failed_tests: Vec<String>,
    /// ctest's counts, when its output has a summary.
    pub tests: Option<TestCount>,
    /// How long it ran.
    pub seconds: f64,
    /// The log file.
    pub log: PathBuf,
    /// Last lines of output.
    pub tail: String,
    /// The missing program or package its output names, if any (see [`missing_piece`]).
    pub missing: Option<String>,
}

impl CommandResult {
    /// The result of `command` from its output `text`.
    pub fn from_output(command: String, ok: bool, text: &str, seconds: f64, log: PathBuf) -> CommandResult {
        CommandResult {
            command,
            ok,
            failed_tests: ctest_failures(text),
            tests: ctest_counts(text),
            seconds,
            log,
            tail: crate::build::tail(text, 60),
            missing: missing_piece(text),
        }
    }
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

/// What bpfilter's build with its tests needs, and the Debian package of each:
/// `(what, how it is looked for, package)`. `program` entries are looked up on
/// `PATH` (any of the `|`-separated names), `cmake` entries by
/// `find_package`/`pkg_check_modules` names.
pub const BPFILTER_NEEDS: &[(&str, &str, &str)] = &[
    ("cmake", "program", "cmake"),
    ("make", "program", "make"),
    ("cc", "program", "build-essential"),
    ("c++", "program", "g++"),
    ("bison", "program", "bison"),
    ("flex", "program", "flex"),
    ("pkg-config", "program", "pkgconf"),
    ("clang", "program", "clang"),
    ("clang-format-18|clang-format", "program", "clang-format"),
    ("run-clang-tidy-18|run-clang-tidy", "program", "clang-tidy"),
    ("libbpf", "pkg-config", "libbpf-dev"),
    ("libgit2", "pkg-config", "libgit2-dev"),
    ("cmocka", "pkg-config", "libcmocka-dev"),
    ("benchmark", "pkg-config", "libbenchmark-dev"),
    ("iwyu_tool.py|iwyu_tool", "program", "iwyu"),
];

/// The Debian package that provides `name` (a program, a CMake package or a
/// pkg-config module of [`BPFILTER_NEEDS`]), if known.
pub fn package_for(name: &str) -> Option<&'static str> {
    let name = name.trim().trim_end_matches("_BIN").to_ascii_lowercase().replace('_', "-");
    BPFILTER_NEEDS
        .iter()
        .find(|(what, _, _)| what.split('|').any(|w| w == name || w.trim_start_matches("lib") == name))
        .map(|(_, _, package)| *package)
}

/// The missing piece a build's output names, with the apt line that
/// installs it when the package is known: CMake's `Could NOT find X`,
/// `Could not find X using the following names: a, b` (find_program) and
/// `provided by "X"` (find_package), pkg-config's `No package 'X' found`, a
/// shell's `X: not found` / `command not found`.
pub fn missing_piece(output: &str) -> Option<String> {
    missing(output).map(|(name, package)| match package {
        Some(p) => format!("{name} is missing (apt-get install -y {p})"),
        None => format!("{name} is missing"),
    })
}

/// The missing piece a build's output names and its package, when known (see [`missing_piece`]).
pub fn missing(output: &str) -> Option<(String, Option<&'static str>)> {
    let patterns = [
        r"Could NOT find (\S+)",
        r"Could not find \S+ using the following names: ([^,\s]+(?:, [^,\s]+)*)",
        r#"provided by\s+"([^"]+)""#,
        r"No package '([^']+)' found",
        r"(?m)(?:^|: )([\w.+-]+): (?:command )?not found\s*$",
    ];
    for pattern in patterns {
        let re = regex::Regex::new(pattern).expect("valid pattern");
        let Some(caps) = re.captures(output) else { continue };
        let what = caps[1].to_owned();
        let package = what.split(", ").find_map(package_for);
        let name = what.split(", ").last().unwrap_or(&what).to_owned();
        return Some((name, package));
    }
    None
}

/// Run `commands` in `dir` (expanded), each logged to `logs/<tag>-<n>.log`,
/// confined by `sandbox`: they run model-written code, and may write only to
/// `dir` and `build` (see [`crate::sandbox`]). A command whose `stops` entry
/// is true and that fails ends the list (a build that failed makes the later
/// steps meaningless); the others never stop it.
#[allow(clippy::too_many_arguments)]
pub fn run_all(
    commands: &[String],
    stops: &[bool],
    dir: &Path,
    build: &Path,
    logs: &Path,
    tag: &str,
    sandbox: &Policy,
    on_start: &mut dyn FnMut(usize, &str),
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
        on_start(i, raw);
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c").arg(&command).current_dir(dir);
        let started = Instant::now();
        let output = sandbox.output(&sh, &[dir, build], &repo).with_context(|| format!("cannot run {command}"))?;
        let seconds = started.elapsed().as_secs_f64();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let log = logs.join(format!("{tag}-{i}.log"));
        std::fs::write(&log, format!("$ {command}\n{text}"))
            .with_context(|| format!("cannot write {}", log.display()))?;
        let ok = output.status.success();
        out.push(CommandResult::from_output(raw.clone(), ok, &text, seconds, log));
        if !ok && stops.get(i).copied().unwrap_or(false) {
            break;
        }
    }
    Ok(out)
}

/// Which commands end validation when they fail: the build steps.
pub fn stops(steps: &[Step]) -> Vec<bool> {
    steps.iter().map(|s| s.role == Role::Build).collect()
}

/// What one validation command did, as the run record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Its role.
    pub role: Role,
    /// The command as given.
    pub command: String,
    /// Whether it exited 0.
    pub ok: bool,
    /// It failed, as it did on the baseline (the same tests or the whole command).
    #[serde(default)]
    pub as_on_baseline: bool,
    /// ctest's counts, when it printed them.
    #[serde(default)]
    pub tests: Option<TestCount>,
    /// Seconds it ran.
    #[serde(default)]
    pub seconds: f64,
    /// Its log.
    pub log: PathBuf,
}

/// What already fails on the baseline.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Failing tests (ctest names).
    pub tests: &'a [String],
    /// Commands failing as a whole (format steps).
    pub commands: &'a [String],
}

/// Each command's [`StepResult`], and the first failure the baseline did not
/// have: a failing command (a test command: a new failing test, or no ctest
/// summary to tell), or a test command that ran no test.
pub fn judge(steps: &[Step], results: &[CommandResult], known: Known<'_>) -> (Vec<StepResult>, Option<Failure>) {
    let mut recorded = vec![];
    let mut failure = None;
    for (step, r) in steps.iter().zip(results) {
        let new_tests: Vec<String> = r.failed_tests.iter().filter(|t| !known.tests.contains(t)).cloned().collect();
        let as_on_baseline =
            !r.ok && if r.failed_tests.is_empty() { known.commands.contains(&r.command) } else { new_tests.is_empty() };
        let no_test_ran = r.ok && step.role == Role::Test && r.tests.is_some_and(|t| t.total() == 0);
        if failure.is_none() && ((!r.ok && !as_on_baseline) || no_test_ran) {
            let tail = if no_test_ran { format!("{} ran no test\n{}", r.command, r.tail) } else { r.tail.clone() };
            failure =
                Some(Failure { role: step.role, command: r.command.clone(), new_tests, tail, log: r.log.clone() });
        }
        recorded.push(StepResult {
            role: step.role,
            command: r.command.clone(),
            ok: r.ok,
            as_on_baseline,
            tests: r.tests,
            seconds: r.seconds,
            log: r.log.clone(),
        });
    }
    (recorded, failure)
}

/// What already fails on the baseline, from its results: failing tests, and
/// format commands failing as a whole. An error when nothing could be
/// validated: a build step failed, a test command failed without naming its
/// failing tests, or the test commands ran no test at all.
pub fn baseline_known(steps: &[Step], results: &[CommandResult]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut tests, mut commands) = (vec![], vec![]);
    let missing = |r: &CommandResult| r.missing.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
    for (step, r) in steps.iter().zip(results) {
        match step.role {
            Role::Build if !r.ok => anyhow::bail!(
                "the baseline does not build: `{}` failed{} (log {}): fix it before optimizing",
                r.command,
                missing(r),
                r.log.display()
            ),
            Role::Test if !r.ok && r.failed_tests.is_empty() => anyhow::bail!(
                "the baseline's tests do not run: `{}` failed without a ctest list of failing tests{} (log {}): \
                 fix it before optimizing",
                r.command,
                missing(r),
                r.log.display()
            ),
            Role::Test => tests.extend(r.failed_tests.iter().cloned()),
            Role::Format if !r.ok => commands.push(r.command.clone()),
            _ => {}
        }
    }
    let test_steps: Vec<&CommandResult> =
        steps.iter().zip(results).filter(|(s, _)| s.role == Role::Test).map(|(_, r)| r).collect();
    if let Some(empty) = test_steps.iter().find(|r| r.tests.is_some_and(|t| t.total() == 0)) {
        anyhow::bail!(
            "`{}` ran no test on the baseline (log {}): are the tests enabled in the build?",
            empty.command,
            empty.log.display()
        );
    }
    Ok((tests, commands))
}

/// One line on what validation did: each command's role and outcome, the
/// failures that were already there on the baseline, and the tests' counts.
pub fn summary(steps: &[StepResult], planned: usize) -> String {
    let mut parts: Vec<String> = steps
        .iter()
        .map(|s| {
            let outcome = match (s.ok, s.as_on_baseline) {
                (true, _) => "ok".to_owned(),
                (false, true) => "failed as on the baseline".to_owned(),
                (false, false) => "FAILED".to_owned(),
            };
            let tests = match s.tests {
                Some(t) if t.failed > 0 => format!(", {} of {} tests passed", t.passed, t.total()),
                Some(t) => format!(", {} tests passed", t.passed),
                None => String::new(),
            };
            format!("{} `{}` {outcome}{tests} ({:.0} s)", s.role, s.command, s.seconds)
        })
        .collect();
    if planned > steps.len() {
        parts.push(format!("{} not run", planned - steps.len()));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTEST: &str = "50% tests passed, 2 tests failed out of 4\n\nThe following tests FAILED:\n\t  2 - e2e.cli (Failed)\n\t  4 - unit.set (SEGFAULT)\nErrors while running CTest\n";

    #[test]
    fn ctest_summary_is_parsed() {
        assert_eq!(ctest_failures(CTEST), vec!["e2e.cli".to_string(), "unit.set".to_string()]);
        assert!(ctest_failures("100% tests passed").is_empty());
        assert_eq!(ctest_counts(CTEST), Some(TestCount { passed: 2, failed: 2 }));
        let ok = "Test #37: e2e.x ... Passed\n\n100% tests passed, 0 tests failed out of 37\n\nTotal Test time (real) = 3.1 sec\n";
        assert_eq!(ctest_counts(ok), Some(TestCount { passed: 37, failed: 0 }));
        assert_eq!(ctest_counts("Test project /b\nNo tests were found!!!\n"), Some(TestCount { passed: 0, failed: 0 }));
        assert_eq!(ctest_counts("make: Nothing to be done"), None);
    }

    #[test]
    fn roles_are_explicit_and_format_runs_first() {
        let s: Step = "test:make -C {build} test".parse().unwrap();
        assert_eq!(s, Step::new(Role::Test, "make -C {build} test"));
        let s: Step = "format: make fixstyle".parse().unwrap();
        assert_eq!(s, Step::new(Role::Format, "make fixstyle"));
        // No role prefix: a build command, whatever its text says.
        let s: Step = "make -C {build} test".parse().unwrap();
        assert_eq!(s.role, Role::Build);
        let s: Step = "sh -c 'echo a:b'".parse().unwrap();
        assert_eq!((s.role, s.command.as_str()), (Role::Build, "sh -c 'echo a:b'"));
        assert!("test:".parse::<Step>().is_err());

        let planned = plan(bpfilter_steps(), false).unwrap();
        assert_eq!(planned[0].role, Role::Format);
        let given = vec![Step::new(Role::Build, "b"), Step::new(Role::Test, "t"), Step::new(Role::Format, "f")];
        let order: Vec<String> = plan(given, false).unwrap().iter().map(|s| s.command.clone()).collect();
        assert_eq!(order, ["f", "b", "t"]);
        let err = plan(vec![Step::new(Role::Build, "b")], false).unwrap_err().to_string();
        assert!(err.contains("no test command") && err.contains("--no-tests"), "{err}");
        assert_eq!(plan(vec![Step::new(Role::Build, "b")], true).unwrap().len(), 1);
        assert!(plan(bpfilter_steps(), true).unwrap_err().to_string().contains("--no-tests with a test command"));
        assert_eq!(stops(&bpfilter_steps()), [false, true, true, false]);
    }

    fn r(cmd: &str, ok: bool, text: &str) -> CommandResult {
        CommandResult::from_output(cmd.into(), ok, text, 1.0, "/l".into())
    }

    #[test]
    fn only_new_failures_count() {
        let steps =
            [Step::new(Role::Format, "fmt"), Step::new(Role::Build, "make"), Step::new(Role::Test, "make test")];
        let tests = vec!["e2e.cli".to_string()];
        let commands = vec!["fmt".to_string()];
        let known = Known { tests: &tests, commands: &commands };
        let one_fails =
            "75% tests passed, 1 tests failed out of 4\nThe following tests FAILED:\n\t  2 - e2e.cli (Failed)\n";
        let results = [r("fmt", false, "error: unknown key"), r("make", true, ""), r("make test", false, one_fails)];
        let (recorded, failure) = judge(&steps, &results, known);
        assert!(failure.is_none(), "{failure:?}");
        assert!(recorded[0].as_on_baseline && recorded[2].as_on_baseline);
        assert_eq!(recorded[2].tests, Some(TestCount { passed: 3, failed: 1 }));
        let line = summary(&recorded, 3);
        assert!(line.contains("format `fmt` failed as on the baseline"), "{line}");
        assert!(line.contains("test `make test` failed as on the baseline, 3 of 4 tests passed"), "{line}");

        let results = [r("fmt", true, ""), r("make", true, ""), r("make test", false, CTEST)];
        let f = judge(&steps, &results, known).1.unwrap();
        assert_eq!((f.role, f.new_tests), (Role::Test, vec!["unit.set".to_string()]));
        let results = [r("fmt", true, ""), r("make", false, "error")];
        let (recorded, f) = judge(&steps, &results, known);
        assert_eq!(f.unwrap().role, Role::Build);
        assert!(summary(&recorded, 3).ends_with("1 not run"));
        // A test command that ran nothing did not validate anything.
        let results = [r("fmt", true, ""), r("make", true, ""), r("make test", true, "No tests were found!!!")];
        let f = judge(&steps, &results, known).1.unwrap();
        assert!(f.tail.contains("ran no test"), "{}", f.tail);
    }

    #[test]
    fn the_baseline_must_build_and_run_its_tests() {
        let steps = bpfilter_steps();
        let fmt_fails = r("make -C {build} fixstyle", false, "error: unknown key 'InsertNewlineAtEOF'");
        let built = r("make -C {build} -j{jobs}", true, "");
        let tested = r("make -C {build} test", false, CTEST);
        let (tests, commands) =
            baseline_known(&steps, &[fmt_fails.clone(), built.clone(), built.clone(), tested.clone()]).unwrap();
        assert_eq!((tests.len(), commands), (2, vec!["make -C {build} fixstyle".to_string()]));
        let missing = "CMake Error at tests/check/CMakeLists.txt:4 (find_program):\n  Could not find RUN_CLANG_TIDY_BIN using the following names: run-clang-tidy-18, run-clang-tidy\n";
        let broken = r("make -C {build} -j{jobs} test_bin", false, missing);
        let err = baseline_known(&steps, &[fmt_fails.clone(), built.clone(), broken]).unwrap_err().to_string();
        assert!(err.contains("does not build") && err.contains("apt-get install -y clang-tidy"), "{err}");
        let no_list = r("make -C {build} test", false, "make: *** No rule to make target 'test'.");
        let err = baseline_known(&steps, &[fmt_fails.clone(), built.clone(), built.clone(), no_list]).unwrap_err();
        assert!(err.to_string().contains("tests do not run"), "{err}");
        let none = r("make -C {build} test", true, "No tests were found!!!");
        let err = baseline_known(&steps, &[fmt_fails, built.clone(), built, none]).unwrap_err();
        assert!(err.to_string().contains("ran no test"), "{err}");
    }

    #[test]
    fn missing_pieces_are_named_with_their_package() {
        let cases = [
            (
                "-- Could NOT find cmocka (missing: CMOCKA_LIBRARY)",
                "cmocka is missing (apt-get install -y libcmocka-dev)",
            ),
            (
                "  Could not find a package configuration file provided by \"benchmark\" with any of",
                "benchmark is missing (apt-get install -y libbenchmark-dev)",
            ),
            ("-- No package 'libgit2' found", "libgit2 is missing (apt-get install -y libgit2-dev)"),
            ("sh: 1: clang-format: not found", "clang-format is missing (apt-get install -y clang-format)"),
            ("Could NOT find Frobnicator", "Frobnicator is missing"),
        ];
        for (text, want) in cases {
            assert_eq!(missing_piece(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(missing_piece("all good"), None);
    }

    #[test]
    fn commands_expand() {
        let c = expand("make -C {build} -j{jobs} && ls {source}", Path::new("/b"), Path::new("/s"));
        assert!(c.starts_with("make -C /b -j") && c.ends_with("ls /s"), "{c}");
        let c = expand("make -C {build}", Path::new("/my build/$x"), Path::new("/s"));
        assert_eq!(c, "make -C '/my build/$x'");
    }
}
