//! Running the suite on one build: load each case's chain with the build's
//! bfcli, check its verdict, calibrate, sample, and record the result.

use crate::bpffs::Bpffs;
use crate::chainset::{self, Method, Probe};
use crate::error::{HarnessError, Result};
use crate::flavor::{Flavor, Verdict};
use crate::packet::PacketKind;
use crate::program::{Bfcli, LoadedChain, Program};
use crate::results::{CaseResult, Floor, HostInfo, RunResults, SourceInfo, Status, Unit, HARNESS_VERSION, SCHEMA};
use crate::runner::{self, RunInput, SamplingConfig};
use crate::stats::Summary;
use crate::suite::{Case, Measure, CHAIN_NAME};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Chain loads slower than this get fewer samples (never below 2).
const LOAD_BUDGET: Duration = Duration::from_secs(3);

/// One build under test: its bfcli and the private bpffs it pins into.
#[derive(Debug)]
pub struct Side {
    bfcli: Bfcli,
    bpffs: Bpffs,
    /// The uprobes on `bf_chain_set`, attached on the first chain-load case;
    /// `None` inside when this bfcli cannot be timed in-process.
    probe: std::cell::OnceCell<Option<Probe>>,
}

impl Side {
    /// Check that `bfcli` can be driven ([`Bfcli::probe`]: once per build) and
    /// mount a private bpffs for it.
    pub fn new(bfcli: Bfcli) -> Result<Self> {
        bfcli.probe()?;
        Ok(Side { bfcli, bpffs: Bpffs::mount()?, probe: std::cell::OnceCell::new() })
    }

    /// The build's bfcli.
    pub fn bfcli(&self) -> &Bfcli {
        &self.bfcli
    }

    /// The private bpffs this build pins into.
    pub fn bpffs_path(&self) -> &std::path::Path {
        self.bpffs.path()
    }

    /// How this build's chain loads are timed: in-process when its bfcli (or
    /// the libbpfilter it loads) defines `bf_chain_set` and the uprobes
    /// attach; otherwise by subtracting bfcli's start-up (a warning says why
    /// the uprobes could not attach). Decided once, on first use.
    pub fn chain_method(&self) -> Method {
        let probe = self.probe.get_or_init(|| {
            match chainset::locate(self.bfcli.path()).and_then(|t| t.map(Probe::attach).transpose()) {
                Ok(probe) => probe,
                Err(e) => {
                    eprintln!("warning: {e}; chain loads are timed with bfcli's start-up subtracted");
                    None
                }
            }
        });
        if probe.is_some() {
            Method::InProcess
        } else {
            Method::StartupSubtracted
        }
    }

    /// One sample of a chain-load case, in ms, by `method` (which must be
    /// [`Side::chain_method`] or [`Method::StartupSubtracted`]); the chain is
    /// flushed afterwards. `round` alternates the order of the case's and the
    /// empty chain's loads under [`Method::StartupSubtracted`].
    pub fn time_chain_set(&self, case: &Case, method: Method, round: usize) -> Result<f64> {
        let path = self.bpffs.path();
        let set = |text: &str| -> Result<(Duration, u32)> {
            let took = self.bfcli.chain_set_pid(path, text)?;
            self.bfcli.chain_flush(path, CHAIN_NAME)?;
            Ok(took)
        };
        match (method, self.probe.get().and_then(Option::as_ref)) {
            (Method::InProcess, Some(probe)) => {
                let (_, pid) = self.bfcli.chain_set_gated(path, &case.chain_text(), |pid| probe.arm(pid))?;
                self.bfcli.chain_flush(path, CHAIN_NAME)?;
                match probe.take(pid) {
                    Some(calls) if calls.count == 1 => Ok(calls.time.as_secs_f64() * 1e3),
                    seen => Err(HarnessError::ChainSetTiming(format!(
                        "bfcli (pid {pid}) returned from {} {} times in {}, expected once",
                        chainset::SYMBOL,
                        seen.map_or(0, |c| c.count),
                        probe.target().path.display()
                    ))),
                }
            }
            _ => {
                let (full, empty) = if round % 2 == 0 {
                    let full = set(&case.chain_text())?.0;
                    (full, set(&case.empty_chain_text())?.0)
                } else {
                    let empty = set(&case.empty_chain_text())?.0;
                    (set(&case.chain_text())?.0, empty)
                };
                chainset::subtracted_ms(full, empty).ok_or_else(|| {
                    HarnessError::ChainSetTiming(format!(
                        "start-up subtracted <= 0 (chain {:.2} ms, empty chain {:.2} ms): lost in bfcli's start-up noise",
                        full.as_secs_f64() * 1e3,
                        empty.as_secs_f64() * 1e3,
                    ))
                })
            }
        }
    }

    /// Load `case`'s chain; the program stays loaded while the guard lives.
    pub fn load(&self, case: &Case) -> Result<LoadedChain<'_>> {
        LoadedChain::load(&self.bfcli, &self.bpffs, CHAIN_NAME, &case.chain_text(), case.flavor())
    }
}

/// Empty-program floors, measured once per (flavor, packet) and reused.
#[derive(Debug, Default)]
pub struct Floors {
    measured: BTreeMap<(Flavor, PacketKind), Floor>,
}

impl Floors {
    /// The floor for `flavor` on `packet`, measuring it on first use.
    pub fn get(&mut self, flavor: Flavor, packet: PacketKind, config: &SamplingConfig) -> Result<&Floor> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.measured.entry((flavor, packet)) {
            let program = Program::empty(flavor, Verdict::Accept)?;
            let input = RunInput::new(flavor, packet);
            let (_, samples) = measure_runtime(&program, &input, config)?;
            let summary = Summary::of(&samples).expect("at least one sample");
            slot.insert(Floor { flavor, packet, summary, metrics: program.metrics() });
        }
        Ok(&self.measured[&(flavor, packet)])
    }

    /// Every floor measured so far.
    pub fn all(&self) -> Vec<Floor> {
        self.measured.values().cloned().collect()
    }
}

/// Calibrate, warm up and sample one loaded program. Returns (repeat, samples).
pub fn measure_runtime(program: &Program, input: &RunInput, config: &SamplingConfig) -> Result<(u32, Vec<f64>)> {
    let repeat = runner::calibrate(program, input, Duration::from_secs_f64(config.sample_ms / 1000.0))?;
    for _ in 0..config.warmup {
        runner::sample(program, input, repeat)?;
    }
    let mut samples = Vec::with_capacity(config.samples);
    for _ in 0..config.samples.max(1) {
        crate::interrupt::check()?;
        samples.push(runner::sample(program, input, repeat)?);
    }
    Ok((repeat, samples))
}

/// Errors that stop the whole run rather than one case.
fn is_fatal(e: &HarnessError) -> bool {
    matches!(
        e,
        HarnessError::Interrupted
            | HarnessError::BpfNotPermitted(_)
            | HarnessError::BpfUnavailable(_)
            | HarnessError::BpffsMount { .. }
    )
}

/// Runs cases on one [`Side`] and collects [`RunResults`].
#[derive(Debug)]
pub struct Bench {
    side: Side,
    config: SamplingConfig,
    floors: Floors,
}

impl Bench {
    /// Prepare a bench of `bfcli`: checks bpf() access and mounts a bpffs.
    pub fn new(bfcli: Bfcli, config: SamplingConfig) -> Result<Self> {
        crate::interrupt::install();
        crate::program::check_bpf_access()?;
        crate::bpffs::sweep_stale();
        Ok(Bench { side: Side::new(bfcli)?, config, floors: Floors::default() })
    }

    /// Run one case. A case that fails or is unsupported is a result, not an
    /// error; only interruption and a host that refuses bpf() are errors.
    pub fn run_case(&mut self, case: &Case) -> Result<CaseResult> {
        let mut result = empty_result(case);
        match self.measure(case, &mut result) {
            Ok(()) => Ok(result),
            Err(e) if is_fatal(&e) => Err(e),
            Err(HarnessError::BfcliRejected(reason)) => {
                result.status = Status::Unsupported { reason };
                Ok(result)
            }
            Err(e) => {
                result.status = Status::Failed { reason: e.to_string() };
                Ok(result)
            }
        }
    }

    fn measure(&mut self, case: &Case, result: &mut CaseResult) -> Result<()> {
        match case.measure {
            Measure::Runtime { packet, expected } => {
                let chain = self.side.load(case)?;
                let program = chain.program();
                result.metrics = Some(program.metrics());
                result.load_ms = Some(chain.load_time().as_secs_f64() * 1e3);
                let input = RunInput::new(case.flavor(), packet);
                let outcome = runner::test_run(program, &input, 1)?;
                result.retval = Some(outcome.retval);
                let want = case.flavor().retval(expected);
                if outcome.retval != want {
                    return Err(HarnessError::WrongVerdict { expected: want, verdict: expected, got: outcome.retval });
                }
                let (repeat, samples) = measure_runtime(program, &input, &self.config)?;
                drop(chain);
                result.repeat = Some(repeat);
                result.summary = Summary::of(&samples);
                result.samples = samples;
                result.floor_ns = Some(self.floors.get(case.flavor(), packet, &self.config)?.summary.median);
            }
            Measure::ChainLoad => {
                let method = self.side.chain_method();
                result.load_method = Some(method);
                let mut samples = vec![];
                let started = Instant::now();
                while samples.len() < self.config.load_samples.max(2) {
                    crate::interrupt::check()?;
                    if samples.len() >= 2 && started.elapsed() > LOAD_BUDGET {
                        break;
                    }
                    samples.push(self.side.time_chain_set(case, method, samples.len())?);
                }
                result.summary = Summary::of(&samples);
                result.load_ms = result.summary.map(|s| s.median);
                result.samples = samples;
            }
        }
        Ok(())
    }

    /// Run `cases` in order; `on_case` is called before each case (index,
    /// case) and `on_result` after it, for progress display.
    pub fn run(
        &mut self,
        cases: &[&Case],
        source: SourceInfo,
        mut on_case: impl FnMut(usize, &Case),
        mut on_result: impl FnMut(&CaseResult),
    ) -> Result<RunResults> {
        let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let start = Instant::now();
        let mut results = Vec::with_capacity(cases.len());
        for (i, case) in cases.iter().enumerate() {
            on_case(i, case);
            let r = self.run_case(case)?;
            on_result(&r);
            results.push(r);
        }
        Ok(RunResults {
            schema: SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at,
            wall_time_s: start.elapsed().as_secs_f64(),
            host: HostInfo::current(),
            source,
            sampling: self.config,
            floors: self.floors.all(),
            cases: results,
        })
    }

    /// The build under test.
    pub fn side(&self) -> &Side {
        &self.side
    }
}

fn empty_result(case: &Case) -> CaseResult {
    CaseResult {
        name: case.name.clone(),
        label: case.label.clone(),
        hook: case.hook,
        flavor: case.flavor(),
        packet: case.runtime().map(|(p, _)| p),
        flags: case.flags,
        status: Status::Ok,
        unit: match case.measure {
            Measure::Runtime { .. } => Unit::NsPerPacket,
            Measure::ChainLoad => Unit::Milliseconds,
        },
        repeat: None,
        retval: None,
        samples: vec![],
        summary: None,
        metrics: None,
        floor_ns: None,
        load_ms: None,
        load_method: None,
    }
}
