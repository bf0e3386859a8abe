//! `cargo xtask`: bfperf's command line. Thin: parsing, dispatch, printing;
//! the work is in the library modules.

use anyhow::{Context as _, Result};
use bench_harness::compare::MIN_PAIRED_ROUNDS;
use bench_harness::interleave::CompareConfig;
use bench_harness::results::write_atomic;
use bench_harness::{results::Status, runner::SamplingConfig, suite};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use xtask::machine::Machine;
use xtask::remote::{self, HostSpec, Remote, RemoteOptions, SshOptions};
use xtask::{bench, compare, exit, history, host, lock, optimize, report, selfcheck, text, workspace};

/// Performance tooling for bpfilter's generated BPF programs.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    version,
    propagate_version = true,
    after_help = "Exit codes (every command): 0 ok; 1 could not run (usage errors too);\n\
        2 a significant change selected by --fail-on; 3 a benchmark or build failure selected by\n\
        --fail-on-benchmark-error; 130 interrupted. See doc/exit-codes.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build one bpfilter tree and benchmark its generated programs.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench --sources ~/bpfilter\n  \
        BPFILTER_SOURCES=~/bpfilter cargo xtask bench --filter prologue,ip4_saddr\n  \
        cargo xtask bench --bfcli ~/bpfilter/build/output/sbin/bfcli --json-output results.json\n  \
        cargo xtask bench --list\n  \
        cargo xtask bench --host root@bench-box --ssh-key ~/.ssh/bench_ed25519   # over ssh\n\n\
        Exit codes: 0 done; 1 could not run or a case failed; 130 interrupted. See doc/exit-codes.md.")]
    Bench(BenchArgs),
    /// Compare two revisions of bpfilter: paired, interleaved rounds, a verdict per case.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-compare HEAD~1 HEAD --sources ~/bpfilter\n  \
        cargo xtask bench-compare main wip                 # your uncommitted changes vs main\n  \
        cargo xtask bench-compare HEAD HEAD --filter prologue   # A/A: measures the noise\n  \
        cargo xtask bench-compare --quick @{upstream} HEAD --fail-on regression\n  \
        cargo xtask bench-compare v0.5.0 HEAD --markdown pr-comment.md --json-output cmp.json\n  \
        cargo xtask bench-compare HEAD~1 HEAD --host root@bench-box:2222   # on a benchmark host, over ssh\n\n\
        Exit codes: 0 done; 1 could not run (usage errors too); 2 --fail-on triggered;\n\
        3 --fail-on-benchmark-error triggered; 130 interrupted. See doc/exit-codes.md.")]
    BenchCompare(CompareArgs),
    /// Benchmark every commit of a range, find where performance changed, write an HTML report.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-history --since v0.5.0 --until HEAD --sources ~/bpfilter\n  \
        cargo xtask bench-history --since HEAD~10 --until wip --filter prologue\n  \
        cargo xtask bench-history --since HEAD~5 --until HEAD --retry failed\n  \
        cargo xtask bench-history --since main~20 --until main --fail-on regression\n  \
        cargo xtask bench-history --since HEAD~10 --until HEAD --host bench-box   # an ~/.ssh/config alias\n\n\
        Results are cached per (commit, host, harness version, suite): a second run builds nothing.\n\
        Exit codes: 0 done; 1 could not run (usage errors too); 2 --fail-on triggered;\n\
        3 --fail-on-benchmark-error triggered; 130 interrupted. See doc/exit-codes.md.")]
    BenchHistory(HistoryArgs),
    /// Measure the statistics on this host: A/A false-verdict rate and the smallest slowdown detected.
    #[command(after_help = "Examples:\n  \
        cargo xtask bench-selfcheck --sources ~/bpfilter            # A/A on bpfilter + power check\n  \
        cargo xtask bench-selfcheck --bfcli ./bfcli --aa-runs 10 --filter prologue\n  \
        cargo xtask bench-selfcheck --power-only --quick\n\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted. See doc/exit-codes.md.")]
    BenchSelfcheck(SelfcheckArgs),
    /// Let a model propose codegen optimizations; keep only those measured faster.
    #[command(after_help = "Examples:\n  \
        ANTHROPIC_API_KEY=... cargo xtask optimize --sources ~/bpfilter --iterations 5 --budget-usd 10\n  \
        cargo xtask optimize --hint 'look at the IPv6 prologue' --effort high --model claude-opus-4-5\n  \
        cargo xtask optimize --resume 20261125-221500          # continue after Ctrl-C or a crash\n  \
        cargo xtask optimize --backend openai --api-base-url http://127.0.0.1:8080 --model qwen\n  \
        cargo xtask optimize --agent-command 'my-agent --prompt-file \"$BFPERF_PROMPT_FILE\"'\n  \
        cargo xtask optimize --serve                           # follow it live in a browser (127.0.0.1)\n  \
        cargo xtask optimize --host root@bench-box             # build, test and measure there; the model stays here\n\n\
        The run works in its own worktree on branch optimize/<run-id>; merge that branch to keep the wins.\n\
        Everything is recorded in <cache>/optimize/<run-id>/history.json and report.html.\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted (then --resume). See doc/exit-codes.md.")]
    Optimize(OptimizeArgs),
    /// Check everything a run needs; print the command that fixes each problem.
    #[command(
        after_help = "Examples:\n  cargo xtask doctor\n  cargo xtask doctor --sources ~/bpfilter\n\nExit code 1 when a required check fails (✘); `!` lines are advice. See doc/exit-codes.md."
    )]
    Doctor(DoctorArgs),
    /// Install a git pre-push hook in the bpfilter checkout that blocks pushes with a significant regression.
    #[command(
        after_help = "Examples:\n  cargo xtask install-hook --sources ~/bpfilter\n  cargo xtask install-hook --uninstall\n\n\
        The hook runs `cargo xtask bench-compare --quick @{upstream} HEAD --fail-on regression`.\n\
        Bypass it once with `git push --no-verify`. A hook bfperf did not install is never overwritten.\n\
        Exit codes: 0 done; 1 could not run. See doc/exit-codes.md."
    )]
    InstallHook(HookArgs),
    /// The whole product without a bpfilter checkout: minifilter, bench-compare, two optimize attempts.
    #[command(after_help = "Examples:\n  cargo xtask demo\n\n\
        Builds the bundled minifilter test double in a temporary repository with two commits (the second one\n\
        slower), compares them with the real bench-compare, then runs two optimize attempts against a local\n\
        scripted model server (no API key or network needed): one is kept, one is measured slower and dropped.\n\
        Exit codes: 0 done; 1 could not run; 130 interrupted. See doc/exit-codes.md.")]
    Demo(DemoArgs),
    /// The remote side of --host (run by bfperf over ssh; not for direct use).
    #[command(hide = true)]
    Harness,
    /// Run a command in optimize's sandbox (run by bfperf itself; not for direct use).
    #[command(hide = true)]
    SandboxExec(xtask::sandbox::ExecArgs),
}

#[derive(Args, Debug)]
struct DemoArgs {
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct HookArgs {
    /// The bpfilter checkout [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Remove the hook (only if bfperf installed it).
    #[arg(long)]
    uninstall: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct DoctorArgs {
    /// The bpfilter checkout to check [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct OptimizeArgs {
    /// The bpfilter checkout (must be clean) [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Attempts to make.
    #[arg(long, default_value_t = 5, value_name = "N")]
    iterations: usize,
    /// A hint for the proposals.
    #[arg(long, value_name = "TEXT")]
    hint: Option<String>,
    /// Model id.
    #[arg(long, default_value = "claude-sonnet-4-5", value_name = "MODEL")]
    model: String,
    /// Thinking effort: low, medium, high, max.
    #[arg(long, default_value = "medium", value_name = "EFFORT")]
    effort: xtask::agent::Effort,
    /// Stop the run before a model call would exceed this many USD.
    #[arg(long, value_name = "USD")]
    budget_usd: Option<f64>,
    /// The directory the model may change, relative to the tree.
    #[arg(long, default_value = "src/libbpfilter/cgen", value_name = "DIR")]
    scope: String,
    /// What counts as better.
    #[arg(long, value_enum, default_value = "runtime")]
    objective: optimize::Objective,
    /// Largest significant per-case slowdown accepted, in %.
    #[arg(long, default_value_t = 2.0, value_name = "PCT")]
    max_regression: f64,
    /// Continue the run with this id.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// Id of a new run: up to 64 letters, digits, '.', '_', '-' (its branch is optimize/<RUN_ID>) [default: the time].
    #[arg(long, value_name = "RUN_ID", conflicts_with = "resume")]
    run_id: Option<String>,
    /// Fix rounds after a build or test failure.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_fix_attempts: usize,
    /// Model API base URL [default: $ANTHROPIC_BASE_URL or https://api.anthropic.com].
    #[arg(long, value_name = "URL")]
    api_base_url: Option<String>,
    /// `anthropic` (Messages API) or `openai` (chat-completions, e.g. a local model).
    #[arg(long, default_value = "anthropic", value_name = "BACKEND")]
    backend: String,
    /// Use an external coding agent run in the worktree instead (scope still enforced on its diff).
    #[arg(long, value_name = "CMD")]
    agent_command: Option<String>,
    /// Validation command, repeatable; {build}, {source} and {jobs} are expanded
    /// [default: bpfilter's: make, fixstyle, test_bin, test].
    #[arg(long, value_name = "CMD")]
    validate: Vec<String>,
    /// Only cases whose name contains one of these comma-separated substrings.
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// Also judge cases flagged use_set, use_log or userspace_only.
    #[arg(long)]
    include_flagged: bool,
    /// Model requests allowed per conversation.
    #[arg(long, default_value_t = 40, value_name = "N")]
    max_turns: usize,
    /// Quicker evaluations (fewer rounds, wider intervals).
    #[arg(long)]
    quick: bool,
    /// Smallest |Δ| in % counted as a change.
    #[arg(long, default_value_t = CompareConfig::default().threshold_pct, value_name = "PCT")]
    threshold: f64,
    /// Measuring budget per evaluation, in seconds.
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<f64>,
    /// Follow the run live in a browser: a read-only dashboard on this loopback address
    /// [default when given without a value: 127.0.0.1 and a free port]; its stop control needs
    /// the token printed in the terminal.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = optimize::serve::DEFAULT_ADDR,
          value_parser = optimize::serve::parse_addr)]
    serve: Option<std::net::SocketAddr>,
    /// Also remove this environment variable from the validation commands' environment
    /// (repeatable; keys, tokens, secrets and model settings are always removed).
    #[arg(long, value_name = "NAME")]
    secret_env: Vec<String>,
    /// DANGEROUS: run validation commands (model-written code, as root) without the sandbox:
    /// with network access and a writable file system. For hosts that refuse namespaces.
    #[arg(long)]
    no_sandbox: bool,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct SelfcheckArgs {
    /// The bpfilter checkout whose build is compared with itself [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// A prebuilt bfcli to compare with itself instead of building the sources.
    #[arg(long, value_name = "PATH", conflicts_with = "sources")]
    bfcli: Option<PathBuf>,
    /// Only cases whose name contains one of these comma-separated substrings.
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// A/A comparisons to run.
    #[arg(long, default_value_t = 5, value_name = "N")]
    aa_runs: usize,
    /// Comparisons per slowdown in the power check.
    #[arg(long, default_value_t = 10, value_name = "N")]
    power_reps: usize,
    /// Skip the A/A part (no bpfilter needed).
    #[arg(long)]
    power_only: bool,
    /// Use --quick comparison settings.
    #[arg(long)]
    quick: bool,
    /// Write the outcome as JSON.
    #[arg(long, value_name = "FILE")]
    json_output: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Oldest commit of the range (included).
    #[arg(long, value_name = "REF")]
    since: String,
    /// Newest commit of the range (included), or `wip` for the uncommitted changes on top of HEAD.
    #[arg(long, value_name = "REF|wip", default_value = "HEAD")]
    until: String,
    /// Also benchmark this commit (repeatable).
    #[arg(long, value_name = "REF")]
    include: Vec<String>,
    /// Measure cached commits again: `failed`, `all`, or one REF.
    #[arg(long, value_name = "failed|all|REF")]
    retry: Option<history::Retry>,
    /// The bpfilter checkout [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Only cases whose name contains one of these comma-separated substrings.
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// Smallest |Δ| in % reported as a change.
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    threshold: f64,
    /// Write the HTML report here [default: <cache>/reports/history-<time>.html].
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the history as JSON.
    #[arg(long, value_name = "FILE")]
    json_output: Option<PathBuf>,
    /// Exit with 2 when a case changed significantly at some commit: slower (regression),
    /// faster (improvement) or either (any).
    // `--fail-on-significant-change better|worse|any`: the old spelling, kept for existing CI recipes.
    #[arg(long, value_enum, value_name = "WHAT", alias = "fail-on-significant-change")]
    fail_on: Option<compare::FailOn>,
    /// Exit with 3 when a commit failed to build or a case failed at a measured commit.
    // `--fail-on-any-commit-failure`: the old spelling.
    #[arg(long, alias = "fail-on-any-commit-failure")]
    fail_on_benchmark_error: bool,
    /// Exit with 3 when the newest commit failed to build (old flag, kept for existing CI recipes).
    #[arg(long, hide = true)]
    fail_on_last_commit_failure: bool,
    /// Fewer, shorter rounds per pair of commits; same statistics, wider intervals.
    #[arg(long)]
    quick: bool,
    /// Measuring budget per pair of consecutive commits, in seconds.
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<f64>,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The baseline revision (ref, SHA, branch, tag).
    base: String,
    /// The revision to judge (ref, SHA, branch, tag, or `wip` for uncommitted changes).
    reference: String,
    /// The bpfilter checkout [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Only cases whose name contains one of these comma-separated substrings
    /// [default: all but the 2^20-element chain load].
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// Smallest |Δ| in % reported as faster/slower.
    #[arg(long, default_value_t = CompareConfig::default().threshold_pct, value_name = "PCT")]
    threshold: f64,
    /// Stop adding rounds after this many seconds of measuring.
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<f64>,
    /// Stop adding rounds to a case once its interval is narrower than this, in percentage points.
    #[arg(long, value_name = "PCT")]
    target_ci: Option<f64>,
    /// Rounds every case gets (at least 6).
    #[arg(long, value_name = "N")]
    min_rounds: Option<usize>,
    /// Rounds no case goes beyond.
    #[arg(long, value_name = "N")]
    max_rounds: Option<usize>,
    /// Pre-push mode: fewer, shorter rounds; same statistics, wider intervals.
    #[arg(long)]
    quick: bool,
    /// Write the comparison as JSON (schema bfperf.compare.v1).
    #[arg(long, value_name = "FILE")]
    json_output: Option<PathBuf>,
    /// Write a Markdown table ready to paste as a pull-request comment.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Exit with 2 when a case is significantly slower (regression), faster (improvement) or either (any).
    #[arg(long, value_enum, value_name = "WHAT")]
    fail_on: Option<compare::FailOn>,
    /// Exit with 3 when a case failed or was unsupported on either side.
    #[arg(long)]
    fail_on_benchmark_error: bool,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct HostArgs {
    /// Pin the measuring thread to this CPU while it measures (builds are not pinned).
    #[arg(long, value_name = "CPU")]
    cpu_pin: Option<usize>,
    /// Measure under SCHED_FIFO so nothing preempts a sample (the measuring thread only).
    #[arg(long)]
    no_preempt: bool,
    /// Bind CPUs and memory to this NUMA node.
    #[arg(long, value_name = "NODE")]
    bind_node: Option<usize>,
    /// Run inside this systemd slice (transient scope via systemd-run).
    #[arg(long, value_name = "NAME")]
    slice: Option<String>,
    /// Fail at once if another benchmark runs on this host, instead of waiting for it.
    #[arg(long)]
    no_wait: bool,
}

impl HostArgs {
    /// The isolation asked for.
    fn isolation(&self) -> host::Isolation {
        host::Isolation {
            cpu_pin: self.cpu_pin,
            no_preempt: self.no_preempt,
            bind_node: self.bind_node,
            slice: self.slice.clone(),
        }
    }

    /// Whether to queue behind another run (`--no-wait`: fail at once).
    fn wait(&self) -> lock::Wait {
        if self.no_wait {
            lock::Wait::No
        } else {
            lock::Wait::Yes
        }
    }

    /// Enter the slice (re-exec), take the host lock, check and install the measuring isolation.
    fn enter(&self, cache: &std::path::Path, what: &str) -> Result<Option<lock::RunLock>> {
        // Privileges first: an unprivileged user gets the one line that says what to do,
        // not an error about a lock file owned by root.
        bench_harness::program::check_bpf_access()?;
        if let Some(slice) = &self.slice {
            if let Some(code) = host::reexec_in_slice(slice)? {
                std::process::exit(code);
            }
        }
        let held = lock::RunLock::acquire(&lock::default_path(cache), self.wait(), what)?;
        for line in self.isolation().install()? {
            eprintln!("host: while measuring: {line}");
        }
        Ok(Some(held))
    }
}

/// Where to run: this machine, or a benchmark host over ssh.
#[derive(Args, Debug)]
struct RemoteArgs {
    /// Build and measure on this host over ssh: [ssh://][USER@]HOST[:PORT] or an ~/.ssh/config alias.
    #[arg(long, value_name = "USER@HOST")]
    host: Option<String>,
    /// The private key to log in to --host with (IdentitiesOnly: the agent's keys are not offered).
    #[arg(long, value_name = "PATH", requires = "host")]
    ssh_key: Option<PathBuf>,
    /// An extra ssh option for --host, as NAME=VALUE (repeatable), e.g. ProxyJump=gw or UserKnownHostsFile=FILE.
    #[arg(long, value_name = "NAME=VALUE", requires = "host")]
    ssh_option: Vec<String>,
    /// The directory bfperf keeps on --host (relative: to the login's home there).
    #[arg(long, value_name = "DIR", default_value = remote::DEFAULT_REMOTE_DIR, requires = "host")]
    remote_dir: String,
}

/// Where a command builds and measures, with its cache and (locally) the host lock.
struct Session {
    machine: Machine,
    /// The cache: per host when remote, so one machine's results never mix with another's.
    cache: PathBuf,
    _lock: Option<lock::RunLock>,
}

/// Connect to --host (the host lock and isolation then apply there, per
/// measurement; here a lock on that host's cache keeps two runs from sharing
/// its worktrees), or take this host's lock and apply isolation here.
/// `builds`: whether the run builds (a host without build tools is refused then).
fn enter(host: &HostArgs, remote: &RemoteArgs, common: &CommonArgs, what: &str, builds: bool) -> Result<Session> {
    let cache = workspace::cache_dir(common.cache_dir.as_deref())?;
    let Some(spec) = &remote.host else {
        let lock = host.enter(&cache, what)?;
        return Ok(Session { machine: Machine::Local, cache, _lock: lock });
    };
    let spec = HostSpec::parse(spec)?;
    anyhow::ensure!(
        host.slice.is_none(),
        "--slice is not supported with --host: run bfperf on the host itself for that"
    );
    let opts = RemoteOptions {
        host: spec.clone(),
        ssh: SshOptions { key: remote.ssh_key.clone(), options: remote.ssh_option.clone() },
        remote_dir: remote.remote_dir.clone(),
        isolation: host.isolation(),
        wait: host.wait() == lock::Wait::Yes,
        builds,
        what: what.to_owned(),
    };
    let host_cache = cache.join("hosts").join(spec.cache_key());
    let connected = Remote::connect(&opts, &host_cache)?;
    std::fs::create_dir_all(&host_cache).with_context(|| format!("cannot create {}", host_cache.display()))?;
    let held = lock::RunLock::acquire(&host_cache.join("bfperf.lock"), host.wait(), what)?;
    eprintln!("host: {spec} (kernel {}), bfperf directory {}", connected.kernel(), connected.root().display());
    Ok(Session { machine: Machine::Remote(std::sync::Arc::new(connected)), cache: host_cache, _lock: Some(held) })
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The bpfilter checkout to build and measure [default: $BPFILTER_SOURCES].
    #[arg(long, value_name = "PATH")]
    sources: Option<PathBuf>,
    /// Use this prebuilt bfcli instead of building the sources.
    #[arg(long, value_name = "PATH", conflicts_with = "sources")]
    bfcli: Option<PathBuf>,
    /// Only cases whose name contains one of these comma-separated substrings.
    #[arg(long, short, value_name = "PATTERNS")]
    filter: Option<String>,
    /// List the suite's cases (with --filter: the selected ones) and exit.
    #[arg(long, short)]
    list: bool,
    /// Write the results as JSON (schema bfperf.results.v1) to this file.
    #[arg(long, value_name = "FILE")]
    json_output: Option<PathBuf>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct SamplingArgs {
    /// Samples per runtime case.
    #[arg(long, default_value_t = SamplingConfig::default().samples)]
    samples: usize,
    /// Target duration of one sample (one BPF_PROG_TEST_RUN call), in ms.
    #[arg(long, default_value_t = SamplingConfig::default().sample_ms)]
    sample_ms: f64,
}

impl SamplingArgs {
    fn config(&self) -> SamplingConfig {
        SamplingConfig { samples: self.samples, sample_ms: self.sample_ms, ..SamplingConfig::default() }
    }
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Where builds, worktrees and cached results live [default: $BFPERF_CACHE or ~/.cache/bfperf].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
}

fn main() {
    let cli: Cli = exit::parse();
    // Before any thread starts: a threaded process cannot unshare its mounts.
    let cli = match cli.command {
        Command::SandboxExec(args) => std::process::exit(xtask::sandbox::exec_main(args)),
        _ => cli,
    };
    bench_harness::interrupt::install();
    let result = match cli.command {
        Command::Bench(args) => cmd_bench(args).map(|()| exit::OK),
        Command::BenchCompare(args) => cmd_compare(args),
        Command::BenchHistory(args) => cmd_history(args),
        Command::BenchSelfcheck(args) => cmd_selfcheck(args).map(|()| exit::OK),
        Command::Optimize(args) => cmd_optimize(args).map(|()| exit::OK),
        Command::Doctor(args) => Ok(cmd_doctor(args)),
        Command::InstallHook(args) => cmd_hook(args).map(|()| exit::OK),
        Command::Demo(args) => cmd_demo(args).map(|()| exit::OK),
        Command::Harness => std::process::exit(remote::harness::serve()),
        Command::SandboxExec(_) => unreachable!("handled above"),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Errors quote remote hosts, bfcli and the model: no terminal escapes.
            eprintln!("error: {}", text::block(&format!("{e:#}")));
            std::process::exit(exit::of_error());
        }
    }
}

fn cmd_demo(args: DemoArgs) -> Result<()> {
    let cache = workspace::cache_dir(args.common.cache_dir.as_deref())?;
    let _lock = args.host.enter(&cache, "demo")?;
    let demo = xtask::demo::run(&cache, true)?;
    println!("── bench-compare HEAD~1 HEAD (minifilter: the second commit pads every prologue) ──");
    println!("{}", report::compare_table(&demo.comparison, color()));
    print!("{}", report::summary(&demo.comparison));
    println!("\n── optimize: 2 attempts against a local scripted model ──");
    let r = &demo.run;
    for a in &r.attempts {
        let g = a.geomean.map(|g| report::delta(&g)).unwrap_or_default();
        let title = text::line(a.title());
        println!("  {}. {:<12} {title:<45} {g}", a.index, a.outcome.as_ref().map(|o| o.name()).unwrap_or(""));
    }
    let run_dir = cache.join("optimize").join(&r.run_id);
    println!("branch to merge: {} in {}", r.branch, r.sources.display());
    println!("optimize report: {}", run_dir.join("report.html").display());
    println!("demo files:      {}", demo.dir.display());
    Ok(())
}

fn cmd_hook(args: HookArgs) -> Result<()> {
    let sources = xtask::sources::Sources::from_arg_or_env(args.sources.as_deref())?;
    if args.uninstall {
        let path = xtask::hook::uninstall(sources.root())?;
        println!("removed {}", path.display());
    } else {
        let bfperf = xtask::workspace::root()?;
        let path = xtask::hook::install(sources.root(), &bfperf)?;
        println!("installed {} (bypass once with git push --no-verify)", path.display());
    }
    Ok(())
}

fn cmd_doctor(args: DoctorArgs) -> i32 {
    let checks = xtask::doctor::run(args.sources.as_deref());
    for c in &checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| !c.ok && c.level == xtask::doctor::Level::Required).count();
    if failed > 0 {
        println!("{failed} required check(s) failed");
        exit::ERROR
    } else {
        println!("ready");
        exit::OK
    }
}

fn cmd_optimize(args: OptimizeArgs) -> Result<()> {
    let session = enter(&args.host, &args.remote, &args.common, "optimize", true)?;
    let cache = session.cache.clone();
    let mut config = if args.quick { CompareConfig::quick() } else { CompareConfig::default() };
    config.threshold_pct = args.threshold;
    if let Some(b) = args.time_budget {
        config.time_budget_s = b;
    }
    let backend = match (&args.agent_command, args.backend.as_str()) {
        (Some(cmd), _) => optimize::Backend::Command(cmd.clone()),
        (None, "anthropic") => optimize::Backend::Anthropic,
        (None, "openai") => optimize::Backend::OpenAi,
        (None, other) => anyhow::bail!("--backend {other}: use anthropic or openai (or --agent-command)"),
    };
    let validate = if args.validate.is_empty() {
        optimize::validate::BPFILTER_COMMANDS.iter().map(|s| s.to_string()).collect()
    } else {
        args.validate
    };
    let opts = optimize::OptimizeOptions {
        sources: args.sources,
        iterations: args.iterations,
        hint: args.hint,
        model: args.model,
        effort: args.effort,
        budget_usd: args.budget_usd,
        scope: args.scope,
        objective: args.objective,
        max_regression_pct: args.max_regression,
        resume: args.resume,
        run_id: args.run_id,
        max_fix_attempts: args.max_fix_attempts,
        api_base_url: args.api_base_url,
        backend,
        validate,
        filter: args.filter,
        include_flagged: args.include_flagged,
        config,
        cache: cache.clone(),
        machine: session.machine.clone(),
        max_turns: args.max_turns,
        serve: args.serve,
        sandbox: xtask::sandbox::Policy { confine: !args.no_sandbox, secret_names: args.secret_env, helper: None },
        api_key: None,
    };
    let record = optimize::run(&opts)?;
    println!(
        "run {}: {} attempts, {} kept, cumulative {:+.2} % vs baseline, ${:.2} spent ({})",
        record.run_id,
        record.attempts.len(),
        record.kept(),
        (record.cumulative_ratio - 1.0) * 100.0,
        record.spent_usd,
        text::line(record.stopped.as_deref().unwrap_or(""))
    );
    for a in &record.attempts {
        let title = text::line(a.title());
        println!("  {:>2}. {:<16} {title}", a.index, a.outcome.as_ref().map(|o| o.name()).unwrap_or("running"));
    }
    let dir = cache.join("optimize").join(&record.run_id);
    println!("branch to merge: {} (worktree {})", record.branch, record.worktree.display());
    println!("history: {}\nreport:  {}", dir.join("history.json").display(), dir.join("report.html").display());
    Ok(())
}

fn cmd_selfcheck(args: SelfcheckArgs) -> Result<()> {
    let cache = workspace::cache_dir(args.common.cache_dir.as_deref())?;
    let _lock = args.host.enter(&cache, "bench-selfcheck")?;
    let config = if args.quick { CompareConfig::quick() } else { CompareConfig::default() };
    let mut json = serde_json::Map::new();
    if !args.power_only {
        let opts = bench::BenchOptions {
            sources: args.sources.clone(),
            bfcli: args.bfcli.clone(),
            filter: args.filter.clone(),
            sampling: SamplingConfig::default(),
            cache: cache.clone(),
            machine: Machine::Local,
        };
        let bfcli = bench_harness::program::Bfcli::new(bench::prepare(&opts)?.0)?;
        eprintln!("A/A: {} comparisons of {} with itself", args.aa_runs, bfcli.path().display());
        let aa = selfcheck::aa(&bfcli, args.filter.as_deref(), args.aa_runs, config, |run, o| {
            eprintln!("  run {}: {} false verdicts of {} so far", run + 1, o.false_verdicts, o.verdicts)
        })?;
        println!(
            "A/A false-verdict rate: {:.1} % ({} of {} case verdicts over {} runs; goal <= 5 %); median 95 % CI width {:.2} points",
            aa.rate() * 100.0,
            aa.false_verdicts,
            aa.verdicts,
            aa.runs,
            aa.median_ci_width_pct
        );
        json.insert("aa".into(), serde_json::to_value(&aa)?);
    }
    eprintln!(
        "power: {} comparisons per slowdown ({} to {} adaptive rounds each, as the engine does per case)",
        args.power_reps, config.min_rounds, config.max_rounds
    );
    let points = selfcheck::power(args.power_reps, config, |p| {
        println!(
            "  +{:>2} insns: true slowdown {:+.2} %: detected {}/{} (wrong direction {})",
            p.extra_insns, p.true_delta_pct, p.detected, p.reps, p.wrong
        )
    })?;
    match bench_harness::selfcheck::smallest_detected(&points) {
        Some(d) => println!("smallest slowdown detected 9 times out of 10: {d:.2} % (goal <= 2 %)"),
        None => println!("no slowdown tried was detected 9 times out of 10"),
    }
    json.insert("power".into(), serde_json::to_value(&points)?);
    if let Some(path) = &args.json_output {
        write_atomic(path, &serde_json::to_vec_pretty(&json)?)?;
        println!("JSON: {}", path.display());
    }
    Ok(())
}

fn cmd_history(args: HistoryArgs) -> Result<i32> {
    use bench_harness::compare::Change;
    let what = format!("bench-history {}..{}", args.since, args.until);
    let session = enter(&args.host, &args.remote, &args.common, &what, true)?;
    let cache = session.cache.clone();
    let opts = history::HistoryOptions {
        sources: args.sources,
        since: args.since,
        until: args.until,
        include: args.include,
        retry: args.retry,
        filter: args.filter,
        config: {
            let mut c = if args.quick {
                CompareConfig::quick()
            } else {
                CompareConfig { time_budget_s: 60.0, ..CompareConfig::default() }
            };
            c.threshold_pct = args.threshold;
            c.level = history::LEVEL;
            if let Some(b) = args.time_budget {
                c.time_budget_s = b;
            }
            c
        },
        cache: cache.clone(),
        machine: session.machine.clone(),
    };
    let hist = history::run(&opts)?;
    for p in &hist.points {
        let state = match &p.status {
            history::PointStatus::Measured { cached: true } => "cached".to_string(),
            history::PointStatus::Measured { cached: false } => "measured".to_string(),
            history::PointStatus::BuildFailed { .. } => "BUILD FAILED".to_string(),
        };
        println!("{:<12} {:<9} {}", p.label, state, text::line(&p.subject));
    }
    if hist.changes.is_empty() {
        println!("no significant change along {} commits (threshold {:.1} %)", hist.points.len(), hist.threshold_pct);
    }
    for c in &hist.changes {
        let word = if c.change.change == Change::Slower { "slower" } else { "faster" };
        let subject = text::line(&c.subject);
        println!("{word:>6} {:<42} at {} {subject}: {}", c.case, c.commit, report::delta(&c.change.estimate));
    }
    let html = args.html.unwrap_or_else(|| {
        cache.join("reports").join(format!("history-{}.html", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))
    });
    write_atomic(&html, history::html::render(&hist).as_bytes())
        .with_context(|| format!("cannot write {}", html.display()))?;
    println!("report: {}", html.display());
    if let Some(path) = &args.json_output {
        write_atomic(path, &serde_json::to_vec_pretty(&hist)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    Ok(history::exit_code(&hist, args.fail_on, args.fail_on_benchmark_error, args.fail_on_last_commit_failure))
}

fn cmd_compare(args: CompareArgs) -> Result<i32> {
    let what = format!("bench-compare {} {}", args.base, args.reference);
    let session = enter(&args.host, &args.remote, &args.common, &what, true)?;
    let mut config = if args.quick { CompareConfig::quick() } else { CompareConfig::default() };
    config.threshold_pct = args.threshold;
    if let Some(b) = args.time_budget {
        config.time_budget_s = b;
    }
    if let Some(t) = args.target_ci {
        config.target_ci_pct = t;
    }
    if let Some(n) = args.min_rounds {
        anyhow::ensure!(
            n >= MIN_PAIRED_ROUNDS,
            "--min-rounds {n}: at least {MIN_PAIRED_ROUNDS} rounds are needed for an interval"
        );
        config.min_rounds = n;
        config.max_rounds = config.max_rounds.max(n);
    }
    if let Some(n) = args.max_rounds {
        config.max_rounds = n.max(config.min_rounds);
    }
    let opts = compare::CompareOptions {
        sources: args.sources,
        base: args.base,
        reference: args.reference,
        filter: args.filter,
        config,
        cache: session.cache.clone(),
        machine: session.machine.clone(),
    };
    let comparison = compare::run(&opts)?;
    println!("{}", report::compare_table(&comparison, color()));
    print!("{}", report::summary(&comparison));
    if let Some(path) = &args.json_output {
        let json = serde_json::to_vec_pretty(&comparison)?;
        write_atomic(path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    if let Some(path) = &args.markdown {
        write_atomic(path, report::markdown(&comparison).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("Markdown: {}", path.display());
    }
    Ok(compare::exit_code(&comparison, args.fail_on, args.fail_on_benchmark_error))
}

fn color() -> bool {
    console::Term::stdout().is_term() && std::env::var_os("NO_COLOR").is_none()
}

fn cmd_bench(args: BenchArgs) -> Result<()> {
    if args.list {
        let cases = suite::suite();
        for case in suite::select(&cases, args.filter.as_deref()) {
            println!("{:<45} {}", case.name, case.label);
        }
        return Ok(());
    }
    let session = enter(&args.host, &args.remote, &args.common, "bench", args.bfcli.is_none())?;
    let opts = bench::BenchOptions {
        sources: args.sources,
        bfcli: args.bfcli,
        filter: args.filter,
        sampling: args.sampling.config(),
        cache: session.cache.clone(),
        machine: session.machine.clone(),
    };
    let results = bench::run(&opts)?;
    println!("{}", bench_harness::report::run_table(&results, color()));
    for line in bench_harness::report::floor_lines(&results) {
        println!("{line}");
    }
    let commit = results.source.commit.as_deref().map(|c| format!(" at {}", &c[..c.len().min(12)])).unwrap_or_default();
    println!(
        "{}{commit}: {} in {:.1} s",
        results.source.bfcli,
        bench_harness::report::status_counts(&results),
        results.wall_time_s
    );
    let path = match args.json_output {
        Some(p) => p,
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            opts.cache.join("runs").join(format!("bench-{stamp}.json"))
        }
    };
    results.write_atomic(&path).with_context(|| format!("cannot write {}", path.display()))?;
    println!("results: {}", path.display());
    let failed = results.cases.iter().filter(|c| matches!(c.status, Status::Failed { .. })).count();
    anyhow::ensure!(failed == 0, "{failed} case(s) failed: their programs returned the wrong verdict or could not run");
    Ok(())
}
