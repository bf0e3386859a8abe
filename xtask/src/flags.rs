//! The command line: every subcommand's flags, each option declared once.
//!
//! Options several commands share are groups flattened into each command:
//! [`TreeFlags`] (`--sources`), [`BfcliFlags`] (`--bfcli`), [`CaseFlags`]
//! (`--filter`), [`MeasureFlags`] and [`RoundFlags`] (the comparison
//! settings; [`MeasureFlags::config`] turns them into the engine's
//! [`CompareConfig`]), [`OutputFlags`] (`--json-output`, `--markdown`,
//! `--csv`, `--html`, `--template`: every result-producing command; `show`
//! and `bench-selfcheck` take [`JsonFlags`] alone), [`RemoteFlags`]
//! (`--host` and its ssh settings), [`HostFlags`] (the host lock and
//! isolation) and [`CommonFlags`] (`--cache-dir`, `-q`, `--color`). A command's own options
//! are in its struct. Parsing only: what a flag does is in the command
//! (the binary's `commands/`) and the library.

use crate::{agent, exit, history, optimize, remote};
use bench_harness::engine::CompareConfig;
use bench_harness::runner::SamplingConfig;
use bench_harness::stats::paired::MIN_PAIRED_ROUNDS;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Performance tooling for bpfilter's generated BPF programs.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true,
    after_help = "Exit codes (every command): 0 ok; 1 could not run (usage errors too);\n\
        2 a significant change selected by --fail-on; 3 a benchmark or build failure selected by\n\
        --fail-on-benchmark-error; 130 interrupted. See doc/exit-codes.md."
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build one bpfilter tree and benchmark its generated programs.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench --sources ~/bpfilter\n  \
        BPFILTER_SOURCES=~/bpfilter cargo xtask bench --filter prologue,ip4_saddr\n  \
        cargo xtask bench --bfcli ~/bpfilter/build/output/sbin/bfcli --json-output results.json\n  \
        cargo xtask bench --list\n  \
        cargo xtask bench --host root@bench-box --ssh-key ~/.ssh/bench_ed25519   # over ssh\n\n\
        Exit codes: 0 done; 1 could not run or a case failed; 130 interrupted. See doc/exit-codes.md.")]
    Bench(BenchFlags),
    /// Print the programs a revision of bpfilter generates for some cases (bpftool's xlated syntax).
    #[command(after_help = "Examples:\n  \
        cargo xtask show xdp__prologue --sources ~/bpfilter            # the working tree\n  \
        cargo xtask show xdp__prologue tc__prologue --rev HEAD~1\n  \
        cargo xtask show xdp__prologue --bfcli ~/bpfilter/build/output/sbin/bfcli --jited\n  \
        cargo xtask show xdp__prologue --json-output -\n\n\
        Case names: cargo xtask bench --list. Guide: doc/show.md.\n\
        Exit codes: 0 done; 1 could not run (an unknown case, a build error); 130 interrupted.")]
    Show(ShowFlags),
    /// Compare two revisions of bpfilter: paired, interleaved rounds, a verdict per case.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-compare HEAD~1 HEAD --sources ~/bpfilter\n  \
        cargo xtask bench-compare main wip --show-diff      # + the program diff of every case that changed\n  \
        cargo xtask bench-compare main wip --quick --show-diff xdp__prologue\n  \
        cargo xtask bench-compare main wip                 # your uncommitted changes vs main\n  \
        cargo xtask bench-compare HEAD HEAD --filter prologue   # A/A: measures the noise\n  \
        cargo xtask bench-compare --quick @{upstream} HEAD --fail-on regression\n  \
        cargo xtask bench-compare v0.5.0 HEAD --markdown pr-comment.md --json-output cmp.json\n  \
        cargo xtask bench-compare HEAD~1 HEAD --host root@bench-box:2222   # on a benchmark host, over ssh\n\n\
        Exit codes: 0 done; 1 could not run (usage errors too); 2 --fail-on triggered;\n\
        3 --fail-on-benchmark-error triggered; 130 interrupted. See doc/exit-codes.md.")]
    BenchCompare(CompareFlags),
    /// Benchmark every commit of a range, find where performance changed, write an HTML report.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-history --since v0.5.0 --until HEAD --sources ~/bpfilter\n  \
        cargo xtask bench-history --since HEAD~10 --until wip --filter prologue\n  \
        cargo xtask bench-history --since HEAD~5 --until HEAD --retry failed\n  \
        cargo xtask bench-history --since main~20 --until main --fail-on regression\n  \
        cargo xtask bench-history --since HEAD~10 --until HEAD --host bench-box   # an ~/.ssh/config alias\n  \
        cargo xtask bench-history --since main~200 --shard 1/2 --cache-dir /cache/s1   # this host's share\n  \
        cargo xtask bench-history --merge /cache/s1 /cache/s2      # one report from the shards' caches\n  \
        cargo xtask bench-history --since main~200 --host bench-a --host bench-b   # a shard per host, merged\n\n\
        Results are cached per (commit, host, harness version, suite): a second run builds nothing.\n\
        Exit codes: 0 done; 1 could not run (usage errors too); 2 --fail-on triggered;\n\
        3 --fail-on-benchmark-error triggered; 130 interrupted. See doc/exit-codes.md.")]
    BenchHistory(HistoryFlags),
    /// Measure the statistics on this host: A/A false-verdict rate and the smallest slowdown detected.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-selfcheck --sources ~/bpfilter            # A/A on bpfilter + power check\n  \
        cargo xtask bench-selfcheck --bfcli ./bfcli --aa-runs 10 --filter prologue\n  \
        cargo xtask bench-selfcheck --power-only --quick\n\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted. See doc/exit-codes.md.")]
    BenchSelfcheck(SelfcheckFlags),
    /// Let a model propose codegen optimizations; keep only those measured faster.
    #[command(after_help = "Examples:\n  \
        ANTHROPIC_API_KEY=... cargo xtask optimize --sources ~/bpfilter --iterations 5 --budget-usd 10\n  \
        cargo xtask optimize --hint 'look at the IPv6 prologue' --effort high --model claude-opus-4-8\n  \
        cargo xtask optimize --proposal-model claude-opus-4-8 --impl-model claude-sonnet-4-6\n  \
        cargo xtask optimize --validate 'build:make -C {build}' --validate 'test:make -C {build} test'\n  \
        cargo xtask optimize --resume 20261125-221500          # continue after Ctrl-C or a crash\n  \
        cargo xtask optimize --backend openai --api-base-url http://127.0.0.1:8080 --model qwen\n  \
        cargo xtask optimize --agent-command ./agent.sh        # its contract: doc/optimize.md\n  \
        cargo xtask optimize --serve                           # follow it live in a browser (127.0.0.1)\n  \
        cargo xtask optimize --host root@bench-box             # build, test and measure there; the model stays here\n\n\
        The checkout must be clean. The run works in its own worktree on branch optimize/<run-id>; merge that\n\
        branch to keep the wins.\n\
        Everything is recorded in <cache>/optimize/<run-id>/history.json and report.html.\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted (then --resume). See doc/exit-codes.md.")]
    Optimize(Box<OptimizeFlags>),
    /// Serve the optimize runs of one checkout in a browser (loopback only): list, live view, start, stop.
    #[command(after_help = "Examples:\n  cargo xtask optimize-dashboard --sources ~/bpfilter\n  \
        cargo xtask optimize-dashboard --addr 127.0.0.1:8080\n\n\
        Prints the address and the token that starting and stopping runs need. Runs last until stopped;\n\
        Ctrl-C interrupts the runs it started (resume them with optimize --resume) and exits.\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted. See doc/optimize-dashboard.md.")]
    OptimizeDashboard(OptimizeDashboardFlags),
    /// Check everything a run needs; print the command that fixes each problem.
    #[command(
        after_help = "Examples:\n  cargo xtask doctor\n  cargo xtask doctor --sources ~/bpfilter\n\nExit code 1 when a required check fails (✘); `!` lines are advice. See doc/exit-codes.md."
    )]
    Doctor(DoctorFlags),
    /// Install a git pre-push hook in the bpfilter checkout that blocks pushes with a significant regression.
    #[command(
        after_help = "Examples:\n  cargo xtask install-hook --sources ~/bpfilter\n  cargo xtask install-hook --uninstall\n\n\
        The hook runs `cargo xtask bench-compare --quick @{upstream} HEAD --fail-on regression`.\n\
        Bypass it once with `git push --no-verify`. A hook bfperf did not install is never overwritten.\n\
        Exit codes: 0 done; 1 could not run. See doc/exit-codes.md."
    )]
    InstallHook(HookFlags),
    /// The whole product without a bpfilter checkout: minifilter, bench-compare, two optimize attempts.
    #[command(after_help = "Examples:\n  cargo xtask demo\n\n\
        Builds the bundled minifilter test double in a temporary repository with two commits (the second one\n\
        slower), compares them with the real bench-compare, then runs two optimize attempts against a local\n\
        scripted model server (no API key or network needed): one is kept, one is measured slower and dropped.\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted. See doc/exit-codes.md.")]
    Demo(DemoFlags),
    /// The remote side of --host (run by bfperf over ssh; not for direct use).
    #[command(hide = true)]
    Harness,
    /// Run a command in optimize's sandbox (run by bfperf itself; not for direct use).
    #[command(hide = true)]
    SandboxExec(crate::sandbox::ExecArgs),
    /// Build an optimize attempt's tree and show a case's program (`$BFPERF_SHOW`; not for direct use).
    #[command(hide = true)]
    OptimizeShow(crate::optimize::evidence::ShowArgs),
}

impl Command {
    /// The flags every user-facing command shares; `None` for the internal ones.
    pub fn common(&self) -> Option<&CommonFlags> {
        Some(match self {
            Command::Bench(f) => &f.common,
            Command::BenchCompare(f) => &f.common,
            Command::Show(f) => &f.common,
            Command::BenchHistory(f) => &f.common,
            Command::BenchSelfcheck(f) => &f.common,
            Command::Optimize(f) => &f.common,
            Command::OptimizeDashboard(f) => &f.common,
            Command::Doctor(f) => &f.common,
            Command::InstallHook(f) => &f.common,
            Command::Demo(f) => &f.common,
            Command::Harness | Command::SandboxExec(_) | Command::OptimizeShow(_) => return None,
        })
    }

    /// Parse one command line (without the program name) as `cargo xtask`
    /// does: for code that runs a command itself (`demo`), so it takes the
    /// same path, defaults and checks as a user's command line.
    pub fn parse_from<I, T>(args: I) -> Result<Command, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("cargo xtask")).chain(args.into_iter().map(Into::into));
        Ok(Cli::try_parse_from(argv)?.command)
    }
}

// ---- Shared groups ----

/// `--sources`: the bpfilter checkout.
#[derive(Args, Debug, Clone, Default)]
pub struct TreeFlags {
    /// The bpfilter checkout [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    pub sources: Option<PathBuf>,
}

/// `--bfcli`: a prebuilt bfcli instead of building `--sources`.
#[derive(Args, Debug, Clone, Default)]
pub struct BfcliFlags {
    /// Use this prebuilt bfcli instead of building the sources.
    #[arg(long, value_name = "PATH", conflicts_with = "sources")]
    pub bfcli: Option<PathBuf>,
}

/// `--filter`: which cases of the suite run.
#[derive(Args, Debug, Clone, Default)]
pub struct CaseFlags {
    /// Only cases whose name contains one of these comma-separated substrings [default: all;
    /// comparisons leave out the 2^20-element chain load].
    #[arg(long, short, value_name = "PATTERNS")]
    pub filter: Option<String>,
}

/// `--quick`: the quick comparison settings.
#[derive(Args, Debug, Clone, Default)]
pub struct QuickFlags {
    /// Fewer, shorter rounds (pre-push mode); same statistics, wider intervals.
    #[arg(long)]
    pub quick: bool,
}

impl QuickFlags {
    /// `defaults`, or [`CompareConfig::quick`] with `--quick`.
    pub fn base(&self, defaults: CompareConfig) -> CompareConfig {
        if self.quick {
            CompareConfig::quick()
        } else {
            defaults
        }
    }
}

/// The comparison settings every measuring command takes.
#[derive(Args, Debug, Clone)]
pub struct MeasureFlags {
    #[command(flatten)]
    pub quick: QuickFlags,
    /// Smallest |Δ| in % counted as a change (faster/slower).
    #[arg(long, default_value_t = CompareConfig::default().threshold_pct, value_name = "PCT")]
    pub threshold: f64,
    /// Measuring budget of one comparison (bench-history: of each pair of consecutive commits),
    /// in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub time_budget: Option<f64>,
    /// Time cases whose BASE and REF programs are identical too (by default they are
    /// "same program", untimed, and their budget goes to the others).
    #[arg(long)]
    pub measure_identical: bool,
}

/// The round settings only `bench-compare` exposes.
#[derive(Args, Debug, Clone, Default)]
pub struct RoundFlags {
    /// Stop adding rounds to a case once its interval is narrower than this, in percentage points.
    #[arg(long, value_name = "PCT")]
    pub target_ci: Option<f64>,
    /// Rounds every case gets (at least 6; raised to what an interval at the per-look level needs).
    #[arg(long, value_name = "N")]
    pub min_rounds: Option<usize>,
    /// Rounds no case goes beyond.
    #[arg(long, value_name = "N")]
    pub max_rounds: Option<usize>,
}

impl MeasureFlags {
    /// The engine's settings: `defaults` (the command's own; [`CompareConfig::quick`]
    /// with `--quick`), then each flag given, then `rounds` where the command has them.
    pub fn config(&self, defaults: CompareConfig, rounds: Option<&RoundFlags>) -> anyhow::Result<CompareConfig> {
        let mut config = self.quick.base(defaults);
        config.threshold_pct = self.threshold;
        config.measure_identical |= self.measure_identical;
        if let Some(b) = self.time_budget {
            config.time_budget_s = b;
        }
        let Some(rounds) = rounds else { return Ok(config) };
        if let Some(t) = rounds.target_ci {
            config.target_ci_pct = t;
        }
        if let Some(n) = rounds.min_rounds {
            anyhow::ensure!(
                n >= MIN_PAIRED_ROUNDS,
                "--min-rounds {n}: at least {MIN_PAIRED_ROUNDS} rounds are needed for an interval"
            );
            config.min_rounds = n;
            config.max_rounds = config.max_rounds.max(n);
        }
        if let Some(n) = rounds.max_rounds {
            config.max_rounds = n.max(config.min_rounds);
        }
        Ok(config)
    }
}

/// `--json-output`.
#[derive(Args, Debug, Clone, Default)]
pub struct JsonFlags {
    /// Write the outcome as JSON (schemas: doc/results-schema.md); `-`: to stdout, the table then on stderr.
    #[arg(long, value_name = "FILE")]
    pub json_output: Option<PathBuf>,
}

/// The outputs of a command that produces a result (`bench`, `bench-compare`,
/// `bench-history`, `optimize`): every format, each a PATH or `-` for stdout,
/// through the output layer ([`crate::output::Outputs`]).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputFlags {
    #[command(flatten)]
    pub json: JsonFlags,
    /// Write the result as Markdown, for a pull-request comment (`-`: stdout); it is also
    /// appended to $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the result as CSV, one row per case (and commit, or attempt), with a header row
    /// (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the HTML report here (`-`: stdout) [default: bench-compare, bench-history and
    /// optimize write one under the cache and print its path; bench only when asked].
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub templates: TemplateFlags,
}

impl OutputFlags {
    /// The outputs to write: these flags, with `json` and `html` as the
    /// command's default files for the outputs it always writes.
    pub fn outputs(&self, json: Option<PathBuf>, html: Option<PathBuf>) -> crate::output::Outputs {
        crate::output::Outputs {
            json: self.json.json_output.clone().or(json),
            markdown: self.markdown.clone(),
            csv: self.csv.clone(),
            html: self.html.clone().or(html),
            templates: self.templates.template.clone(),
            ..crate::output::Outputs::default()
        }
    }

    /// The flags as they name the outputs, for [`crate::output::Human::new`].
    pub fn named(&self) -> [(&'static str, Option<&std::path::Path>); 4] {
        [
            ("--json-output", self.json.json_output.as_deref()),
            ("--markdown", self.markdown.as_deref()),
            ("--csv", self.csv.as_deref()),
            ("--html", self.html.as_deref()),
        ]
    }
}

/// `--fail-on` and `--fail-on-benchmark-error`: which outcomes fail the
/// command, with exit code 2 or 3 (doc/exit-codes.md). `bench-compare` and
/// `bench-history`.
#[derive(Args, Debug, Clone, Default)]
pub struct FailFlags {
    /// Exit with 2 when a case changed significantly (at some commit, in a history): slower
    /// (regression), faster (improvement) or either (any).
    // `--fail-on-significant-change better|worse|any`: bench-history's old spelling, kept (hidden)
    // for existing CI recipes.
    #[arg(long, value_enum, value_name = "WHAT", alias = "fail-on-significant-change")]
    pub fail_on: Option<exit::FailOn>,
    /// Exit with 3 when a case failed or was unsupported on either side (in a history: or a
    /// commit failed to build).
    // `--fail-on-any-commit-failure`: bench-history's old spelling (hidden).
    #[arg(long, alias = "fail-on-any-commit-failure")]
    pub fail_on_benchmark_error: bool,
}

/// `--template DIR`: HTML templates replacing the built-in ones.
#[derive(Args, Debug, Clone, Default)]
pub struct TemplateFlags {
    /// Render the HTML report with the templates of DIR: each file named like a built-in one
    /// (base.html, style.css, run.html, compare.html, history.html, optimize.html) replaces it.
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
}

/// `bench`'s sampling settings.
#[derive(Args, Debug, Clone)]
pub struct SamplingFlags {
    /// Samples per runtime case.
    #[arg(long, default_value_t = SamplingConfig::default().samples)]
    pub samples: usize,
    /// Target duration of one sample (one BPF_PROG_TEST_RUN call), in ms.
    #[arg(long, default_value_t = SamplingConfig::default().sample_ms)]
    pub sample_ms: f64,
}

impl SamplingFlags {
    /// The runner's settings.
    pub fn config(&self) -> SamplingConfig {
        SamplingConfig { samples: self.samples, sample_ms: self.sample_ms, ..SamplingConfig::default() }
    }
}

/// This host's lock and measuring isolation.
#[derive(Args, Debug, Clone, Default)]
pub struct HostFlags {
    /// Pin the measuring thread to this CPU while it measures (builds are not pinned).
    #[arg(long, value_name = "CPU")]
    pub cpu_pin: Option<usize>,
    /// Measure under SCHED_FIFO so nothing preempts a sample (the measuring thread only).
    #[arg(long)]
    pub no_preempt: bool,
    /// Bind CPUs and memory to this NUMA node.
    #[arg(long, value_name = "NODE")]
    pub bind_node: Option<usize>,
    /// Run inside this systemd slice (transient scope via systemd-run).
    #[arg(long, value_name = "NAME")]
    pub slice: Option<String>,
    /// Fail at once if another benchmark runs on this host, instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

/// Where to run: this machine, or a benchmark host over ssh.
#[derive(Args, Debug, Clone)]
pub struct RemoteFlags {
    /// Build and measure on this host over ssh: [ssh://][USER@]HOST[:PORT] or an ~/.ssh/config alias.
    /// bench-history takes it repeated: host k of N measures shard k/N, then the shards are merged.
    #[arg(long, value_name = "USER@HOST")]
    pub host: Vec<String>,
    /// The private key to log in to --host with (IdentitiesOnly: the agent's keys are not offered).
    #[arg(long, value_name = "PATH", requires = "host")]
    pub ssh_key: Option<PathBuf>,
    /// An extra ssh option for --host, as NAME=VALUE (repeatable), e.g. ProxyJump=gw or UserKnownHostsFile=FILE.
    #[arg(long, value_name = "NAME=VALUE", requires = "host")]
    pub ssh_option: Vec<String>,
    /// The directory bfperf keeps on --host (relative: to the login's home there).
    #[arg(long, value_name = "DIR", default_value = remote::DEFAULT_REMOTE_DIR, requires = "host")]
    pub remote_dir: String,
}

/// Options of every command.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonFlags {
    /// Where builds, worktrees and cached results live [default: $BFPERF_CACHE or ~/.cache/bfperf].
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// No progress and no informational lines on stderr; errors and warnings still print.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colors in the tables on stdout: `auto` when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = crate::output::ColorWhen::Auto, global = true)]
    pub color: crate::output::ColorWhen,
}

// ---- The commands ----

/// `--rule` and its settings: a rule given on the command line, measured as
/// a case of its own (`adhoc__<hook>`).
#[derive(Args, Debug, Clone, Default)]
pub struct AdhocFlags {
    /// Measure this rule, in bfcli's rule syntax (matchers, `counter`/`log`, verdict), as a case of
    /// its own named adhoc__<hook>; with --filter, after the cases it selects.
    #[arg(long, value_name = "RULE")]
    pub rule: Option<String>,
    /// The hook of the --rule chain: xdp, tc, nf or cgroup_skb [default: xdp].
    #[arg(long, value_name = "HOOK", requires = "rule", value_parser = crate::adhoc::parse_hook)]
    pub hook: Option<bench_harness::flavor::Hook>,
    /// The policy of the --rule chain: ACCEPT or DROP [default: ACCEPT].
    #[arg(long, value_name = "VERDICT", requires = "rule", value_parser = crate::adhoc::parse_verdict)]
    pub policy: Option<bench_harness::flavor::Verdict>,
    /// The packet the --rule chain runs on (a suite packet, see doc/bench.md) [default: local_ip4_icmp].
    #[arg(long, value_name = "NAME", requires = "rule", value_parser = crate::adhoc::parse_packet)]
    pub packet: Option<bench_harness::packet::PacketKind>,
    /// The verdict the --rule chain must return for the packet [default: the policy].
    #[arg(long, value_name = "VERDICT", requires = "rule", value_parser = crate::adhoc::parse_verdict)]
    pub expect: Option<bench_harness::flavor::Verdict>,
}

/// `cargo xtask bench`.
#[derive(Args, Debug)]
pub struct BenchFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub bfcli: BfcliFlags,
    #[command(flatten)]
    pub cases: CaseFlags,
    #[command(flatten)]
    pub adhoc: AdhocFlags,
    /// List the suite's cases (with --filter: the selected ones) and exit.
    #[arg(long, short)]
    pub list: bool,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub sampling: SamplingFlags,
    #[command(flatten)]
    pub remote: RemoteFlags,
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask bench-compare`.
#[derive(Args, Debug)]
pub struct CompareFlags {
    /// The baseline revision (ref, SHA, branch, tag).
    pub base: String,
    /// The revision to judge (ref, SHA, branch, tag, or `wip` for uncommitted changes).
    pub reference: String,
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub cases: CaseFlags,
    #[command(flatten)]
    pub adhoc: AdhocFlags,
    #[command(flatten)]
    pub measure: MeasureFlags,
    #[command(flatten)]
    pub rounds: RoundFlags,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub fail: FailFlags,
    /// Add the diff of BASE's and REF's program listings of these cases (after BASE REF);
    /// without names, of every case whose programs differ.
    #[arg(long, value_name = "CASE", num_args = 0..)]
    pub show_diff: Option<Vec<String>>,
    #[command(flatten)]
    pub remote: RemoteFlags,
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask show`.
#[derive(Args, Debug)]
pub struct ShowFlags {
    /// The cases whose programs to print (names as `bench --list` prints them).
    #[arg(value_name = "CASE", required = true)]
    pub cases: Vec<String>,
    /// The revision whose bfcli generates them (ref, SHA, branch, tag, or `wip`: the working tree).
    #[arg(long, value_name = "REV", default_value = "wip", conflicts_with = "bfcli")]
    pub rev: String,
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub bfcli: BfcliFlags,
    /// Add the x86-64 machine code the JIT made, under the instructions it came from where the
    /// kernel gives line info.
    #[arg(long)]
    pub jited: bool,
    #[command(flatten)]
    pub json: JsonFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask bench-history`.
#[derive(Args, Debug)]
pub struct HistoryFlags {
    /// Oldest commit of the range (included).
    #[arg(long, value_name = "REF", required_unless_present = "merge")]
    pub since: Option<String>,
    /// Newest commit of the range (included), or `wip` for the uncommitted changes on top of HEAD.
    #[arg(long, value_name = "REF|wip", default_value = "HEAD")]
    pub until: String,
    /// Also benchmark this commit (repeatable).
    #[arg(long, value_name = "REF")]
    pub include: Vec<String>,
    /// Measure cached commits again: `failed`, `all`, or one REF.
    #[arg(long, value_name = "failed|all|REF")]
    pub retry: Option<history::Retry>,
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub cases: CaseFlags,
    #[command(flatten)]
    pub measure: MeasureFlags,
    /// Measure only this shard's pairs (1 ≤ I ≤ N), chosen by a hash of each pair's commits;
    /// leaves a record in the cache for --merge.
    #[arg(long, value_name = "I/N", value_parser = history::shard::parse_shard, conflicts_with = "merge")]
    pub shard: Option<history::shard::Shard>,
    /// Build the report from these shards' cache directories, measuring and building nothing.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["since", "include", "retry", "all_parents", "host"])]
    pub merge: Vec<PathBuf>,
    /// Walk the commits of merged branches too, not only first parents (oldest first, parents
    /// before children).
    #[arg(long)]
    pub all_parents: bool,
    /// False discovery rate of the change list, over every case at every commit (Benjamini–Hochberg).
    #[arg(long, value_name = "RATE", default_value_t = history::DEFAULT_FDR, value_parser = history::parse_fdr)]
    pub fdr: f64,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub fail: FailFlags,
    /// Exit with 3 when the newest commit failed to build (old flag, kept for existing CI recipes).
    #[arg(long, hide = true)]
    pub fail_on_last_commit_failure: bool,
    #[command(flatten)]
    pub remote: RemoteFlags,
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask bench-selfcheck`.
#[derive(Args, Debug)]
pub struct SelfcheckFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub bfcli: BfcliFlags,
    #[command(flatten)]
    pub cases: CaseFlags,
    /// A/A comparisons to run.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub aa_runs: usize,
    /// Comparisons per slowdown in the power checks.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub power_reps: usize,
    /// Slowdowns, in %, injected into REF's samples of A/A comparisons of the build: the
    /// per-case power curve (comma-separated; not with --power-only).
    #[arg(long, value_name = "PCTS", value_delimiter = ',', default_values_t = [1.0, 2.0, 3.0, 5.0])]
    pub inject: Vec<f64>,
    /// Skip the A/A part (no bpfilter needed).
    #[arg(long)]
    pub power_only: bool,
    #[command(flatten)]
    pub quick: QuickFlags,
    #[command(flatten)]
    pub json: JsonFlags,
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask optimize`.
#[derive(Args, Debug)]
pub struct OptimizeFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    /// Attempts to make.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub iterations: usize,
    /// A hint for the proposals (repeatable: each is one line of the prompt).
    #[arg(long, value_name = "TEXT")]
    pub hint: Vec<String>,
    /// Model id of both steps [default: claude-sonnet-4-6]; --proposal-model and --impl-model
    /// override it for one step.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Model id of the proposal (planning) step [default: --model's].
    #[arg(long, value_name = "MODEL")]
    pub proposal_model: Option<String>,
    /// Model id of the implementation step [default: --model's].
    #[arg(long, value_name = "MODEL")]
    pub impl_model: Option<String>,
    /// Thinking effort: low, medium, high, max (a thinking budget or an effort level,
    /// whichever the model's API takes; doc/optimize.md).
    #[arg(long, default_value = "medium", value_name = "EFFORT")]
    pub effort: agent::Effort,
    /// Stop the run before a model call would exceed this many USD (a model bfperf has no
    /// price for needs --price-per-mtok).
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// The price of the run's models, in USD per million input and output tokens (e.g. 3,15;
    /// 0,0 for a free local model), instead of bfperf's table.
    #[arg(long, value_name = "IN,OUT", value_parser = agent::pricing::Price::parse_per_mtok)]
    pub price_per_mtok: Option<agent::pricing::Price>,
    /// The directory the model may change, relative to the tree.
    #[arg(long, default_value = "src/libbpfilter/cgen", value_name = "DIR")]
    pub scope: String,
    /// What counts as better.
    #[arg(long, value_enum, default_value = "runtime")]
    pub objective: optimize::Objective,
    /// Largest significant per-case slowdown accepted, in %.
    #[arg(long, default_value_t = 2.0, value_name = "PCT")]
    pub max_regression: f64,
    /// Continue the run with this id.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Id of a new run: up to 64 letters, digits, '.', '_', '-' (its branch is optimize/<RUN_ID>) [default: the time].
    #[arg(long, value_name = "RUN_ID", conflicts_with = "resume")]
    pub run_id: Option<String>,
    /// Fix rounds after a build or test failure.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_fix_attempts: usize,
    /// Model API base URL [default: $ANTHROPIC_BASE_URL or https://api.anthropic.com].
    #[arg(long, value_name = "URL")]
    pub api_base_url: Option<String>,
    /// `anthropic` (Messages API) or `openai` (chat-completions, e.g. a local model).
    #[arg(long, default_value = "anthropic", value_name = "BACKEND")]
    pub backend: String,
    /// Use an external coding agent run in the worktree instead (scope still enforced on its diff).
    #[arg(long, value_name = "CMD")]
    pub agent_command: Option<String>,
    /// Validation command ROLE:CMD, repeatable; ROLE is build, format or test (a command without
    /// one is a build command); {build}, {source} and {jobs} are expanded. Format commands run
    /// first [default: bpfilter's: format:fixstyle, build:make, build:test_bin, test:make test].
    #[arg(long, value_name = "ROLE:CMD")]
    pub validate: Vec<crate::validation::Step>,
    /// Keep attempts that were only built: allow a validation without a test command.
    #[arg(long)]
    pub no_tests: bool,
    #[command(flatten)]
    pub cases: CaseFlags,
    /// Also judge cases flagged use_set, use_log or userspace_only.
    #[arg(long)]
    pub include_flagged: bool,
    /// Model requests allowed per conversation.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub max_turns: usize,
    #[command(flatten)]
    pub measure: MeasureFlags,
    /// Follow the run live in a browser: a read-only dashboard on this loopback address
    /// [default when given without a value: 127.0.0.1 and a free port]; its stop control needs
    /// the token printed in the terminal.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = optimize::serve::DEFAULT_ADDR,
          value_parser = optimize::serve::parse_addr)]
    pub serve: Option<std::net::SocketAddr>,
    /// Also remove this environment variable from the validation commands' environment
    /// (repeatable; keys, tokens, secrets and model settings are always removed).
    #[arg(long, value_name = "NAME")]
    pub secret_env: Vec<String>,
    /// Show the model's whole thinking and text live, not only their first line.
    #[arg(long, short)]
    pub verbose: bool,
    /// DANGEROUS: run validation commands (model-written code, as root) without the sandbox:
    /// with network access and a writable file system. For hosts that refuse namespaces.
    #[arg(long)]
    pub no_sandbox: bool,
    #[command(flatten)]
    pub output: OutputFlags,
    #[command(flatten)]
    pub remote: RemoteFlags,
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask optimize-dashboard`.
#[derive(Args, Debug)]
pub struct OptimizeDashboardFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    /// The loopback address to serve on [default: 127.0.0.1 and a free port].
    #[arg(long, value_name = "ADDR", default_value = optimize::serve::DEFAULT_ADDR,
          value_parser = optimize::serve::parse_addr)]
    pub addr: std::net::SocketAddr,
    #[command(flatten)]
    pub runs: DashboardRunFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// What every run `optimize-dashboard` starts is given (never set from the page).
#[derive(Args, Debug, Clone, Default)]
pub struct DashboardRunFlags {
    /// Every run started from the page uses this external agent (never set from the page).
    #[arg(long, value_name = "CMD")]
    pub agent_command: Option<String>,
    /// Every run started from the page uses this model API base URL (never set from the page).
    #[arg(long, value_name = "URL")]
    pub api_base_url: Option<String>,
    /// One more argument for every run started from the page, repeatable
    /// (e.g. --run-arg=--validate --run-arg='make -C {build}'); never set from the page.
    #[arg(long = "run-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
}

/// `cargo xtask doctor`.
#[derive(Args, Debug)]
pub struct DoctorFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask install-hook`.
#[derive(Args, Debug)]
pub struct HookFlags {
    #[command(flatten)]
    pub tree: TreeFlags,
    /// Remove the hook (only if bfperf installed it).
    #[arg(long)]
    pub uninstall: bool,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `cargo xtask demo`.
#[derive(Args, Debug)]
pub struct DemoFlags {
    #[command(flatten)]
    pub host: HostFlags,
    #[command(flatten)]
    pub common: CommonFlags,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())).unwrap().command
    }

    #[test]
    fn one_function_makes_each_command_s_comparison_settings() {
        let Command::BenchCompare(c) = parse(&["bench-compare", "A", "B", "--min-rounds", "20", "--threshold", "2"])
        else {
            panic!()
        };
        let config = c.measure.config(CompareConfig::default(), Some(&c.rounds)).unwrap();
        assert_eq!((config.min_rounds, config.max_rounds, config.threshold_pct), (20, 80, 2.0));
        let Command::BenchCompare(c) = parse(&["bench-compare", "A", "B", "--min-rounds", "2"]) else { panic!() };
        assert!(c.measure.config(CompareConfig::default(), Some(&c.rounds)).is_err(), "too few rounds");
        // bench-history's own default budget applies unless --quick or --time-budget says otherwise.
        let history = CompareConfig { time_budget_s: 60.0, ..CompareConfig::default() };
        let Command::BenchHistory(h) = parse(&["bench-history", "--since", "X"]) else { panic!() };
        assert_eq!(h.measure.config(history, None).unwrap().time_budget_s, 60.0);
        let Command::BenchHistory(h) = parse(&["bench-history", "--since", "X", "--quick"]) else { panic!() };
        assert_eq!(h.measure.config(history, None).unwrap(), CompareConfig::quick());
        let Command::BenchHistory(h) = parse(&["bench-history", "--since", "X", "--time-budget", "5"]) else {
            panic!()
        };
        assert_eq!(h.measure.config(history, None).unwrap().time_budget_s, 5.0);
    }

    #[test]
    fn each_command_keeps_the_flags_it_accepts() {
        let fails = |args: &[&str]| Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())).is_err();
        assert!(fails(&["bench-history", "--since", "X", "--min-rounds", "8"]), "rounds are bench-compare's");
        assert!(fails(&["optimize", "--bfcli", "/x"]), "--bfcli is bench's and bench-selfcheck's");
        assert!(fails(&["bench-selfcheck", "--threshold", "2"]), "selfcheck takes --quick only");
        assert!(fails(&["bench", "--sources", "/a", "--bfcli", "/b"]), "--bfcli conflicts with --sources");
        assert!(!fails(&["bench-history", "--since", "X", "--fail-on-significant-change", "worse"]));
    }
}
