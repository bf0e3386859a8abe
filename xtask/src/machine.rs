//! Where builds and measurements run: this machine, or a host reached over
//! ssh (`--host`). Every command goes through a [`Machine`], so a remote run
//! is the same run with its slow steps done elsewhere.

use crate::build::Build;
use crate::host::{Isolation, Scope};
use crate::remote::harness::{CommandOutput, Event, Request};
use crate::remote::Remote;
use crate::sandbox::Policy;
use crate::validation::CommandResult;
use anyhow::{Context as _, Result};
use bench_harness::engine::{self, CompareConfig, Comparison, Progress, SideInfo};
use bench_harness::program::Bfcli;
use bench_harness::results::{CaseResult, RunResults, SourceInfo};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite::Case;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`Machine::probe`] on this machine.
pub fn probe_here(bfcli: &Path) -> Result<Option<String>> {
    match Bfcli::new(bfcli)?.probe() {
        Ok(()) => Ok(None),
        Err(e @ bench_harness::error::HarnessError::UnsupportedTree(_)) => Ok(Some(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// This machine or a remote host. Paths of bfclis and build directories
/// returned by a machine are paths *on* it.
#[derive(Debug, Clone)]
pub enum Machine {
    /// Here, measuring under this isolation (the session checked that this host can apply it).
    Local(Isolation),
    /// Over ssh (the host applies the isolation to each of its measurements).
    Remote(Arc<Remote>),
}

impl Machine {
    /// Whether builds and measurements run here.
    pub fn is_local(&self) -> bool {
        matches!(self, Machine::Local(_))
    }

    /// The isolation of a measurement made on the calling thread, undone when
    /// the scope is dropped: this machine's, or nothing for a remote host (which
    /// applies its own to each request). Wrapped around every local measurement.
    pub fn measuring(&self) -> Result<Scope> {
        match self {
            Machine::Local(isolation) => isolation.scope(),
            Machine::Remote(_) => Ok(Scope::default()),
        }
    }

    /// For messages: `this host` or `user@host`.
    pub fn name(&self) -> String {
        match self {
            Machine::Local(_) => "this host".into(),
            Machine::Remote(r) => r.host().to_string(),
        }
    }

    /// Who measures, as records name it: the `--host` target, or this host's name.
    pub fn host_name(&self) -> String {
        match self {
            Machine::Local(_) => bench_harness::results::HostInfo::current().hostname,
            Machine::Remote(r) => r.host().to_string(),
        }
    }

    /// Build bfcli of the local tree `sources` in the build directory `dir`
    /// (the local path; on a host, its mirror there). Returns the bfcli's path on the machine.
    pub fn build(&self, sources: &Path, dir: &Path) -> Result<PathBuf> {
        self.build_confined(sources, dir, None)
    }

    /// [`Machine::build`], confined by `sandbox` when given (a tree with model-written code).
    pub fn build_confined(&self, sources: &Path, dir: &Path, sandbox: Option<&Policy>) -> Result<PathBuf> {
        match self {
            Machine::Local(_) => Build::new(sources, dir).confined(sandbox.cloned()).bfcli_built(),
            Machine::Remote(r) => {
                let request =
                    Request::Build { sources: r.sync_tree(sources)?, dir: r.path_of(dir), sandbox: sandbox.cloned() };
                Ok(serde_json::from_value(r.request(request, |_| {})?)?)
            }
        }
    }

    /// The bfcli of the build directory `dir` when it was built (history's cache).
    pub fn built_bfcli(&self, dir: &Path) -> Result<Option<PathBuf>> {
        let path = self.bfcli_of(dir);
        let built = match self {
            Machine::Local(_) => path.is_file(),
            Machine::Remote(r) => serde_json::from_value(r.request(Request::IsBfcli { path: path.clone() }, |_| {})?)?,
        };
        Ok(built.then_some(path))
    }

    /// Whether the bfcli at `bfcli` (a path on the machine) can be driven as
    /// bfperf drives it: `None`, or the one line saying why not (a tree
    /// from before bpfilter's daemon removal).
    pub fn probe(&self, bfcli: &Path) -> Result<Option<String>> {
        match self {
            Machine::Local(_) => probe_here(bfcli),
            Machine::Remote(r) => {
                Ok(serde_json::from_value(r.request(Request::ProbeBfcli { path: bfcli.to_owned() }, |_| {})?)?)
            }
        }
    }

    /// The path on the machine of a local build directory's bfcli.
    pub fn bfcli_of(&self, dir: &Path) -> PathBuf {
        let local = crate::build::bfcli_in(dir);
        match self {
            Machine::Local(_) => local,
            Machine::Remote(r) => r.path_of(&local),
        }
    }

    /// Run validation `commands` in the local tree `dir` (uploaded first on a
    /// host) with build directory `build`, confined by `sandbox` there; logs
    /// are written locally to `logs`. A failing command whose `stops` entry is
    /// true ends the list ([`crate::validation::run_all`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_commands(
        &self,
        commands: &[String],
        stops: &[bool],
        dir: &Path,
        build: &Path,
        logs: &Path,
        tag: &str,
        sandbox: &Policy,
        on_start: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<CommandResult>> {
        let Machine::Remote(r) = self else {
            return crate::validation::run_all(commands, stops, dir, build, logs, tag, sandbox, on_start);
        };
        // The host runs them all in one request: say so once.
        on_start(0, &format!("{} command(s) on the host", commands.len()));
        let tree = r.sync_tree(dir)?;
        let request = Request::Commands {
            commands: commands.to_vec(),
            stops: stops.to_vec(),
            dir: tree,
            build: r.path_of(build),
            sandbox: sandbox.clone(),
        };
        let outputs: Vec<CommandOutput> = serde_json::from_value(r.request(request, |_| {})?)?;
        std::fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
        outputs
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let log = logs.join(format!("{tag}-{i}.log"));
                std::fs::write(&log, &o.log_text).with_context(|| format!("cannot write {}", log.display()))?;
                // The log text is the host's log, `$ command` line first.
                let text = o.log_text.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
                Ok(CommandResult::from_output(o.command, o.ok, text, o.seconds, log))
            })
            .collect()
    }

    /// Run `cases` on the bfcli at `bfcli` (a path on the machine).
    pub fn bench(
        &self,
        bfcli: &Path,
        cases: &[&Case],
        sampling: SamplingConfig,
        source: SourceInfo,
        mut on_case: impl FnMut(&str),
        mut on_result: impl FnMut(&CaseResult),
    ) -> Result<RunResults> {
        match self {
            Machine::Local(_) => {
                let _isolated = self.measuring()?;
                let mut bench = bench_harness::suite_run::Bench::new(Bfcli::new(bfcli)?, sampling)
                    .context("cannot start the benchmark")?;
                Ok(bench.run(cases, source, |_, c| on_case(&c.name), on_result)?)
            }
            Machine::Remote(r) => {
                let request = Request::Bench {
                    bfcli: bfcli.to_owned(),
                    cases: cases.iter().map(|c| c.name.clone()).collect(),
                    sampling,
                    source,
                };
                let answer = r.request(request, |e| match e {
                    Event::CaseStarted(name) => on_case(name),
                    Event::CaseDone(result) => on_result(result),
                    _ => {}
                })?;
                Ok(serde_json::from_value(answer)?)
            }
        }
    }

    /// The paired, interleaved comparison of two bfclis (paths on the machine).
    pub fn compare(
        &self,
        base: (PathBuf, SideInfo),
        reference: (PathBuf, SideInfo),
        cases: &[&Case],
        config: CompareConfig,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Comparison> {
        match self {
            Machine::Local(_) => {
                let _isolated = self.measuring()?;
                let side = |(p, i): (PathBuf, SideInfo)| -> Result<(Bfcli, SideInfo)> { Ok((Bfcli::new(p)?, i)) };
                Ok(engine::run(side(base)?, side(reference)?, cases, config, progress)?)
            }
            Machine::Remote(r) => {
                let request =
                    Request::Compare { base, reference, cases: cases.iter().map(|c| c.name.clone()).collect(), config };
                let answer = r.request(request, |e| match e {
                    Event::Loading(name) => progress(Progress::Loading(name)),
                    Event::Round { case, done, at_most } => {
                        progress(Progress::Round { case, done: *done, at_most: *at_most })
                    }
                    _ => {}
                })?;
                Ok(serde_json::from_value(answer)?)
            }
        }
    }
}
