//! `history.json`: everything an optimize run did — every plan, diff, log,
//! result and cost — written atomically after every step, so a crash or
//! Ctrl-C loses nothing and `--resume` continues where the run stopped.

use anyhow::{Context as _, Result};
use bench_harness::results::write_atomic;
use bench_harness::stats::paired::RatioEstimate;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Schema identifier of a run record.
pub const SCHEMA: &str = "bfperf.optimize-run.v1";

/// The largest `history.json` loaded. A long run's record (plans, diffs, log
/// tails) is a few MiB at most; anything far larger was not written by a run.
pub const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// The text of `path`: a regular file, not a symlink, at most [`MAX_HISTORY_BYTES`].
fn read_untrusted(path: &Path) -> Result<String> {
    use crate::planted::{self, Refused, Unread};
    let shown = path.display();
    planted::read(path, MAX_HISTORY_BYTES).map_err(|why| match why {
        _ if why.is_missing() => anyhow::anyhow!("no optimize run at {shown}: check the run id"),
        Unread::Refused(Refused::Link) => {
            anyhow::anyhow!("{shown} is a symbolic link: refusing to follow it; remove it")
        }
        Unread::Refused(Refused::NotRegular) => anyhow::anyhow!("{shown} is not a regular file: remove it"),
        Unread::Refused(Refused::Io(e)) => anyhow::anyhow!("cannot open {shown}: {e}"),
        Unread::TooLarge => anyhow::anyhow!(
            "{shown} is larger than a run writes ({} MiB at most): it cannot be resumed; start a new run",
            MAX_HISTORY_BYTES >> 20
        ),
        Unread::Io(e) => anyhow::anyhow!("cannot read {shown}: {e}"),
        Unread::NotText => anyhow::anyhow!("{shown} is corrupt (not UTF-8): it cannot be resumed; start a new run"),
    })
}

/// Where an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Asking for a plan.
    Propose,
    /// The model edits the scope.
    Implement,
    /// Build, style, tests.
    Validate,
    /// Committing the scope files.
    Commit,
    /// A/B against the parent.
    Evaluate,
    /// Finished.
    Done,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Measurably better: the branch advanced.
    Kept,
    /// Measured and not good enough (not faster, or a case regressed).
    Rejected {
        /// Why, in one line.
        reason: String,
    },
    /// The model returned no usable plan.
    EmptyPlan,
    /// The implementation changed nothing.
    NoChange,
    /// The implementation touched files outside the scope.
    OutOfScope {
        /// The offending paths.
        files: Vec<String>,
    },
    /// Still failing to build after the allowed fixes.
    BuildFailed {
        /// Last log tail.
        tail: String,
    },
    /// Tests failing (relative to the baseline) after the allowed fixes.
    TestFailed {
        /// Last log tail.
        tail: String,
    },
    /// The benchmark could not run.
    BenchmarkFailed {
        /// The error.
        reason: String,
    },
    /// The model API failed (after retries) or the budget ran out.
    ModelError {
        /// The error (never contains the key).
        reason: String,
    },
    /// Ctrl-C during the attempt; its changes were reset.
    Interrupted,
}

impl Outcome {
    /// Short name for tables (`kept`, `test_failed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Rejected { .. } => "rejected",
            Outcome::EmptyPlan => "empty_plan",
            Outcome::NoChange => "no_change",
            Outcome::OutOfScope { .. } => "out_of_scope",
            Outcome::BuildFailed { .. } => "build_failed",
            Outcome::TestFailed { .. } => "test_failed",
            Outcome::BenchmarkFailed { .. } => "benchmark_failed",
            Outcome::ModelError { .. } => "model_error",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// One case's delta in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDelta {
    /// Case name.
    pub case: String,
    /// REF/BASE with its interval.
    pub estimate: Option<RatioEstimate>,
    /// Verdict word.
    pub verdict: String,
    /// Exact instruction delta.
    pub insns_delta: Option<i64>,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based, across resumes.
    pub index: usize,
    /// Last step reached.
    pub step: Step,
    /// The plan (first line: its title).
    pub plan: String,
    /// The model's thinking, when it gave any.
    pub thinking: Option<String>,
    /// The diff of the attempt (scope only).
    pub diff: String,
    /// Fix rounds used after validation failures.
    pub fix_rounds: usize,
    /// Paths of the validation logs.
    pub logs: Vec<PathBuf>,
    /// Paths the model tried to reach outside its confinement.
    pub refusals: Vec<String>,
    /// The commit, when one was made.
    pub commit: Option<String>,
    /// Per-case deltas of the evaluation.
    pub deltas: Vec<CaseDelta>,
    /// Suite geometric mean REF/BASE.
    pub geomean: Option<RatioEstimate>,
    /// Exact xlated-instruction delta over the evaluated cases.
    pub insns_delta: Option<i64>,
    /// Tokens in / out.
    pub tokens: (u64, u64),
    /// Cost of the model calls, USD.
    pub cost_usd: f64,
    /// How it ended (None while running).
    pub outcome: Option<Outcome>,
    /// Seconds per step.
    pub timings: Vec<(Step, f64)>,
    /// When it started (RFC 3339, UTC).
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339, UTC).
    #[serde(default)]
    pub ended_at: Option<String>,
    /// The commit it started from (the branch's last kept state).
    #[serde(default)]
    pub parent: Option<String>,
    /// The model that proposed (or the agent command).
    #[serde(default)]
    pub proposal_model: Option<String>,
    /// The model that implemented (or the agent command).
    #[serde(default)]
    pub impl_model: Option<String>,
    /// The thinking effort asked for.
    #[serde(default)]
    pub effort: Option<String>,
    /// The hints given to the proposals.
    #[serde(default)]
    pub hints: Vec<String>,
    /// What the model did, in order: tool calls, thinking, text; and bfperf's steps
    /// (see [`super::transcript`]).
    #[serde(default)]
    pub transcript: Vec<super::transcript::Entry>,
    /// Transcript entries left out beyond [`super::transcript::MAX_ENTRIES`].
    #[serde(default)]
    pub transcript_dropped: usize,
    /// What each validation command did, on the last validation of the attempt.
    #[serde(default)]
    pub validation: Vec<crate::validation::StepResult>,
    /// Some of its tokens have no known price (an unknown model, an external agent):
    /// `cost_usd` counts the others only.
    #[serde(default)]
    pub cost_unknown: bool,
}

impl Attempt {
    /// A new attempt.
    pub fn new(index: usize) -> Self {
        Attempt {
            index,
            step: Step::Propose,
            plan: String::new(),
            thinking: None,
            diff: String::new(),
            fix_rounds: 0,
            logs: vec![],
            refusals: vec![],
            commit: None,
            deltas: vec![],
            geomean: None,
            insns_delta: None,
            tokens: (0, 0),
            cost_usd: 0.0,
            outcome: None,
            timings: vec![],
            started_at: None,
            ended_at: None,
            parent: None,
            proposal_model: None,
            impl_model: None,
            effort: None,
            hints: vec![],
            transcript: vec![],
            transcript_dropped: 0,
            validation: vec![],
            cost_unknown: false,
        }
    }

    /// The plan's title (its first non-empty line).
    pub fn title(&self) -> &str {
        self.plan
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.trim_start_matches("TITLE:").trim())
            .unwrap_or("")
    }
}

/// A whole optimize run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The run id (`YYYYmmdd-HHMMSS`).
    pub run_id: String,
    /// The user's checkout.
    pub sources: PathBuf,
    /// The branch the run works on.
    pub branch: String,
    /// The run's worktree.
    pub worktree: PathBuf,
    /// The commit the run started from.
    pub base_commit: String,
    /// The scope directory, relative to the worktree.
    pub scope: String,
    /// Model id (or the agent command).
    pub model: String,
    /// `runtime` or `insns`.
    pub objective: String,
    /// Tests that already failed on the baseline.
    pub baseline_failures: Vec<String>,
    /// Validation commands that already failed on the baseline (whole command).
    pub baseline_failed_commands: Vec<String>,
    /// Attempts, in order.
    pub attempts: Vec<Attempt>,
    /// Total model cost, USD.
    pub spent_usd: f64,
    /// Product of the kept attempts' geometric means: < 1 is faster than the baseline.
    pub cumulative_ratio: f64,
    /// Why the run stopped, once it did.
    pub stopped: Option<String>,
    /// How the run was set up (models, validation) and what its baseline's validation did.
    #[serde(default)]
    pub setup: RunSetup,
}

/// How a run was set up: its models and its validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSetup {
    /// Model id of the proposal step (empty in records older than the field).
    #[serde(default)]
    pub proposal_model: String,
    /// Model id of the implementation step.
    #[serde(default)]
    pub impl_model: String,
    /// `--effort`.
    #[serde(default)]
    pub effort: String,
    /// `--hint`s.
    #[serde(default)]
    pub hints: Vec<String>,
    /// The validation commands with their roles, in the order they run.
    #[serde(default)]
    pub validation: Vec<crate::validation::Step>,
    /// The user asked for no tests.
    #[serde(default)]
    pub no_tests: bool,
    /// What each validation command did on the baseline.
    #[serde(default)]
    pub baseline_validation: Vec<crate::validation::StepResult>,
}

/// `$1.23`, or `$1.23 + unknown` when some of the cost is not known, `unknown` when none is.
pub fn usd(known: f64, unknown: bool) -> String {
    match (unknown, known > 0.0) {
        (false, _) => format!("${known:.2}"),
        (true, true) => format!("${known:.2} + unknown"),
        (true, false) => "unknown".into(),
    }
}

impl RunRecord {
    /// Some attempt's cost is not known.
    pub fn cost_unknown(&self) -> bool {
        self.attempts.iter().any(|a| a.cost_unknown)
    }

    /// Write `history.json` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Load a run record, with a clear error for a missing, corrupt or foreign
    /// file. The file lives in the cache: it is untrusted input, opened without
    /// following a symlink and refused beyond [`MAX_HISTORY_BYTES`]. (Whether
    /// the paths it records are the run's own is for the caller to check.)
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_untrusted(path)?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{} is corrupt ({e}): it cannot be resumed; start a new run", path.display())
        })?;
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>");
        anyhow::ensure!(
            schema == SCHEMA,
            "{} has schema {schema}, expected {SCHEMA}: it cannot be resumed",
            path.display()
        );
        serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("{} is corrupt ({e}): start a new run", path.display()))
    }

    /// Attempts kept.
    pub fn kept(&self) -> usize {
        self.attempts.iter().filter(|a| a.outcome == Some(Outcome::Kept)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            schema: SCHEMA.into(),
            run_id: "20261125-000000".into(),
            sources: "/src".into(),
            branch: "optimize/20261125-000000".into(),
            worktree: "/cache/wt".into(),
            base_commit: "abc".into(),
            scope: "src/libbpfilter/cgen".into(),
            model: "claude-sonnet-4-5".into(),
            objective: "runtime".into(),
            baseline_failures: vec![],
            baseline_failed_commands: vec![],
            attempts: vec![Attempt::new(1)],
            spent_usd: 0.0,
            cumulative_ratio: 1.0,
            stopped: None,
            setup: RunSetup::default(),
        }
    }

    #[test]
    fn round_trips_and_refuses_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        let mut r = record();
        r.attempts[0].outcome = Some(Outcome::OutOfScope { files: vec!["README.md".into()] });
        r.save(&path).unwrap();
        assert_eq!(RunRecord::load(&path).unwrap(), r);
        std::fs::write(&path, "{\"schema\": \"bfperf.optimize-run.v1\", \"run_").unwrap();
        let err = RunRecord::load(&path).unwrap_err().to_string();
        assert!(err.contains("is corrupt"), "{err}");
        let err = RunRecord::load(&dir.path().join("nope.json")).unwrap_err().to_string();
        assert!(err.contains("no optimize run"), "{err}");
    }

    #[test]
    fn symlinks_special_files_and_huge_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        record().save(&real).unwrap();
        let link = dir.path().join("history.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = RunRecord::load(&link).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link") && err.contains("remove it"), "{err}");

        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = RunRecord::load(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = RunRecord::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");

        // Sparse: no disk is used for the size.
        let huge = dir.path().join("huge.json");
        std::fs::File::create(&huge).unwrap().set_len(MAX_HISTORY_BYTES + 1).unwrap();
        let err = RunRecord::load(&huge).unwrap_err().to_string();
        assert!(err.contains("larger than a run writes"), "{err}");
        assert_eq!(RunRecord::load(&real).unwrap(), record());
    }

    #[test]
    fn records_without_the_newer_fields_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        let mut value = serde_json::to_value(record()).unwrap();
        for field in ["started_at", "ended_at", "parent", "proposal_model", "impl_model", "effort", "hints"] {
            value["attempts"][0].as_object_mut().unwrap().remove(field).expect(field);
        }
        value["attempts"][0].as_object_mut().unwrap().remove("transcript");
        std::fs::write(&path, value.to_string()).unwrap();
        assert_eq!(RunRecord::load(&path).unwrap(), record());
    }

    #[test]
    fn titles_come_from_the_first_line() {
        let mut a = Attempt::new(1);
        a.plan = "\nTITLE: hoist the ctx load\nbecause ...".into();
        assert_eq!(a.title(), "hoist the ctx load");
        assert_eq!(Outcome::TestFailed { tail: String::new() }.name(), "test_failed");
    }
}
