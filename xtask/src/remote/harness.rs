//! The remote side of `--host`: `bfperf harness` (hidden subcommand) reads
//! one [`Request`] as a JSON line on stdin, does it on that host with the
//! same code a local run uses, and answers with [`Event`] JSON lines on
//! stdout. Closing its stdin (bfperf interrupted, connection lost) is a
//! Ctrl-C: it stops at the next check and cleans up like a local run.

use crate::host::Isolation;
use crate::lock;
use crate::validation;
use anyhow::{Context as _, Result};
use bench_harness::engine::{CompareConfig, Progress, SideInfo};
use bench_harness::program::Bfcli;
use bench_harness::results::{CaseResult, SourceInfo};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite::{self, Case};
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

/// Version of the protocol; both sides are the same bfperf binary, so a
/// mismatch only means a stale upload.
pub const PROTOCOL: u32 = 2;

/// What the host is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Check bpf() and the build tools; answers [`Probe`].
    Probe,
    /// Build bfcli of `sources` in `dir`; answers the bfcli path.
    Build {
        /// The source tree (already uploaded).
        sources: PathBuf,
        /// The build directory.
        dir: PathBuf,
        /// Confine the build (a tree with model-written code).
        sandbox: Option<crate::sandbox::Policy>,
    },
    /// Whether the bfcli at `path` can be driven as bfperf drives it
    /// (`Bfcli::probe`); answers `Option<String>`: why not, or null.
    ProbeBfcli {
        /// The path.
        path: PathBuf,
    },
    /// Whether `path` is a bfcli the harness can run; answers a bool.
    IsBfcli {
        /// The path.
        path: PathBuf,
    },
    /// Run validation commands; answers `Vec<`[`CommandOutput`]`>`.
    Commands {
        /// Commands, with `{build}`, `{source}`, `{jobs}` placeholders.
        commands: Vec<String>,
        /// Whether each command, failing, ends the list (see `validation::run_all`).
        #[serde(default)]
        stops: Vec<bool>,
        /// Where they run (`{source}`).
        dir: PathBuf,
        /// `{build}`.
        build: PathBuf,
        /// How they are confined on the host.
        sandbox: crate::sandbox::Policy,
    },
    /// Run the suite on one bfcli; answers `RunResults`.
    Bench {
        /// The bfcli.
        bfcli: PathBuf,
        /// Case names.
        cases: Vec<String>,
        /// Sampling.
        sampling: SamplingConfig,
        /// What was built.
        source: SourceInfo,
    },
    /// The paired comparison; answers a `Comparison`.
    Compare {
        /// BASE bfcli and identity.
        base: (PathBuf, SideInfo),
        /// REF bfcli and identity.
        reference: (PathBuf, SideInfo),
        /// Case names.
        cases: Vec<String>,
        /// Measurement settings.
        config: CompareConfig,
    },
}

impl Request {
    fn measures(&self) -> bool {
        matches!(self, Request::Bench { .. } | Request::Compare { .. })
    }
}

/// A request with how the host should be held while measuring.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// The work.
    pub request: Request,
    /// Isolation applied before measuring.
    pub isolation: Isolation,
    /// Wait for the host's benchmark lock (else fail at once).
    pub wait: bool,
    /// Shown to another run waiting for the lock.
    pub what: String,
    /// The remote cache root (the lock falls back there when /run/lock is not writable).
    pub root: PathBuf,
}

/// One line of the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    /// A message for the user (lock waits, isolation applied).
    Note(String),
    /// Loading a case's programs (compare).
    Loading(String),
    /// A round of `case` measured; `done` rounds so far (compare).
    Round {
        /// Case.
        case: String,
        /// Rounds so far.
        done: usize,
        /// Rounds at most, `done` included.
        #[serde(default)]
        at_most: usize,
    },
    /// Starting a case (bench).
    CaseStarted(String),
    /// A case's result (bench).
    CaseDone(Box<CaseResult>),
    /// The answer.
    Done(serde_json::Value),
    /// The request failed; the message as a local run would print it.
    Failed {
        /// The error, one line per cause.
        message: String,
        /// Whether it stopped because it was interrupted.
        interrupted: bool,
    },
}

/// The answer to [`Request::Probe`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    /// `uname -r`.
    pub kernel: String,
    /// Build tools missing on the host.
    pub missing_tools: Vec<String>,
}

/// A validation command's outcome with its log text (the log is written on
/// the host; the text comes back to be kept with the run's local logs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandOutput {
    /// The command as given.
    pub command: String,
    /// Whether it exited 0.
    pub ok: bool,
    /// Failing ctest names.
    pub failed_tests: Vec<String>,
    /// Last lines.
    pub tail: String,
    /// The whole log.
    pub log_text: String,
    /// Seconds it ran.
    #[serde(default)]
    pub seconds: f64,
}

/// Serve one request from stdin; returns the exit code.
pub fn serve() -> i32 {
    bench_harness::interrupt::install();
    let stdout = std::io::stdout();
    let emit = move |e: &Event| {
        let mut out = stdout.lock();
        let _ = serde_json::to_writer(&mut out, e);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    let mut line = String::new();
    let envelope: Result<Envelope> = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the request")
        .and_then(|_| serde_json::from_str(&line).context("malformed request"));
    let envelope = match envelope {
        Ok(e) if e.protocol == PROTOCOL => e,
        Ok(e) => {
            let message = format!("protocol {} != {PROTOCOL}: the uploaded bfperf is stale", e.protocol);
            emit(&Event::Failed { message, interrupted: false });
            return crate::exit::ERROR;
        }
        Err(e) => {
            emit(&Event::Failed { message: format!("{e:#}"), interrupted: false });
            return crate::exit::ERROR;
        }
    };
    // The rest of stdin stays open for the whole request; its end means stop.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
        bench_harness::interrupt::request();
    });
    match handle(envelope, &emit) {
        Ok(value) => {
            emit(&Event::Done(value));
            crate::exit::OK
        }
        Err(e) => {
            let interrupted = bench_harness::interrupt::requested();
            emit(&Event::Failed { message: format!("{e:#}"), interrupted });
            crate::exit::of_error()
        }
    }
}

fn cases_named(all: &[Case], names: &[String]) -> Result<Vec<Case>> {
    names
        .iter()
        .map(|n| {
            all.iter().find(|c| &c.name == n).cloned().with_context(|| format!("the host's suite has no case {n}"))
        })
        .collect()
}

/// The isolation of a measuring request, applied to this thread as locally ([`Isolation::scope`]).
fn isolate(isolation: &Isolation, emit: &dyn Fn(&Event)) -> Result<crate::host::Scope> {
    let scope = isolation.scope()?;
    for line in scope.applied() {
        emit(&Event::Note(format!("host: while measuring: {line}")));
    }
    Ok(scope)
}

fn handle(envelope: Envelope, emit: &dyn Fn(&Event)) -> Result<serde_json::Value> {
    let _lock = if envelope.request.measures() {
        let wait = if envelope.wait { lock::Wait::Yes } else { lock::Wait::No };
        std::fs::create_dir_all(&envelope.root)?;
        Some(lock::RunLock::acquire(&lock::default_path(&envelope.root), wait, &envelope.what)?)
    } else {
        None
    };
    let all = suite::suite();
    Ok(match envelope.request {
        Request::Probe => {
            if let Err(e) = bench_harness::program::check_bpf_access() {
                if let bench_harness::error::HarnessError::BpfNotPermitted(why) = &e {
                    // The local advice (sudo) does not apply to a login over ssh.
                    anyhow::bail!(
                        "the kernel there refused bpf() to this login ({why}): log in as root (--host root@HOST) or give it CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN"
                    );
                }
                return Err(e.into());
            }
            let kernel =
                nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
            let missing_tools = ["cmake", "make", "cc", "bison", "flex", "pkg-config"]
                .into_iter()
                .filter(|t| !crate::build::which(t))
                .map(str::to_owned)
                .collect();
            serde_json::to_value(Probe { kernel, missing_tools })?
        }
        Request::Build { sources, dir, sandbox } => {
            serde_json::to_value(crate::build::Build::new(&sources, &dir).confined(sandbox).bfcli_built()?)?
        }
        Request::IsBfcli { path } => serde_json::to_value(Bfcli::new(path).is_ok())?,
        Request::ProbeBfcli { path } => serde_json::to_value(crate::machine::probe_here(&path)?)?,
        Request::Commands { commands, stops, dir, build, sandbox } => {
            let logs = tempfile::tempdir()?;
            let results =
                validation::run_all(&commands, &stops, &dir, &build, logs.path(), "remote", &sandbox, &mut |_, _| {})?;
            let outputs: Vec<CommandOutput> = results
                .into_iter()
                .map(|r| CommandOutput {
                    log_text: std::fs::read_to_string(&r.log).unwrap_or_default(),
                    command: r.command,
                    ok: r.ok,
                    failed_tests: r.failed_tests,
                    tail: r.tail,
                    seconds: r.seconds,
                })
                .collect();
            serde_json::to_value(outputs)?
        }
        Request::Bench { bfcli, cases, sampling, source } => {
            let cases = cases_named(&all, &cases)?;
            let _isolated = isolate(&envelope.isolation, emit)?;
            let refs: Vec<&Case> = cases.iter().collect();
            let mut bench = bench_harness::suite_run::Bench::new(Bfcli::new(bfcli)?, sampling)?;
            let results = bench.run(
                &refs,
                source,
                |_, c| emit(&Event::CaseStarted(c.name.clone())),
                |r| emit(&Event::CaseDone(Box::new(r.clone()))),
            )?;
            serde_json::to_value(results)?
        }
        Request::Compare { base, reference, cases, config } => {
            let cases = cases_named(&all, &cases)?;
            let _isolated = isolate(&envelope.isolation, emit)?;
            let refs: Vec<&Case> = cases.iter().collect();
            let side =
                |(path, info): (PathBuf, SideInfo)| -> Result<(Bfcli, SideInfo)> { Ok((Bfcli::new(path)?, info)) };
            let c = bench_harness::engine::run(side(base)?, side(reference)?, &refs, config, |p| match p {
                Progress::Loading(name) => emit(&Event::Loading(name.to_owned())),
                Progress::Round { case, done, at_most } => emit(&Event::Round { case: case.to_owned(), done, at_most }),
            })?;
            serde_json::to_value(c)?
        }
    })
}
