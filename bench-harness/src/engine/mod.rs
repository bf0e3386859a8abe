//! The comparison engine: what `bench-compare` and `bench-history` run, the
//! verdict ([`verdict`]), the adaptive rounds ([`schedule`]) and the schema
//! it writes ([`Comparison`], `bfperf.compare.v1`). Here: the schema and the
//! kernel side (loading, measuring a round).
//!
//! Paired, interleaved measurement of two builds (BASE and REF): both
//! programs of a case are loaded at once, each from its own bpffs, and
//! measured in alternating rounds (ABBA: AB, BA, AB, ...), so drifts of the
//! machine (frequency, cache, noisy neighbours) hit both sides alike and
//! cancel in the per-round ratio.
//!
//! Rounds are sequential ([`schedule`]): every case first gets `min_rounds`;
//! then, while the time budget lasts, the undecided case that has cost the
//! least time gets more, and a case stops as soon as its interval is decided
//! (clearly beyond the threshold, or clearly inside it) or hits `max_rounds`.
//! A case whose two sides load the same program (`same_program`) is not
//! timed at all unless [`CompareConfig::measure_identical`] says so.

pub mod schedule;
pub mod verdict;

pub use schedule::{
    abba, adaptive, copy_slot, decided, first_look, has_interval, look_level, looks, suite_geomean,
    suite_geomean_replayed, suite_geomean_sequential, Copies, Paired, RoundSource, BOOTSTRAP_ITERATIONS,
    BOOTSTRAP_SEED, SEQUENTIAL_ITERATIONS,
};
pub use verdict::{classify, resolution_pct, Change};

use crate::chainset::Method;
use crate::error::{HarnessError, Result};
use crate::program::{Bfcli, ProgramMetrics};
use crate::results::{HostInfo, SourceInfo, Status, Unit, HARNESS_VERSION};
use crate::runner::{self, RunInput};
use crate::stats::paired::RatioEstimate;
use crate::suite::{Case, Flags, Measure, CHAIN_NAME};
use crate::suite_run::Side;
use crate::{flavor::Flavor, program::Program};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Seconds of the time budget kept for the work after the last round (the
/// suite estimate), so that `wall_time_s` stays within the budget.
const FINISH_RESERVE_S: f64 = 1.0;

/// Schema identifier of [`Comparison`].
pub const SCHEMA: &str = "bfperf.compare.v1";

/// How a comparison is measured and judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    /// Target duration of one sample (one test-run call), in ms.
    pub sample_ms: f64,
    /// Untimed calls per side before the first round.
    pub warmup: usize,
    /// Rounds every case gets.
    pub min_rounds: usize,
    /// Rounds no case goes beyond.
    pub max_rounds: usize,
    /// Stop adding rounds to a case once its CI is narrower than this, in % of the estimate.
    pub target_ci_pct: f64,
    /// Wall-time budget of the measuring phase, in seconds.
    pub time_budget_s: f64,
    /// |Δ| below this is `no change` even when significant, in %.
    pub threshold_pct: f64,
    /// Confidence level of the intervals.
    pub level: f64,
    /// Copies of each program loaded per side before the first round; each
    /// serves one round, later rounds load fresh ones ([`copy_slot`]).
    pub instances: usize,
    /// Time cases whose BASE and REF programs are the same program
    /// (`--measure-identical`; A/A checks). Otherwise such a case gets no
    /// round: its verdict is "same program" and its budget goes to the others.
    #[serde(default, skip_serializing_if = "is_false")]
    pub measure_identical: bool,
    /// REF's samples are multiplied by `1 + inject_pct / 100`: a known
    /// slowdown injected into an A/A comparison, for `bench-selfcheck`'s
    /// power curve. 0 in every real comparison.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inject_pct: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            sample_ms: 10.0,
            warmup: 2,
            min_rounds: 12,
            max_rounds: 80,
            target_ci_pct: 2.0,
            time_budget_s: 150.0,
            threshold_pct: 1.0,
            level: 0.95,
            instances: 6,
            measure_identical: false,
            inject_pct: 0.0,
        }
    }
}

impl CompareConfig {
    /// `--quick`: fewer, shorter rounds; the same statistics, wider intervals.
    pub fn quick() -> Self {
        CompareConfig {
            sample_ms: 5.0,
            warmup: 1,
            min_rounds: 8,
            max_rounds: 16,
            time_budget_s: 30.0,
            ..Self::default()
        }
    }
}

/// One side's identity in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideInfo {
    /// Label shown in tables (`a1b2c3 (HEAD~1)`).
    pub label: String,
    /// What was built.
    pub source: SourceInfo,
}

/// The comparison of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseComparison {
    /// Case name.
    pub name: String,
    /// Flavor of the program.
    pub flavor: Flavor,
    /// Upstream's flags.
    pub flags: Flags,
    /// Unit of the samples.
    pub unit: Unit,
    /// Outcome on BASE.
    pub base_status: Status,
    /// Outcome on REF.
    pub ref_status: Status,
    /// Repeat count used on both sides (runtime cases).
    pub repeat: Option<u32>,
    /// BASE samples, one per round.
    pub base_samples: Vec<f64>,
    /// REF samples, paired with `base_samples`.
    pub ref_samples: Vec<f64>,
    /// Exact metrics of BASE's program.
    pub base_metrics: Option<ProgramMetrics>,
    /// Exact metrics of REF's program.
    pub ref_metrics: Option<ProgramMetrics>,
    /// Whether BASE and REF load byte-identical xlated code (map ids
    /// normalised, [`crate::code`]); `None` when not known (a side failed,
    /// or a chain-load case, which has no single program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_program: Option<bool>,
    /// The diff of BASE's and REF's normalised listings (`bench-compare
    /// --show-diff`); `None` when not asked for or not loadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_diff: Option<crate::listing::ListingDiff>,
    /// How a chain-load case was timed on both sides; absent for runtime
    /// cases and in files written before bfperf timed `bf_chain_set`
    /// in-process (there: the whole `bfcli chain set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_method: Option<crate::chainset::Method>,
    /// REF/BASE with its interval (at the per-look level of
    /// [`look_level`]). `None` when the case was not timed.
    pub estimate: Option<RatioEstimate>,
    /// The verdict; `None` when the case was not timed (a side failed, or
    /// `same_program` without `measure_identical`).
    pub change: Option<Change>,
    /// The largest change the interval leaves possible, in % of BASE
    /// ([`resolution_pct`]): a `no change` rules out changes beyond ±this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_pct: Option<f64>,
}

impl CaseComparison {
    /// A case of `flavor` before anything is loaded or measured: both sides
    /// `ok`, in ns/pkt, no samples, no metrics, no verdict.
    pub fn new(name: impl Into<String>, flavor: Flavor) -> Self {
        CaseComparison {
            name: name.into(),
            flavor,
            flags: Flags::default(),
            unit: Unit::NsPerPacket,
            base_status: Status::Ok,
            ref_status: Status::Ok,
            repeat: None,
            base_samples: vec![],
            ref_samples: vec![],
            base_metrics: None,
            ref_metrics: None,
            same_program: None,
            listing_diff: None,
            load_method: None,
            estimate: None,
            change: None,
            resolution_pct: None,
        }
    }

    /// Both sides measured.
    pub fn is_ok(&self) -> bool {
        self.base_status == Status::Ok && self.ref_status == Status::Ok
    }

    /// Both sides loaded the same program and it was not timed: the
    /// verdict is "same program".
    pub fn untimed_same_program(&self) -> bool {
        self.is_ok() && self.same_program == Some(true) && self.base_samples.is_empty()
    }

    /// Median BASE sample.
    pub fn base_median(&self) -> Option<f64> {
        (!self.base_samples.is_empty()).then(|| crate::stats::median(&self.base_samples))
    }

    /// Median REF sample.
    pub fn ref_median(&self) -> Option<f64> {
        (!self.ref_samples.is_empty()).then(|| crate::stats::median(&self.ref_samples))
    }

    /// REF minus BASE xlated instructions (exact).
    pub fn insns_delta(&self) -> Option<i64> {
        Some(i64::from(self.ref_metrics?.xlated_insns) - i64::from(self.base_metrics?.xlated_insns))
    }

    /// REF minus BASE JITed bytes (exact).
    pub fn jited_delta(&self) -> Option<i64> {
        Some(i64::from(self.ref_metrics?.jited_bytes) - i64::from(self.base_metrics?.jited_bytes))
    }
}

/// A whole comparison: BASE vs REF over the selected cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Producer version.
    pub harness_version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time, in seconds.
    pub wall_time_s: f64,
    /// Machine.
    pub host: HostInfo,
    /// BASE.
    pub base: SideInfo,
    /// REF.
    pub reference: SideInfo,
    /// Whether both sides are the same build (an A/A check of the noise).
    pub same_build: bool,
    /// How it was measured.
    pub config: CompareConfig,
    /// Per case.
    pub cases: Vec<CaseComparison>,
    /// Geometric mean of REF/BASE over runtime cases measured on both sides.
    pub geomean: Option<RatioEstimate>,
}

impl Comparison {
    /// Cases judged `slower`. A case whose two sides load the same program
    /// is never one: timed anyway (`--measure-identical`), its difference is
    /// noise (the JIT is deterministic given the xlated code).
    pub fn regressions(&self) -> impl Iterator<Item = &CaseComparison> {
        self.cases.iter().filter(|c| c.change == Some(Change::Slower) && c.same_program != Some(true))
    }

    /// Cases judged `faster` (same rule as [`Comparison::regressions`]).
    pub fn improvements(&self) -> impl Iterator<Item = &CaseComparison> {
        self.cases.iter().filter(|c| c.change == Some(Change::Faster) && c.same_program != Some(true))
    }

    /// Cases that failed or were unsupported on either side.
    pub fn errors(&self) -> impl Iterator<Item = &CaseComparison> {
        self.cases.iter().filter(|c| !c.is_ok())
    }

    /// Parse a comparison, refusing other schemas.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>");
        anyhow::ensure!(schema == SCHEMA, "comparison schema is {schema}, expected {SCHEMA}");
        Ok(serde_json::from_value(value)?)
    }
}

/// What is measured in a round for one case.
enum Subject {
    /// The loaded copies of both sides.
    Runtime { copies: Copies, input: RunInput, repeat: u32 },
    /// A chain-load case, timed by `method` on both sides.
    ChainLoad { method: Method },
}

struct Entry {
    case: Case,
    result: CaseComparison,
    subject: Option<Subject>,
}

/// Progress of a comparison, for display.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// Loading the programs of a case on both sides.
    Loading(&'a str),
    /// A round of a case was measured; `done` rounds of the whole run so far.
    Round {
        /// Case name.
        case: &'a str,
        /// Rounds measured so far, all cases.
        done: usize,
        /// Rounds the run will measure at most, `done` included: shrinks as
        /// cases are decided (the time budget may stop it sooner).
        at_most: usize,
    },
}

fn is_fatal(e: &HarnessError) -> bool {
    matches!(e, HarnessError::Interrupted | HarnessError::BpfNotPermitted(_) | HarnessError::BpfUnavailable(_))
}

fn status_of(e: HarnessError) -> Result<Status> {
    match e {
        e if is_fatal(&e) => Err(e),
        HarnessError::BfcliRejected(reason) => Ok(Status::Unsupported { reason }),
        e => Ok(Status::Failed { reason: e.to_string() }),
    }
}

/// Load `case` on `side` and keep only the program: the chain is flushed at
/// once (our fd keeps the program and its maps alive), so every case of the
/// run can stay loaded in one bpffs.
fn load_program(side: &Side, case: &Case) -> Result<Program> {
    Ok(side.load(case)?.into_program())
}

/// Compare `cases` between two bfclis. `base == reference` is the A/A check.
pub fn run(
    base: (Bfcli, SideInfo),
    reference: (Bfcli, SideInfo),
    cases: &[&Case],
    config: CompareConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Comparison> {
    crate::interrupt::install();
    crate::program::check_bpf_access()?;
    crate::bpffs::sweep_stale();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let start = Instant::now();
    let same_build = base.0.path() == reference.0.path();
    let (a, b) = (Side::new(base.0)?, Side::new(reference.0)?);

    let mut entries = Vec::with_capacity(cases.len());
    for case in cases {
        progress(Progress::Loading(&case.name));
        entries.push(prepare(&a, &b, case, &config)?);
    }

    // The budget covers the whole measuring phase, loads and the suite
    // estimate included: the rounds stop early enough for the estimate
    // (its replayed bootstrap, [`suite_geomean_sequential`]) to fit.
    let deadline = start + Duration::from_secs_f64((config.time_budget_s - FINISH_RESERVE_S).max(0.0));
    let mut kernel = Kernel {
        a: &a,
        b: &b,
        entries: &mut entries,
        deadline,
        done: 0,
        at_most: 0,
        inject_pct: config.inject_pct,
        spent: vec![0.0; cases.len()],
        slowest: vec![0.0; cases.len()],
        progress: &mut progress,
    };
    let rounds = adaptive(cases.len(), &config, &mut kernel)?;
    for (entry, paired) in entries.iter_mut().zip(rounds) {
        if !entry.result.is_ok() {
            // Failed during its rounds: the rounds before are no verdict.
            continue;
        }
        entry.result.base_samples = paired.base;
        entry.result.ref_samples = paired.reference;
        entry.result.resolution_pct = paired.estimate.as_ref().and_then(resolution_pct);
        entry.result.estimate = paired.estimate;
        entry.result.change = paired.change;
    }

    // Same-program cases enter the suite mean as exactly 1 (doc/compare.md):
    // their code is identical, so is their true cost.
    let ones: (&[f64], &[f64]) = (&[1.0], &[1.0]);
    let runtime: Vec<(&[f64], &[f64])> = entries
        .iter()
        .filter(|e| e.result.unit == Unit::NsPerPacket)
        .filter_map(|e| {
            if e.result.untimed_same_program() {
                Some(ones)
            } else {
                let rounds = (e.result.base_samples.as_slice(), e.result.ref_samples.as_slice());
                e.result.estimate.is_some().then_some(rounds)
            }
        })
        .collect();
    // All rounds, the stopping replayed in the bootstrap (unbiased where the
    // plain mean over all rounds is not).
    let geomean = suite_geomean_sequential(&runtime, &config);
    Ok(Comparison {
        schema: SCHEMA.into(),
        harness_version: HARNESS_VERSION.into(),
        started_at,
        wall_time_s: start.elapsed().as_secs_f64(),
        host: HostInfo::current(),
        base: base.1,
        reference: reference.1,
        same_build,
        config,
        cases: entries.into_iter().map(|e| e.result).collect(),
        geomean,
    })
}

fn prepare(a: &Side, b: &Side, case: &Case, config: &CompareConfig) -> Result<Entry> {
    let mut result = CaseComparison { flags: case.flags, ..CaseComparison::new(case.name.clone(), case.flavor()) };
    let subject = match case.measure {
        Measure::ChainLoad => {
            result.unit = Unit::Milliseconds;
            let text = case.chain_text();
            // Both sides timed alike, or REF/BASE would divide unlike things.
            let method = Method::common(a.chain_method(), b.chain_method());
            result.load_method = Some(method);
            // One load per side checks both accept the chain.
            for (side, status) in [(a, &mut result.base_status), (b, &mut result.ref_status)] {
                if let Err(e) = side.bfcli().chain_set(side.bpffs_path(), &text) {
                    *status = status_of(e)?;
                } else {
                    side.bfcli().chain_flush(side.bpffs_path(), CHAIN_NAME)?;
                }
            }
            result.is_ok().then_some(Subject::ChainLoad { method })
        }
        Measure::Runtime { packet, expected } => {
            let input = RunInput::new(case.flavor(), packet);
            // Each load of the same program lands its JITed code elsewhere, and
            // code placement alone moves timings by a few %: a single copy per
            // side would turn that placement luck into a "significant" change.
            // A copy pair per round ([`copy_slot`]) makes it part of each round's noise.
            let copies = config.instances.max(1);
            let mut sides: Vec<Vec<Program>> = vec![vec![], vec![]];
            // One copy per side first: if both are the same program and it is
            // not to be timed, the other copies are never loaded.
            for i in 0..copies {
                for (k, (side, status, metrics)) in [
                    (a, &mut result.base_status, &mut result.base_metrics),
                    (b, &mut result.ref_status, &mut result.ref_metrics),
                ]
                .into_iter()
                .enumerate()
                {
                    if *status != Status::Ok {
                        continue;
                    }
                    match load_program(side, case).and_then(|p| {
                        *metrics = Some(p.metrics());
                        runner::check_verdict(&p, &input, expected).map(|_| p)
                    }) {
                        Ok(p) => sides[k].push(p),
                        Err(e) => *status = status_of(e)?,
                    }
                }
                if !result.is_ok() {
                    break;
                }
                if i == 0 {
                    let same = sides[0][0].code()?.same_program(&sides[1][0].code()?);
                    result.same_program = Some(same);
                    if same && !config.measure_identical {
                        // Identical code: nothing to time.
                        return Ok(Entry { case: case.clone(), result, subject: None });
                    }
                }
            }
            if result.is_ok() {
                let reference = sides.pop().expect("two sides");
                let base = sides.pop().expect("two sides");
                // The same repeat on both sides: each call does the same work count.
                let repeat = runner::calibrate(&base[0], &input, Duration::from_secs_f64(config.sample_ms / 1000.0))?;
                for _ in 0..config.warmup {
                    for p in base.iter().chain(&reference) {
                        runner::sample(p, &input, repeat)?;
                    }
                }
                result.repeat = Some(repeat);
                Some(Subject::Runtime { copies: Copies::new(base, reference), input, repeat })
            } else {
                None
            }
        }
    };
    Ok(Entry { case: case.clone(), result, subject })
}

/// The kernel as a [`RoundSource`]: the programs of every case, loaded on
/// both sides.
struct Kernel<'a, P> {
    a: &'a Side,
    b: &'a Side,
    entries: &'a mut [Entry],
    deadline: Instant,
    /// Rounds measured so far, all cases (for progress).
    done: usize,
    /// Rounds the schedule may still ask for, at its last word.
    at_most: usize,
    /// [`CompareConfig::inject_pct`].
    inject_pct: f64,
    /// Seconds spent in rounds, per case.
    spent: Vec<f64>,
    /// The slowest round so far, in seconds, per case: what the next one may take.
    slowest: Vec<f64>,
    progress: &'a mut P,
}

impl<P: FnMut(Progress<'_>)> RoundSource for Kernel<'_, P> {
    fn round(&mut self, case: usize, done: usize) -> Result<Option<(f64, f64)>> {
        let entry = &mut self.entries[case];
        let started = Instant::now();
        let Some(pair) = round(self.a, self.b, entry, done)? else { return Ok(None) };
        let took = started.elapsed().as_secs_f64();
        self.spent[case] += took;
        self.slowest[case] = self.slowest[case].max(took);
        self.done += 1;
        self.at_most = self.at_most.saturating_sub(1);
        (self.progress)(Progress::Round {
            case: &entry.result.name,
            done: self.done,
            at_most: self.done + self.at_most,
        });
        let scale = 1.0 + self.inject_pct / 100.0;
        Ok(Some((pair.0, pair.1 * scale)))
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn no_time_for(&self, case: usize) -> bool {
        Instant::now() + Duration::from_secs_f64(self.slowest[case]) >= self.deadline
    }

    fn plan(&mut self, rounds: usize) {
        self.at_most = rounds;
    }

    fn spent(&self, case: usize) -> f64 {
        self.spent[case]
    }
}

/// One round, the `done`-th of its case: one sample per side, order
/// alternating with the round number. `None` if the case is not measured.
fn round(a: &Side, b: &Side, entry: &mut Entry, done: usize) -> Result<Option<(f64, f64)>> {
    crate::interrupt::check()?;
    let case = &entry.case;
    let pair = match &mut entry.subject {
        None => return Ok(None),
        Some(Subject::Runtime { copies, input, repeat }) => {
            let (base, reference) = copies.for_round(done, || Ok((load_program(a, case)?, load_program(b, case)?)))?;
            let one = |p: &Program| runner::sample(p, input, *repeat);
            abba(done, || one(base), || one(reference))?
        }
        Some(Subject::ChainLoad { method }) => {
            let method = *method;
            match abba(done, || a.time_chain_set(case, method, done), || b.time_chain_set(case, method, done)) {
                Ok(pair) => pair,
                // A sample that cannot be taken (a start-up subtraction lost
                // in noise) fails the case, not the comparison.
                Err(HarnessError::ChainSetTiming(reason)) => {
                    entry.result.base_status = Status::Failed { reason: reason.clone() };
                    entry.result.ref_status = Status::Failed { reason };
                    entry.subject = None;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    };
    Ok(Some(pair))
}
