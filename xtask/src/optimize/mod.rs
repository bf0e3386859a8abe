//! `cargo xtask optimize`: a model proposes one codegen optimization at a
//! time, implements it inside the scope, and the change lands on the run's
//! branch only if it builds, passes the tests (relative to the baseline) and
//! is measurably faster in a paired A/B comparison with its parent.
//!
//! Safety is by construction: the model gets our Rust file tools only (no
//! shell), reads are confined to the worktree and writes to the scope, the
//! scope is enforced on the diff, only scope files are committed, and the
//! user's checkout is never touched (the run has its own worktree and branch).

pub mod code;
pub mod dashboard;
pub mod evidence;
pub mod keep;
pub mod knowledge;
pub mod prompt;
pub mod record;
pub mod serve;
pub mod transcript;

use crate::agent::{self, AgentError, Conversation, FileTools, Model};
use crate::build::Build;
use crate::flags::OptimizeFlags;
use crate::machine::Machine;
use crate::progress;
use crate::revisions::{build_rev, select_cases, RepoCache};
use crate::validation;
use crate::worktree::{Repo, Rev};
use anyhow::{bail, Context as _, Result};
use bench_harness::engine::{CompareConfig, SideInfo};
use bench_harness::results::SourceInfo;
use bench_harness::suite::{self, Case};
use git2::{Oid, Repository};
use record::{Attempt, CaseDelta, Outcome, RunRecord, Step};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the run optimizes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// Suite geometric mean significantly faster, no case significantly slower beyond --max-regression.
    Runtime,
    /// Fewer xlated instructions, runtime not significantly worse.
    Insns,
}

/// Which model backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Anthropic Messages API (key from ANTHROPIC_API_KEY).
    Anthropic,
    /// An OpenAI-compatible chat-completions endpoint (local models).
    OpenAi,
    /// An external coding agent command run in the worktree.
    Command(String),
}

/// A run of `cargo xtask optimize`: its flags, and what they and the session
/// resolve to, made once by [`Context::new`]. Nothing here copies a flag: a
/// setting given on the command line is read from [`Context::flags`].
#[derive(Debug)]
pub struct Context {
    /// The command line.
    pub flags: OptimizeFlags,
    /// The session's cache (per host with `--host`).
    pub cache: PathBuf,
    /// Where to build, validate and measure (the session's).
    pub machine: Machine,
    /// `--agent-command`, else `--backend`.
    pub backend: Backend,
    /// Model id of the proposal step: `--proposal-model`, else `--model`, else [`DEFAULT_MODEL`].
    pub proposal_model: String,
    /// Model id of the implementation step: `--impl-model`, else `--model`, else [`DEFAULT_MODEL`].
    pub impl_model: String,
    /// The validation commands with their roles, in the order they run
    /// (`--validate`, else bpfilter's; `{build}`, `{source}`, `{jobs}` expanded when run).
    pub validate: Vec<validation::Step>,
    /// The engine's settings of the evaluations (`--quick`, `--threshold`, ...).
    pub config: CompareConfig,
    /// How validation commands and attempt builds are confined (`--no-sandbox`, `--secret-env`).
    pub sandbox: crate::sandbox::Policy,
    /// The model API key to use instead of the backend's environment variable
    /// (the demo's fixed key: a real key must never reach its scripted server).
    pub api_key: Option<agent::ApiKey>,
}

impl Context {
    /// The run `flags` ask for, on the session's `machine` with its `cache`:
    /// the backend, the models, the validation commands (bpfilter's by default),
    /// the comparison settings and the sandbox policy resolved, and the flags
    /// checked against each other.
    pub fn new(flags: OptimizeFlags, cache: PathBuf, machine: Machine) -> Result<Self> {
        let config = flags.measure.config(CompareConfig::default(), None)?;
        let backend = match (&flags.agent_command, flags.backend.as_str()) {
            (Some(cmd), _) => Backend::Command(cmd.clone()),
            (None, "anthropic") => Backend::Anthropic,
            (None, "openai") => Backend::OpenAi,
            (None, other) => bail!("--backend {other}: use anthropic or openai (or --agent-command)"),
        };
        let given = if flags.validate.is_empty() {
            let mut steps = validation::bpfilter_steps();
            steps.retain(|s| !(flags.no_tests && s.role == validation::Role::Test));
            steps
        } else {
            flags.validate.clone()
        };
        let validate = validation::plan(given, flags.no_tests)?;
        let model = flags.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let proposal_model = flags.proposal_model.clone().unwrap_or_else(|| model.clone());
        let impl_model = flags.impl_model.clone().unwrap_or(model);
        if flags.budget_usd.is_some() && flags.price_per_mtok.is_none() && !matches!(backend, Backend::Command(_)) {
            for m in [&proposal_model, &impl_model] {
                anyhow::ensure!(
                    agent::pricing::price_for(m).is_some(),
                    "--budget-usd: bfperf has no price for the model {m}: pass --price-per-mtok IN,OUT, its price \
                     in USD per million input and output tokens (e.g. 3,15; 0,0 for a free local model)"
                );
            }
        }
        let sandbox =
            crate::sandbox::Policy { confine: !flags.no_sandbox, secret_names: flags.secret_env.clone(), helper: None };
        Ok(Context {
            flags,
            cache,
            machine,
            backend,
            proposal_model,
            impl_model,
            validate,
            config,
            sandbox,
            api_key: None,
        })
    }
}

/// The model of both steps when `--model` is not given.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";

/// The longest run id accepted.
pub const MAX_RUN_ID_LEN: usize = 64;

/// Refuse a run id that is not a short plain name. A run id names a directory
/// of the cache, a branch and a git worktree, and every path of the run is
/// derived from it: `../x` or `/tmp/x` would lead out of the cache.
pub fn check_run_id(id: &str) -> Result<()> {
    let plain = !id.is_empty()
        && id.len() <= MAX_RUN_ID_LEN
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !id.starts_with(['.', '-'])
        // What git refuses in a branch name besides: `..`, a trailing `.`, `.lock`.
        && git2::Reference::is_valid_name(&format!("refs/heads/{}", branch_name(id)));
    anyhow::ensure!(
        plain,
        "{id:?} is not a valid run id: use up to {MAX_RUN_ID_LEN} letters, digits, '.', '_' and '-', \
         not starting with '.' or '-' (it names the branch optimize/<run-id> and a directory of the cache)"
    );
    Ok(())
}

fn run_dir(cache: &Path, run_id: &str) -> PathBuf {
    cache.join("optimize").join(run_id)
}

fn history_path(cache: &Path, run_id: &str) -> PathBuf {
    run_dir(cache, run_id).join("history.json")
}

fn worktree_path(cache: &Path, run_id: &str) -> PathBuf {
    run_dir(cache, run_id).join("worktree")
}

fn branch_name(run_id: &str) -> String {
    format!("optimize/{run_id}")
}

/// The name git knows the run's worktree by.
fn worktree_name(run_id: &str) -> String {
    format!("bfperf-opt-{run_id}")
}

/// `scope` as the scope check compares it: relative to the tree `root`,
/// normalised and canonical (`./src/cgen/`, `src/cgen/.` and an absolute path
/// into the tree are all `src/cgen`). It must be a directory inside the tree,
/// not the tree itself, and may not lead out of it.
pub fn normalize_scope(root: &Path, scope: &str) -> Result<String> {
    let canonical_root = std::fs::canonicalize(root).with_context(|| format!("cannot resolve {}", root.display()))?;
    let requested = Path::new(scope);
    let relative = if requested.is_absolute() {
        let canonical = std::fs::canonicalize(requested)
            .map_err(|e| anyhow::anyhow!("the scope {scope} cannot be resolved ({e}): pass an existing directory"))?;
        canonical
            .strip_prefix(&canonical_root)
            .map(Path::to_owned)
            .map_err(|_| anyhow::anyhow!("the scope {scope} is outside {}: pass a directory of it", root.display()))?
    } else {
        requested.to_owned()
    };
    let text = relative.to_str().with_context(|| format!("the scope {scope} is not valid UTF-8"))?;
    let resolved = crate::agent::paths::resolve(&canonical_root, text)
        .map_err(|why| anyhow::anyhow!("the scope {scope} is not usable: {why}"))?;
    anyhow::ensure!(resolved.abs.is_dir(), "the scope {scope} is not a directory of {}: pass --scope", root.display());
    anyhow::ensure!(
        !resolved.rel.as_os_str().is_empty(),
        "the scope {scope} is the whole tree: pass a directory inside it (e.g. src/libbpfilter/cgen)"
    );
    Ok(resolved.rel.to_str().expect("built from UTF-8").to_owned())
}

/// The model backend of `model` for `cx`, charging `budget` (shared by the run's
/// models; a resumed run's budget covers the whole run). The key is read here and
/// never stored elsewhere.
pub fn make_model(cx: &Context, model: &str, worktree: &Path, budget: &agent::SharedBudget) -> Result<Box<dyn Model>> {
    let budget = budget.clone();
    Ok(match &cx.backend {
        Backend::Anthropic => {
            let mut config = agent::anthropic::AnthropicConfig::new(model, cx.flags.api_base_url.as_deref());
            config.price = cx.flags.price_per_mtok;
            let client = match &cx.api_key {
                Some(key) => agent::anthropic::Anthropic::new(key.clone(), config)?,
                None => agent::anthropic::Anthropic::from_env(config)?,
            };
            Box::new(client.with_shared_budget(budget))
        }
        Backend::OpenAi => {
            let base = cx
                .flags
                .api_base_url
                .clone()
                .context("--backend openai needs --api-base-url (e.g. http://127.0.0.1:8080)")?;
            let mut config = agent::openai::OpenAiConfig::new(model, base);
            config.price = cx.flags.price_per_mtok;
            let client = match &cx.api_key {
                Some(key) => agent::openai::OpenAi::new(Some(key.clone()), config)?,
                None => agent::openai::OpenAi::from_env(config)?,
            };
            Box::new(client.with_shared_budget(budget))
        }
        Backend::Command(cmd) => {
            let agent = agent::command::AgentCommand::new(cmd.clone(), worktree);
            // The explorer's script ($BFPERF_SHOW), beside the worktree in the run's directory.
            Box::new(match worktree.parent().filter(|_| cx.machine.is_local()) {
                Some(run_dir) => agent.with_env(evidence::SHOW_VAR, evidence::ShowContext::script(run_dir)),
                None => agent,
            })
        }
    })
}

/// Start or resume a run and make `cx.flags.iterations` attempts.
pub fn run(cx: &Context) -> Result<RunRecord> {
    for (flag, id) in [("--resume", &cx.flags.resume), ("--run-id", &cx.flags.run_id)] {
        if let Some(id) = id {
            check_run_id(id).context(flag)?;
        }
    }
    let sources = crate::session::sources(&cx.flags.tree)?;
    let repo = Repo::open(sources.root())?;
    let all_cases = suite::suite();
    let mut selected: Vec<&Case> = select_cases(&all_cases, cx.flags.cases.filter.as_deref())?;
    selected.retain(|c| keep::judges(c, cx.flags.include_flagged));
    anyhow::ensure!(
        !selected.is_empty(),
        "no case left to judge (the selected ones are all flagged; see --include-flagged)"
    );

    // Check model access before any slow step (worktree, baseline build).
    // Where the key would go is checked here too, before anything connects anywhere.
    match &cx.backend {
        Backend::Anthropic => {
            if cx.api_key.is_none() {
                agent::ApiKey::from_env("ANTHROPIC_API_KEY").ok_or(AgentError::MissingApiKey)?;
            }
            agent::http::check_url(&agent::anthropic::resolve_base_url(cx.flags.api_base_url.as_deref()))?;
        }
        Backend::OpenAi => {
            if let Some(base) = &cx.flags.api_base_url {
                agent::http::check_url(base)?;
            }
        }
        Backend::Command(_) => {}
    }
    let live = cx.flags.serve.map(serve::Dashboard::start).transpose()?;
    if let Some(d) = &live {
        eprintln!("dashboard: {} (stop token: {})", d.url(), d.token());
    }
    let mut record = match &cx.flags.resume {
        Some(id) => resume(&repo, cx, id)?,
        None => start(&repo, cx)?,
    };
    let dir = run_dir(&cx.cache, &record.run_id);
    let history = history_path(&cx.cache, &record.run_id);
    let worktree = record.worktree.clone();
    let budget = agent::SharedBudget::new(agent::Budget {
        spent_usd: record.spent_usd,
        ..agent::Budget::new(cx.flags.budget_usd)
    });
    let mut models = Models {
        propose: make_model(cx, &cx.proposal_model, &worktree, &budget)?,
        implement: make_model(cx, &cx.impl_model, &worktree, &budget)?,
    };
    let earlier = earlier_runs(&cx.cache, &record);
    let publish = |r: &RunRecord| live.iter().for_each(|d| d.publish(r));
    publish(&record);

    let first = record.attempts.len() + 1;
    for index in first..first + cx.flags.iterations {
        let mut attempt = Attempt::new(index);
        attempt.started_at = Some(now());
        attempt.parent = kept_tip(&record).ok().map(|c| c.to_string());
        let model_name = |model: &str| match &cx.backend {
            Backend::Command(c) => format!("command: {c}"),
            _ => model.to_owned(),
        };
        attempt.proposal_model = Some(model_name(&cx.proposal_model));
        attempt.impl_model = Some(model_name(&cx.impl_model));
        attempt.effort = Some(cx.flags.effort.to_string());
        attempt.hints = cx.flags.hint.clone();
        let started = Instant::now();
        let dash = live.as_ref();
        let mut log = transcript::Transcript::new();
        let result = attempt_once(
            &repo,
            cx,
            &selected,
            &mut record,
            &earlier,
            &mut attempt,
            &mut models,
            &dir,
            &history,
            dash,
            &mut log,
        );
        attempt.transcript = log.entries;
        attempt.transcript_dropped = log.dropped;
        attempt.ended_at = Some(now());
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) if bench_harness::interrupt::requested() => {
                attempt.outcome = Some(Outcome::Interrupted);
                // Cut short after its commit (validating, evaluating): the commit goes too.
                reset_worktree(&worktree, Some(kept_tip(&record)?))?;
                // What its finished model calls cost is spent all the same (the budget of --resume).
                record.spent_usd += attempt.cost_usd;
                record.attempts.push(attempt);
                record.stopped = Some("interrupted (Ctrl-C); continue with --resume".into());
                record.save(&history)?;
                write_report(&dir, &record);
                return Err(
                    e.context(format!("interrupted: resume with cargo xtask optimize --resume {}", record.run_id))
                );
            }
            Err(e) => {
                // The run cannot go on (a broken baseline build, a full disk...): record and stop.
                reset_worktree(&worktree, Some(kept_tip(&record)?))?;
                attempt.outcome = Some(Outcome::BenchmarkFailed { reason: format!("{e:#}") });
                record.attempts.push(attempt);
                record.stopped = Some(format!("error: {e:#}"));
                record.save(&history)?;
                write_report(&dir, &record);
                return Err(e);
            }
        };
        let total_s = started.elapsed().as_secs_f64();
        // Running out of budget or a rejected key fail every later attempt the same way.
        let stop = match &outcome {
            Outcome::ModelError { reason } if reason.contains("budget") => Some("budget exhausted"),
            Outcome::ModelError { reason } if reason.contains("rejected the key") => Some("the API rejected the key"),
            _ => None,
        };
        if outcome == Outcome::Kept {
            if let Some(g) = attempt.geomean {
                record.cumulative_ratio *= g.ratio;
            }
        }
        attempt.outcome = Some(outcome.clone());
        attempt.step = Step::Done;
        record.spent_usd += attempt.cost_usd;
        progress::info(format!(
            "attempt {index}: {} — {} ({total_s:.0} s, cost {}, run {}; kept {}; cumulative {:+.2} % vs baseline)",
            outcome.name(),
            if attempt.title().is_empty() { "(no plan)".into() } else { crate::text::line(attempt.title()) },
            record::usd(attempt.cost_usd, attempt.cost_unknown),
            record::usd(record.spent_usd, record.cost_unknown()),
            record.kept() + usize::from(outcome == Outcome::Kept),
            (record.cumulative_ratio - 1.0) * 100.0
        ));
        record.attempts.push(attempt);
        record.save(&history)?;
        write_report(&dir, &record);
        publish(&record);
        if let Some(why) = stop {
            record.stopped = Some(why.into());
            record.save(&history)?;
            write_report(&dir, &record);
            break;
        }
        if live.as_ref().is_some_and(|d| d.stop_requested()) {
            record.stopped = Some("stopped from the dashboard".into());
            break;
        }
    }
    if record.stopped.is_none() {
        record.stopped = Some(format!("{} attempts done", cx.flags.iterations));
    }
    record.save(&history)?;
    write_report(&dir, &record);
    publish(&record);
    Ok(record)
}

/// The time now, as the record keeps it (RFC 3339, UTC, seconds).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The run's `report.html`, through the output layer (built-in templates:
/// the command writes it again at the end with `--template`).
fn write_report(dir: &Path, record: &RunRecord) {
    use crate::output::{exporter, Format, Results};
    let path = dir.join("report.html");
    let page = exporter(Format::Html { templates: None }).export(&Results::Optimize(record));
    if let Err(e) = page.and_then(|page| bench_harness::results::write_atomic(&path, &page)) {
        eprintln!("warning: cannot write {}: {e:#}", path.display());
    }
}

/// Earlier runs on the same checkout, for the proposal prompt.
fn earlier_runs(cache: &Path, current: &RunRecord) -> Vec<RunRecord> {
    let Ok(entries) = std::fs::read_dir(cache.join("optimize")) else { return vec![] };
    entries
        .flatten()
        .filter_map(|e| RunRecord::load(&e.path().join("history.json")).ok())
        .filter(|r| r.run_id != current.run_id && r.sources == current.sources)
        .collect()
}

/// A new run: refuse a dirty tree, create the branch and its worktree,
/// configure, validate the baseline.
fn start(repo: &Repo, cx: &Context) -> Result<RunRecord> {
    let dirty = repo.dirty_files()?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
        let more = if dirty.len() > 10 { format!(" and {} more", dirty.len() - 10) } else { String::new() };
        bail!("the source tree has uncommitted changes ({}{more}): commit or stash them first", shown.join(", "));
    }
    let scope = normalize_scope(repo.root(), &cx.flags.scope)?;
    let run_id = cx.flags.run_id.clone().unwrap_or_else(|| chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string());
    check_run_id(&run_id)?;
    let branch = branch_name(&run_id);
    let git = repo.git();
    if git.find_branch(&branch, git2::BranchType::Local).is_ok() {
        bail!("the branch {branch} already exists: pass another --run-id, or delete it (git branch -D {branch})");
    }
    let dir = run_dir(&cx.cache, &run_id);
    let worktree = worktree_path(&cx.cache, &run_id);
    let history = history_path(&cx.cache, &run_id);
    // A run that failed to start leaves its logs only: that does not count.
    anyhow::ensure!(
        std::fs::symlink_metadata(&history).is_err() && std::fs::symlink_metadata(&worktree).is_err(),
        "a run {run_id} already exists in {}: pass --resume {run_id} or another --run-id",
        dir.display()
    );
    let head = repo.head()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let started = git.branch(&branch, &git.find_commit(head)?, false).map_err(anyhow::Error::from).and_then(|b| {
        let mut wopts = git2::WorktreeAddOptions::new();
        wopts.reference(Some(b.get()));
        git.worktree(&worktree_name(&run_id), &worktree, Some(&wopts))
            .with_context(|| format!("cannot create the worktree {}", worktree.display()))?;
        progress::info(format!("optimize run {run_id}: branch {branch}, worktree {}", worktree.display()));
        baseline(
            cx,
            RunRecord {
                schema: record::SCHEMA.into(),
                run_id: run_id.clone(),
                sources: repo.root().to_owned(),
                branch: branch.clone(),
                worktree: worktree.clone(),
                base_commit: head.to_string(),
                scope,
                model: match &cx.backend {
                    Backend::Command(c) => format!("command: {c}"),
                    _ if cx.proposal_model == cx.impl_model => cx.proposal_model.clone(),
                    _ => format!("{} (proposal), {} (implementation)", cx.proposal_model, cx.impl_model),
                },
                setup: record::RunSetup {
                    proposal_model: cx.proposal_model.clone(),
                    impl_model: cx.impl_model.clone(),
                    effort: cx.flags.effort.to_string(),
                    hints: cx.flags.hint.clone(),
                    validation: cx.validate.clone(),
                    no_tests: cx.flags.no_tests,
                    baseline_validation: vec![],
                },
                objective: format!("{:?}", cx.flags.objective).to_lowercase(),
                baseline_failures: vec![],
                baseline_failed_commands: vec![],
                attempts: vec![],
                spent_usd: 0.0,
                cumulative_ratio: 1.0,
                stopped: None,
            },
        )
    });
    started.map_err(|e| {
        // Nothing to resume yet: a run that fails to start leaves no branch and no worktree.
        remove_failed_start(repo, &cx.cache, &run_id);
        e.context(format!("run {run_id} could not start (its branch and worktree were removed)"))
    })
}

/// Undo a start that failed before the first attempt: the worktree, the
/// branch, the build and the history go; the logs stay for the error to point to.
fn remove_failed_start(repo: &Repo, cache: &Path, run_id: &str) {
    let git = repo.git();
    if let Ok(wt) = git.find_worktree(&worktree_name(run_id)) {
        let mut prune = git2::WorktreePruneOptions::new();
        if let Err(e) = wt.prune(Some(prune.valid(true).working_tree(true).locked(true))) {
            eprintln!("warning: cannot remove the worktree {}: {e}", worktree_name(run_id));
        }
    }
    let branch = branch_name(run_id);
    if let Ok(mut b) = git.find_branch(&branch, git2::BranchType::Local) {
        if let Err(e) = b.delete() {
            eprintln!("warning: cannot delete the branch {branch} ({e}): git branch -D {branch}");
        }
    }
    let dir = run_dir(cache, run_id);
    for path in [dir.join("worktree"), dir.join("build"), dir.join("history.json")] {
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => Ok(()),
        };
        if let Err(e) = removed {
            eprintln!("warning: cannot remove {}: {e}", path.display());
        }
    }
}

/// Configure the new run's build and validate the baseline in its worktree.
fn baseline(cx: &Context, mut record: RunRecord) -> Result<RunRecord> {
    let (run_id, worktree) = (record.run_id.clone(), record.worktree.clone());
    let dir = run_dir(&cx.cache, &run_id);
    let history = history_path(&cx.cache, &run_id);
    record.save(&history)?;

    let spin = progress::spinner(format!("baseline: configuring and validating ({})", roles(&cx.validate)));
    let (build, logs) = (dir.join("build"), dir.join("logs"));
    let configured = configure(cx, &worktree, &build, &logs);
    let commands: Vec<String> = cx.validate.iter().map(|s| s.command.clone()).collect();
    let stops = validation::stops(&cx.validate);
    let results = configured.and_then(|()| {
        let total = commands.len();
        let mut started =
            |i: usize, c: &str| spin.set_message(format!("baseline: {} ({}/{total})", crate::text::line(c), i + 1));
        cx.machine.run_commands(&commands, &stops, &worktree, &build, &logs, "baseline", &cx.sandbox, &mut started)
    });
    spin.finish_and_clear();
    let results = results?;
    let (tests, failed) = validation::baseline_known(&cx.validate, &results)?;
    record.baseline_failures = tests;
    record.baseline_failed_commands = failed;
    let known = validation::Known { tests: &record.baseline_failures, commands: &record.baseline_failed_commands };
    record.setup.baseline_validation = validation::judge(&cx.validate, &results, known).0;
    eprintln!("baseline: {}", validation::summary(&record.setup.baseline_validation, cx.validate.len()));
    if !record.baseline_failures.is_empty() || !record.baseline_failed_commands.is_empty() {
        progress::info(format!(
            "baseline: already failing (ignored for attempts): {}",
            record
                .baseline_failures
                .iter()
                .chain(&record.baseline_failed_commands)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    reset_worktree(&worktree, None)?;
    record.save(&history)?;
    Ok(record)
}

fn resume(repo: &Repo, cx: &Context, run_id: &str) -> Result<RunRecord> {
    let history = history_path(&cx.cache, run_id);
    let mut record = RunRecord::load(&history)?;
    check_resumable(repo, &cx.cache, run_id, &record)?;
    // An attempt cut short leaves changes or a commit under evaluation: back to the branch's last kept state.
    reset_worktree(&record.worktree, Some(kept_tip(&record)?))?;
    record.stopped = None;
    progress::info(format!(
        "resuming run {run_id}: {} attempts so far, {} kept, ${:.2} spent",
        record.attempts.len(),
        record.kept(),
        record.spent_usd
    ));
    Ok(record)
}

/// Refuse a record whose paths are not the ones derived from `run_id`, or whose
/// worktree is not git's worktree of this run: `history.json` lives in the
/// cache and is untrusted, and the worktree is about to be hard-reset.
fn check_resumable(repo: &Repo, cache: &Path, run_id: &str, record: &RunRecord) -> Result<()> {
    let history = history_path(cache, run_id);
    let edited = |what: &str, recorded: &dyn std::fmt::Display, derived: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{} records {what} {recorded}, not {derived}: it was edited or moved, and is not resumed; start a new run",
            history.display()
        )
    };
    if record.run_id != run_id {
        return Err(edited("the run id", &record.run_id, &run_id));
    }
    if record.branch != branch_name(run_id) {
        return Err(edited("the branch", &record.branch, &branch_name(run_id)));
    }
    let worktree = worktree_path(cache, run_id);
    if record.worktree != worktree {
        return Err(edited("the worktree", &record.worktree.display(), &worktree.display()));
    }
    anyhow::ensure!(
        record.sources == repo.root(),
        "run {run_id} belongs to {}, not {}",
        record.sources.display(),
        repo.root().display()
    );
    // A real directory (not a link), registered with git as this run's worktree,
    // whose `.git` leads back to that registration.
    let not_ours = || {
        anyhow::anyhow!(
            "{} is not the worktree git created for run {run_id} in {}: start a new run",
            worktree.display(),
            repo.root().display()
        )
    };
    match std::fs::symlink_metadata(&worktree) {
        Err(_) => bail!("the worktree of run {run_id} is gone ({}): start a new run", worktree.display()),
        Ok(m) if !m.is_dir() => return Err(not_ours()),
        Ok(_) => {}
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let registered = repo.git().find_worktree(&worktree_name(run_id)).map_err(|_| not_ours())?;
    let opened = Repository::open(&worktree).map_err(|_| not_ours())?;
    let gitdir = Repository::open_from_worktree(&registered).map_err(|_| not_ours())?.path().to_owned();
    if canonical(registered.path()) != canonical(&worktree) || canonical(opened.path()) != canonical(&gitdir) {
        return Err(not_ours());
    }
    let scope = normalize_scope(&worktree, &record.scope).ok();
    if scope.as_deref() != Some(record.scope.as_str()) {
        return Err(edited("the scope", &record.scope, &scope.as_deref().unwrap_or("a directory inside the tree")));
    }
    // The commits it resets to must be the run's: the base, or kept on top of it.
    let base = Oid::from_str(&record.base_commit)
        .map_err(|_| edited("the base commit", &record.base_commit, &"a commit id"))?;
    let tip = kept_tip(record).map_err(|_| edited("a kept commit", &"that is not a commit id", &"a commit id"))?;
    let on_branch = |c: Oid| c == base || opened.graph_descendant_of(c, base).unwrap_or(false);
    anyhow::ensure!(
        opened.find_commit(base).is_ok() && on_branch(tip),
        "{} records commits that are not on the run's branch ({} on {}): start a new run",
        history.display(),
        tip,
        base
    );
    Ok(())
}

/// The branch's last kept state: the last kept attempt's commit, else the base.
fn kept_tip(record: &RunRecord) -> Result<Oid> {
    let tip = record
        .attempts
        .iter()
        .rev()
        .find(|a| a.outcome == Some(Outcome::Kept))
        .and_then(|a| a.commit.as_deref())
        .unwrap_or(&record.base_commit);
    Ok(Oid::from_str(tip)?)
}

/// Configure the run's build directory with bpfilter's tests (the quick
/// `bench` builds leave them out).
/// Locally, a directory counts as configured only after a configure that
/// succeeded (see [`Build::is_configured`]); a host is always configured again.
fn configure(cx: &Context, worktree: &Path, build: &Path, logs: &Path) -> Result<()> {
    let machine = &cx.machine;
    let local = machine.is_local().then(|| Build::new(worktree, build));
    if local.as_ref().is_some_and(Build::is_configured) {
        return Ok(());
    }
    if let Some(b) = &local {
        std::fs::create_dir_all(build).with_context(|| format!("cannot create {}", build.display()))?;
        b.unmark_configured()?;
    }
    let cmake = ["cmake -S {source} -B {build} -DNO_DOCS=1".to_owned()];
    let results =
        machine.run_commands(&cmake, &[true], worktree, build, logs, "configure", &cx.sandbox, &mut |_, _| {})?;
    if let Some(r) = results.iter().find(|r| !r.ok) {
        let missing = r.missing.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
        bail!(
            "cmake failed for the run's worktree on {}{missing} (log {}):\n{}",
            machine.name(),
            r.log.display(),
            r.tail
        );
    }
    local.as_ref().map(Build::mark_configured).transpose()?;
    Ok(())
}

/// Reset the worktree: to `to` (dropping commits after it) or to its HEAD,
/// removing untracked and ignored files (a file the model created must not
/// outlive its attempt). Only ever inside the run's own worktree, which
/// holds no build: the build directory is the run's `build`, beside it.
fn reset_worktree(worktree: &Path, to: Option<Oid>) -> Result<()> {
    let wt = Repository::open(worktree)?;
    let target = match to {
        Some(oid) => oid,
        None => wt.head()?.peel_to_commit()?.id(),
    };
    let obj = wt.find_object(target, None)?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.force();
    wt.reset(&obj, git2::ResetType::Hard, Some(&mut co))?;
    // libgit2's reset leaves untracked and ignored files whatever the checkout
    // options say: remove them as `git clean -fdx` would.
    let mut o = git2::StatusOptions::new();
    o.include_untracked(true).recurse_untracked_dirs(false).include_ignored(true).recurse_ignored_dirs(false);
    let stray = wt.statuses(Some(&mut o))?;
    for entry in stray.iter().filter(|s| s.status().intersects(git2::Status::WT_NEW | git2::Status::IGNORED)) {
        let Some(rel) = entry.path() else { continue };
        // A directory is listed once, with a trailing slash; links are removed, not followed.
        let path = worktree.join(rel.trim_end_matches('/'));
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => Ok(()),
        };
        removed.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Changed paths in the worktree (tracked and untracked, not ignored), relative.
fn changed_files(worktree: &Path) -> Result<Vec<String>> {
    let wt = Repository::open(worktree)?;
    let mut o = git2::StatusOptions::new();
    o.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = wt.statuses(Some(&mut o))?;
    let files = statuses.iter().filter_map(|s| s.path().map(str::to_owned)).collect();
    Ok(files)
}

/// What identifies a file's content without reading it: any write changes the ctime.
type Stamp = (u64, u64, i64, i64, u32);

/// The files git ignores in the worktree, stamped. Taken before the model
/// works, compared after: the files it wrote that `git status` does not show.
/// (Files a validation command left there meanwhile are in the snapshot.)
fn ignored_files(worktree: &Path) -> Result<std::collections::BTreeMap<String, Stamp>> {
    use std::os::unix::fs::MetadataExt as _;
    let wt = Repository::open(worktree)?;
    let mut o = git2::StatusOptions::new();
    o.include_untracked(false).include_ignored(true).recurse_ignored_dirs(true);
    let statuses = wt.statuses(Some(&mut o))?;
    Ok(statuses
        .iter()
        .filter(|s| s.status().is_ignored())
        .filter_map(|s| s.path().map(str::to_owned))
        .filter_map(|p| {
            let m = std::fs::symlink_metadata(worktree.join(&p)).ok()?;
            Some((p, (m.ino(), m.len(), m.ctime(), m.ctime_nsec(), m.mode())))
        })
        .collect())
}

/// The ignored files created, changed or removed since `before`.
fn ignored_changes(worktree: &Path, before: &std::collections::BTreeMap<String, Stamp>) -> Result<Vec<String>> {
    let now = ignored_files(worktree)?;
    let mut changed: Vec<String> =
        now.iter().filter(|(p, stamp)| before.get(*p) != Some(stamp)).map(|(p, _)| p.clone()).collect();
    changed.extend(before.keys().filter(|p| !now.contains_key(*p)).cloned());
    changed.sort();
    Ok(changed)
}

/// `a` and `b`, sorted, without duplicates.
fn union(a: Vec<String>, b: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = a.into_iter().chain(b).collect();
    set.into_iter().collect()
}

fn in_scope(path: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    path == scope || path.starts_with(&format!("{scope}/"))
}

/// The largest ignored file whose content a recorded diff shows.
const MAX_SHOWN_BYTES: u64 = 1 << 20;

/// The diff of the worktree against HEAD: tracked and untracked files, and
/// `ignored`, ignored files the model wrote (git's diff leaves those out).
fn worktree_diff(worktree: &Path, ignored: &[String]) -> Result<String> {
    let wt = Repository::open(worktree)?;
    let tree = wt.head()?.peel_to_tree()?;
    let mut o = git2::DiffOptions::new();
    o.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true);
    let diff = wt.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut o))?;
    let mut out = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin());
        }
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    for path in ignored {
        // Ignored files are not in HEAD; one that is gone again shows as nothing. As in
        // git, a link shows its target (never what it points to); a large file only its size.
        let full = worktree.join(path);
        let Ok(meta) = std::fs::symlink_metadata(&full) else { continue };
        let new = if meta.is_symlink() {
            std::fs::read_link(&full)?.into_os_string().into_encoded_bytes()
        } else if meta.len() > MAX_SHOWN_BYTES {
            format!("({} bytes, not shown)\n", meta.len()).into_bytes()
        } else if meta.is_file() {
            std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))?
        } else {
            continue;
        };
        let mut patch = git2::Patch::from_buffers(&[], None, &new, Some(Path::new(path)), None)?;
        out.push_str(&String::from_utf8_lossy(&patch.to_buf()?));
    }
    Ok(out)
}

/// Commit the scope files only, with a message in bpfilter's style: the
/// changes git sees plus `ignored`, the ignored files the model wrote (what
/// was validated and is measured is what is committed).
fn commit_scope(worktree: &Path, scope: &str, ignored: &[String], title: &str, why: &str) -> Result<Oid> {
    let wt = Repository::open(worktree)?;
    let mut index = wt.index()?;
    for path in union(changed_files(worktree)?, ignored.iter().cloned()).into_iter().filter(|p| in_scope(p, scope)) {
        if std::fs::symlink_metadata(worktree.join(&path)).is_ok() {
            index.add_path(Path::new(&path))?;
        } else {
            index.remove_path(Path::new(&path))?;
        }
    }
    index.write()?;
    let tree = wt.find_tree(index.write_tree()?)?;
    let sig = wt.signature().or_else(|_| git2::Signature::now("bfperf optimize", "bfperf@localhost"))?;
    let parent = wt.head()?.peel_to_commit()?;
    let message = commit_message(title, why);
    Ok(wt.commit(Some("HEAD"), &sig, &sig, &message, &tree, &[&parent])?)
}

/// `lib: cgen: <title>` (imperative, at most 72 characters) and a body saying why.
pub fn commit_message(title: &str, why: &str) -> String {
    let mut subject = format!("lib: cgen: {}", title.trim().trim_end_matches('.'));
    if subject.chars().count() > 72 {
        subject = subject.chars().take(71).collect::<String>() + "…";
    }
    let mut body = String::new();
    let mut width = 0;
    for word in why.split_whitespace() {
        if width + word.len() + 1 > 72 && width > 0 {
            body.push('\n');
            width = 0;
        } else if width > 0 {
            body.push(' ');
            width += 1;
        }
        body.push_str(word);
        width += word.len();
    }
    format!("{subject}\n\n{body}\n\nProposed, implemented and measured by bfperf optimize.\n")
}

fn plan_field<'a>(plan: &'a str, field: &str) -> Option<&'a str> {
    let start = plan.find(&format!("{field}:"))? + field.len() + 1;
    let rest = &plan[start..];
    let end = ["TITLE:", "WHY:", "HOW:"].iter().filter_map(|f| rest.find(f)).min().unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// The roles of `steps`, for progress lines (`format, build, test`).
fn roles(steps: &[validation::Step]) -> String {
    let mut seen: Vec<&str> = vec![];
    for s in steps {
        if !seen.contains(&s.role.as_str()) {
            seen.push(s.role.as_str());
        }
    }
    seen.join(", ")
}

/// The run's two model backends: one per step.
pub struct Models {
    /// Plans.
    pub propose: Box<dyn Model>,
    /// Implements and fixes.
    pub implement: Box<dyn Model>,
}

/// The price `model`'s tokens are charged at: `--price-per-mtok`, else the table's.
fn price(cx: &Context, model: &str) -> Option<agent::pricing::Price> {
    match &cx.backend {
        // An external agent pays its own model: bfperf sees no tokens and knows no price.
        Backend::Command(_) => None,
        _ => cx.flags.price_per_mtok.or_else(|| agent::pricing::price_for(model)),
    }
}

fn account(attempt: &mut Attempt, outcome: &agent::Outcome, cx: &Context, model: &str) {
    charge(attempt, &outcome.usage, cx, model);
}

fn charge(attempt: &mut Attempt, usage: &agent::Usage, cx: &Context, model: &str) {
    attempt.tokens.0 += usage.input_tokens;
    attempt.tokens.1 += usage.output_tokens;
    match price(cx, model) {
        Some(p) => attempt.cost_usd += p.cost_usd(usage),
        None => attempt.cost_unknown = true,
    }
}

/// A conversation cut short by Ctrl-C still used the tokens of its finished calls.
fn charge_interrupted<T>(
    attempt: &mut Attempt,
    result: &std::result::Result<T, AgentError>,
    cx: &Context,
    model: &str,
) {
    if let Err(AgentError::Interrupted { usage }) = result {
        charge(attempt, usage, cx, model);
    }
}

fn model_error(e: AgentError) -> Outcome {
    Outcome::ModelError { reason: e.to_string() }
}

#[allow(clippy::too_many_arguments)]
fn attempt_once(
    repo: &Repo,
    cx: &Context,
    cases: &[&Case],
    record: &mut RunRecord,
    earlier: &[RunRecord],
    attempt: &mut Attempt,
    models: &mut Models,
    dir: &Path,
    history: &Path,
    live: Option<&serve::Dashboard>,
    log: &mut transcript::Transcript,
) -> Result<Outcome> {
    let worktree = record.worktree.clone();
    let scope = record.scope.clone();
    let n = attempt.index;
    let label = format!("attempt {n}");
    let live_file = transcript::LiveFile::open(dir);
    let echo = transcript::Echo {
        label: &label,
        verbose: cx.flags.verbose,
        log: live.map(|d| d.log()),
        file: Some(&live_file),
    };
    let old_lines = |p: &str| transcript::file_lines(&worktree, p);
    let step_start = |a: &mut Attempt, step: Step, rec: &RunRecord, log: &transcript::Transcript| -> Result<Instant> {
        a.step = step;
        let mut snapshot = rec.clone();
        let mut a = a.clone();
        a.transcript = log.entries.clone();
        snapshot.attempts.push(a);
        snapshot.save(history)?;
        live.iter().for_each(|d| d.publish(&snapshot));
        Ok(Instant::now())
    };

    // Propose.
    let t = step_start(attempt, Step::Propose, record, log)?;
    // The evidence: the baseline (the branch's last kept state, which the worktree is at) measured and listed.
    let tip = kept_tip(record)?.to_string();
    let base = evidence::Baseline { worktree: &worktree, run_dir: dir, scope: &scope, commit: &tip, cases };
    let evidence = evidence::gather(cx, &base)?;
    // The explorer builds the attempt's tree here: a --host run builds and loads on the host only.
    let explore = cx.machine.is_local().then(|| evidence::ShowContext {
        worktree: worktree.clone(),
        build: dir.join("explore"),
        run_dir: dir.to_owned(),
        sandbox: cx.sandbox.clone(),
    });
    if let Some(ctx) = &explore {
        ctx.install()?;
    }
    let spin = progress::spinner(format!("attempt {n}: proposing"));
    let hints = cx.flags.hint.join("\n");
    let system =
        prompt::system(&worktree, &scope, record, earlier, (!hints.is_empty()).then_some(hints.as_str()), &evidence)?;
    let mut read_tools = evidence::Tools::propose(FileTools::read_only(&worktree)?, &evidence);
    let before = ignored_files(&worktree)?;
    let conv = Conversation {
        system: system.clone(),
        user: prompt::propose(&scope)?,
        max_turns: cx.flags.max_turns,
        effort: cx.flags.effort,
    };
    models.propose.set_step(&agent::StepInfo::propose(&worktree, &scope));
    let proposed = {
        let mut rec = transcript::Recorder::new(&mut read_tools, &old_lines, log, echo, Some(&spin), Step::Propose);
        models.propose.converse(&conv, &mut rec)
    };
    spin.finish_and_clear();
    charge_interrupted(attempt, &proposed, cx, &cx.proposal_model);
    bench_harness::interrupt::check()?;
    attempt.refusals.extend(read_tools.refusals().iter().cloned());
    // Proposing is read-only. Our tools cannot write, but an agent command can: what it
    // changed is out of scope and goes, so it can neither leak into the implementation
    // nor be left in the worktree for the next attempt.
    let touched = union(changed_files(&worktree)?, ignored_changes(&worktree, &before)?);
    if !touched.is_empty() {
        if let Ok(o) = &proposed {
            account(attempt, o, cx, &cx.proposal_model);
            attempt.plan = o.text.trim().to_owned();
        }
        attempt.diff = worktree_diff(&worktree, &ignored_changes(&worktree, &before)?)?;
        reset_worktree(&worktree, None)?;
        return Ok(Outcome::OutOfScope { files: touched });
    }
    let proposed = match proposed {
        Ok(o) => o,
        Err(e) => return Ok(model_error(e)),
    };
    account(attempt, &proposed, cx, &cx.proposal_model);
    attempt.plan = proposed.text.trim().to_owned();
    attempt.thinking = proposed.thinking.clone();
    attempt.timings.push((Step::Propose, t.elapsed().as_secs_f64()));
    // One concrete plan in the asked form; anything else is not a plan.
    if plan_field(&attempt.plan, "TITLE").is_none_or(str::is_empty) {
        return Ok(Outcome::EmptyPlan);
    }
    progress::info(format!("attempt {n}: plan: {}", crate::text::line(attempt.title())));

    // Implement, then validate; failures go back to the implementer.
    let mut failure: Option<validation::Failure> = None;
    // Ignored files the model wrote, over all fix rounds.
    let mut ignored: Vec<String> = vec![];
    loop {
        let before = ignored_files(&worktree)?;
        let t = step_start(attempt, Step::Implement, record, log)?;
        let spin =
            progress::spinner(format!("attempt {n}: implementing{}", if failure.is_some() { " (fixing)" } else { "" }));
        let files = FileTools::new(&worktree, Some(Path::new(&scope)))?;
        let mut tools = evidence::Tools::implement(files, &evidence, explore.clone());
        let user = prompt::implement(
            &scope,
            &attempt.plan,
            failure.as_ref().map(|f| (f.command.as_str(), f.tail.as_str())),
            explore.is_some(),
        )?;
        let conv =
            Conversation { system: system.clone(), user, max_turns: cx.flags.max_turns, effort: cx.flags.effort };
        models.implement.set_step(&agent::StepInfo::implement(&worktree, &scope, &attempt.plan, attempt.fix_rounds));
        let implemented = {
            let mut rec = transcript::Recorder::new(&mut tools, &old_lines, log, echo, Some(&spin), Step::Implement);
            models.implement.converse(&conv, &mut rec)
        };
        spin.finish_and_clear();
        charge_interrupted(attempt, &implemented, cx, &cx.impl_model);
        bench_harness::interrupt::check()?;
        attempt.refusals.extend(tools.refusals().iter().cloned());
        attempt.timings.push((Step::Implement, t.elapsed().as_secs_f64()));
        match implemented {
            Ok(o) => account(attempt, &o, cx, &cx.impl_model),
            Err(e) => {
                reset_worktree(&worktree, None)?;
                return Ok(model_error(e));
            }
        }
        ignored = union(ignored, ignored_changes(&worktree, &before)?);
        let changed = union(changed_files(&worktree)?, ignored.iter().cloned());
        if changed.is_empty() {
            return Ok(Outcome::NoChange);
        }
        let outside: Vec<String> = changed.iter().filter(|p| !in_scope(p, &scope)).cloned().collect();
        if !outside.is_empty() {
            // Only possible through --agent-command: our own tools cannot write there.
            attempt.diff = worktree_diff(&worktree, &ignored)?;
            reset_worktree(&worktree, None)?;
            return Ok(Outcome::OutOfScope { files: outside });
        }
        attempt.diff = worktree_diff(&worktree, &ignored)?;

        let t = step_start(attempt, Step::Validate, record, log)?;
        let spin = progress::spinner(format!("attempt {n}: validating ({})", roles(&cx.validate)));
        let tag = format!("attempt{n}-try{}", attempt.fix_rounds);
        let (build, logs) = (dir.join("build"), dir.join("logs"));
        let commands: Vec<String> = cx.validate.iter().map(|s| s.command.clone()).collect();
        log.progress(&echo, Some(&spin), Step::Validate, format!("validating: {}", commands.join(" · ")));
        let stops = validation::stops(&cx.validate);
        let total = commands.len();
        // Each command as it starts: a test run can take minutes.
        let mut started = |i: usize, c: &str| {
            let what = format!("validate: running {} ({}/{total})", crate::text::line(c), i + 1);
            spin.set_message(format!("attempt {n}: {what}"));
            log.progress(&echo, Some(&spin), Step::Validate, what);
        };
        let results =
            cx.machine.run_commands(&commands, &stops, &worktree, &build, &logs, &tag, &cx.sandbox, &mut started);
        let results = results?;
        for r in &results {
            let how = if r.ok { "ok".to_owned() } else { format!("FAILED (log {})", r.log.display()) };
            log.progress(&echo, Some(&spin), Step::Validate, format!("validate: {} {how}", r.command));
        }
        spin.finish_and_clear();
        attempt.logs.extend(results.iter().map(|r| r.log.clone()));
        attempt.timings.push((Step::Validate, t.elapsed().as_secs_f64()));
        let known = validation::Known { tests: &record.baseline_failures, commands: &record.baseline_failed_commands };
        let (mut recorded, mut failure_now) = validation::judge(&cx.validate, &results, known);
        // Tests that fail now and then (bpfilter's e2e tests, in namespaces) must not reject a
        // good attempt: a test counts as newly failing only if it fails again when its command
        // is run a second time.
        if let Some(f) = failure_now.as_ref().filter(|f| f.role == validation::Role::Test && !f.new_tests.is_empty()) {
            let rerun = cx.machine.run_commands(
                std::slice::from_ref(&f.command),
                &[false],
                &worktree,
                &build,
                &logs,
                &format!("{tag}-rerun"),
                &cx.sandbox,
                &mut |_, c| {
                    let what = format!("validate: running {} again (a test failed once)", crate::text::line(c));
                    log.progress(&echo, Some(&spin), Step::Validate, what)
                },
            )?;
            attempt.logs.extend(rerun.iter().map(|r| r.log.clone()));
            let again = &rerun[0];
            let flaky: Vec<String> = f
                .new_tests
                .iter()
                .filter(|t| again.tests.is_some() && !again.failed_tests.contains(t))
                .cloned()
                .collect();
            if !flaky.is_empty() {
                log.progress(
                    &echo,
                    None,
                    Step::Validate,
                    format!("failed once, passed when run again (not counted): {}", flaky.join(", ")),
                );
                let tests: Vec<String> = record.baseline_failures.iter().cloned().chain(flaky).collect();
                let known = validation::Known { tests: &tests, commands: &record.baseline_failed_commands };
                (recorded, failure_now) = validation::judge(&cx.validate, &results, known);
            }
        }
        log.progress(
            &echo,
            None,
            Step::Validate,
            format!("validation: {}", validation::summary(&recorded, cx.validate.len())),
        );
        attempt.validation = recorded;
        match failure_now {
            None => break,
            Some(f) if attempt.fix_rounds < cx.flags.max_fix_attempts => {
                progress::info(format!(
                    "attempt {n}: {} failed, asking for a fix ({}/{})",
                    f.command,
                    attempt.fix_rounds + 1,
                    cx.flags.max_fix_attempts
                ));
                attempt.fix_rounds += 1;
                failure = Some(f);
            }
            Some(f) => {
                reset_worktree(&worktree, None)?;
                return Ok(match f.role {
                    validation::Role::Build | validation::Role::Format => Outcome::BuildFailed { tail: f.tail },
                    validation::Role::Test => Outcome::TestFailed { tail: f.tail },
                });
            }
        }
    }
    // Style fixes may touch files outside the scope: they are not ours to commit.
    attempt.diff = worktree_diff(&worktree, &ignored)?;

    // Commit the scope only.
    let t = step_start(attempt, Step::Commit, record, log)?;
    let parent = Repository::open(&worktree)?.head()?.peel_to_commit()?.id();
    let why = plan_field(&attempt.plan, "WHY").unwrap_or("");
    let title = plan_field(&attempt.plan, "TITLE").unwrap_or(attempt.title()).lines().next().unwrap_or("").to_owned();
    let commit = commit_scope(&worktree, &scope, &ignored, &title, why)?;
    reset_worktree(&worktree, None)?;
    attempt.commit = Some(commit.to_string());
    attempt.timings.push((Step::Commit, t.elapsed().as_secs_f64()));

    // Evaluate against the parent, interleaved.
    let t = step_start(attempt, Step::Evaluate, record, log)?;
    let attempt_bfcli = cx.machine.bfcli_of(&dir.join("build"));
    let layout = RepoCache { worktrees: dir.join("slots"), builds: dir.join("builds") };
    let parent_rev = Rev::Commit { oid: parent, spec: parent.to_string() };
    let parent_bfcli = match build_rev(&cx.machine, repo, &layout, "parent", &parent_rev, Some(&cx.sandbox)) {
        Ok(p) => p,
        Err(e) => {
            bench_harness::interrupt::check()?;
            attempt.timings.push((Step::Evaluate, t.elapsed().as_secs_f64()));
            reset_worktree(&worktree, Some(parent))?;
            return Ok(Outcome::BenchmarkFailed { reason: format!("{e:#}") });
        }
    };
    // The code first, untimed: an attempt that changed no program is not measured, and
    // `--objective insns` needs the counts only. (Here only: on a --host, the comparison
    // below tells the same from its `same_program`.)
    if cx.machine.is_local() {
        let spin = progress::spinner(format!("attempt {n}: comparing the generated code with its parent's"));
        let compared = code::compare(&parent_bfcli, &attempt_bfcli, cases);
        spin.finish_and_clear();
        let compared = match compared {
            Ok(c) => c,
            Err(e) => {
                bench_harness::interrupt::check()?;
                attempt.timings.push((Step::Evaluate, t.elapsed().as_secs_f64()));
                reset_worktree(&worktree, Some(parent))?;
                return Ok(Outcome::BenchmarkFailed { reason: format!("{e:#}") });
            }
        };
        let delta: i64 = compared.iter().filter_map(|c| c.insns_delta).sum();
        let decided = if code::unchanged(&compared) {
            Some(Outcome::Rejected { reason: keep::NO_CODE_CHANGE.to_owned() })
        } else if cx.flags.objective == Objective::Insns {
            Some(match compared.iter().find_map(|c| c.error.as_ref().map(|e| (&c.case, e))) {
                Some((case, e)) => Outcome::BenchmarkFailed { reason: format!("{case} did not load on one side: {e}") },
                None => match keep::accept_insns(delta) {
                    Ok(()) => Outcome::Kept,
                    Err(reason) => Outcome::Rejected { reason },
                },
            })
        } else {
            None
        };
        if let Some(outcome) = decided {
            attempt.insns_delta = Some(delta);
            attempt.deltas = compared
                .iter()
                .map(|c| CaseDelta {
                    case: c.case.clone(),
                    estimate: None,
                    verdict: match (&c.error, c.same) {
                        (Some(e), _) => format!("failed: {e}"),
                        (None, true) => "same code (not timed)".into(),
                        (None, false) => "changed (not timed)".into(),
                    },
                    insns_delta: c.insns_delta,
                })
                .collect();
            attempt.timings.push((Step::Evaluate, t.elapsed().as_secs_f64()));
            if outcome != Outcome::Kept {
                reset_worktree(&worktree, Some(parent))?;
            }
            return Ok(outcome);
        }
    }
    let evaluated =
        {
            let side = |bfcli: PathBuf, label: String, commit: Oid| {
                let source =
                    SourceInfo { bfcli: bfcli.display().to_string(), commit: Some(commit.to_string()), dirty: false };
                (bfcli, SideInfo { label, source })
            };
            let attempt_side = side(attempt_bfcli.clone(), format!("attempt {n}"), commit);
            let bar = progress::spinner(format!("attempt {n}: measuring against its parent"));
            let mut loaded = 0;
            let c =
                cx.machine.compare(side(parent_bfcli, "parent".into(), parent), attempt_side, cases, cx.config, |p| {
                    match p {
                        bench_harness::engine::Progress::Loading(case) => {
                            loaded += 1;
                            let what = format!("measuring: loading {case} ({loaded}/{})", cases.len());
                            log.progress(&echo, Some(&bar), Step::Evaluate, what);
                        }
                        bench_harness::engine::Progress::Round { case, done, .. } => {
                            bar.set_message(format!(
                                "attempt {n}: measuring against its parent ({done} rounds; {case})"
                            ));
                            if done % 20 == 0 {
                                log.progress(&echo, Some(&bar), Step::Evaluate, format!("measuring: {done} rounds"));
                            }
                        }
                    }
                });
            bar.finish_and_clear();
            c
        };
    attempt.timings.push((Step::Evaluate, t.elapsed().as_secs_f64()));
    let comparison = match evaluated {
        Ok(c) => c,
        Err(e) => {
            bench_harness::interrupt::check()?;
            reset_worktree(&worktree, Some(parent))?;
            return Ok(Outcome::BenchmarkFailed { reason: format!("{e:#}") });
        }
    };
    attempt.geomean = comparison.geomean;
    attempt.insns_delta = Some(comparison.cases.iter().filter_map(|c| c.insns_delta()).sum());
    attempt.deltas = comparison
        .cases
        .iter()
        .map(|c| CaseDelta {
            case: c.name.clone(),
            estimate: c.estimate,
            verdict: crate::report::verdict(c),
            insns_delta: c.insns_delta(),
        })
        .collect();
    let verdict = if comparison.cases.iter().all(|c| c.same_program == Some(true)) {
        Err(keep::NO_CODE_CHANGE.to_owned())
    } else {
        keep::accept(&comparison, cx.flags.objective, cx.flags.max_regression)
    };
    if verdict.is_err() || comparison.errors().next().is_some() {
        reset_worktree(&worktree, Some(parent))?;
    }
    match verdict {
        Ok(()) if comparison.errors().next().is_none() => Ok(Outcome::Kept),
        Ok(()) => Ok(Outcome::BenchmarkFailed { reason: "a case failed or is unsupported on one side".into() }),
        Err(reason) => Ok(Outcome::Rejected { reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_messages_follow_bpfilter_style() {
        let m = commit_message(
            "Hoist the ctx load out of the rule loop.",
            "Every rule reloaded ctx->data; loading it once saves two instructions per rule on the hot path.",
        );
        let mut lines = m.lines();
        assert_eq!(lines.next().unwrap(), "lib: cgen: Hoist the ctx load out of the rule loop");
        assert_eq!(lines.next().unwrap(), "");
        assert!(m.lines().all(|l| l.chars().count() <= 72), "{m}");
        let long = commit_message(&"x".repeat(100), "why");
        assert_eq!(long.lines().next().unwrap().chars().count(), 72);
    }

    #[test]
    fn plan_fields_are_extracted() {
        let plan = "TITLE: drop padding\nWHY: it is dead work\nover two lines\nHOW: edit knobs.h";
        assert_eq!(plan_field(plan, "TITLE"), Some("drop padding"));
        assert_eq!(plan_field(plan, "WHY"), Some("it is dead work\nover two lines"));
        assert_eq!(plan_field(plan, "HOW"), Some("edit knobs.h"));
        assert_eq!(plan_field("nothing", "WHY"), None);
    }

    #[test]
    fn run_ids_are_short_plain_names() {
        for good in ["20261125-221500", "fast", "a.b_c-d", "x", &"a".repeat(MAX_RUN_ID_LEN)] {
            check_run_id(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let long = "a".repeat(MAX_RUN_ID_LEN + 1);
        for bad in ["", "../../x", "/tmp/x", "a/b", ".hidden", "-x", "a..b", "x.", "x.lock", "a b", "é", &long] {
            let err = check_run_id(bad).unwrap_err().to_string();
            assert!(err.contains("is not a valid run id") && err.contains("letters, digits"), "{bad}: {err}");
        }
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A repository with `src/cgen/prog.c`, `README.md` and a `.gitignore` ignoring `build*/` and `*.o`.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q", "-b", "main"]);
        git(p, &["config", "user.email", "t@t.invalid"]);
        git(p, &["config", "user.name", "t"]);
        std::fs::create_dir_all(p.join("src/cgen")).unwrap();
        std::fs::write(p.join("src/cgen/prog.c"), "int x;\n").unwrap();
        std::fs::write(p.join("README.md"), "readme\n").unwrap();
        std::fs::write(p.join(".gitignore"), "build*/\n*.o\n").unwrap();
        git(p, &["add", "-A"]);
        git(p, &["commit", "-q", "-m", "base"]);
        dir
    }

    #[test]
    fn scopes_are_normalised_relative_to_the_tree() {
        let dir = repo();
        let root = dir.path();
        for given in ["src/cgen", "./src/cgen", "src/cgen/", "src/cgen/.", "./src/./cgen//"] {
            assert_eq!(normalize_scope(root, given).unwrap(), "src/cgen", "{given}");
        }
        let absolute = root.join("src/cgen");
        assert_eq!(normalize_scope(root, absolute.to_str().unwrap()).unwrap(), "src/cgen");
        std::os::unix::fs::symlink("src/cgen", root.join("cg")).unwrap();
        assert_eq!(normalize_scope(root, "cg").unwrap(), "src/cgen", "what the diff shows");
        for (bad, why) in [
            (".", "the whole tree"),
            ("./", "the whole tree"),
            ("src/../src/cgen", "'..'"),
            ("../x", "'..'"),
            ("/", "is outside"),
            ("src/nope", "not a directory"),
            ("README.md", "not a directory"),
            (".git", ".git"),
        ] {
            let err = normalize_scope(root, bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn ignored_files_the_model_writes_are_changes_and_are_committed_in_scope() {
        let dir = repo();
        let wt = dir.path();
        // Left by an earlier validation: in the snapshot, so not the model's.
        std::fs::create_dir_all(wt.join("build-v")).unwrap();
        std::fs::write(wt.join("build-v/out"), "v").unwrap();
        let before = ignored_files(wt).unwrap();
        assert_eq!(before.keys().collect::<Vec<_>>(), ["build-v/out"]);
        assert!(ignored_changes(wt, &before).unwrap().is_empty());

        std::fs::write(wt.join("src/cgen/prog.c"), "int y;\n").unwrap();
        std::fs::write(wt.join("src/cgen/table.o"), "generated").unwrap();
        std::fs::create_dir_all(wt.join("build-x")).unwrap();
        std::fs::write(wt.join("build-x/leak"), "outside").unwrap();
        assert_eq!(changed_files(wt).unwrap(), ["src/cgen/prog.c"], "git status alone misses them");
        let ignored = ignored_changes(wt, &before).unwrap();
        assert_eq!(ignored, ["build-x/leak", "src/cgen/table.o"]);
        // Rewriting a file, even to the same size, is a change.
        std::fs::write(wt.join("build-v/out"), "w").unwrap();
        assert_eq!(ignored_changes(wt, &before).unwrap(), ["build-v/out", "build-x/leak", "src/cgen/table.o"]);
        std::fs::write(wt.join("build-v/out"), "v").unwrap();
        std::fs::remove_file(wt.join("build-x/leak")).unwrap();

        let diff = worktree_diff(wt, &ignored).unwrap();
        assert!(diff.contains("table.o"), "the recorded diff shows it:\n{diff}");
        let commit = commit_scope(wt, "src/cgen", &ignored, "use y", "because").unwrap();
        let files = git(wt, &["show", "--name-only", "--format=", &commit.to_string()]);
        assert_eq!(files.lines().collect::<Vec<_>>(), ["src/cgen/prog.c", "src/cgen/table.o"]);
        // The reset leaves no ignored file behind.
        std::fs::write(wt.join("src/cgen/other.o"), "stale").unwrap();
        std::fs::write(wt.join("src/cgen/untracked.c"), "new").unwrap();
        reset_worktree(wt, None).unwrap();
        assert!(!wt.join("src/cgen/untracked.c").exists(), "untracked.c");
        assert!(!wt.join("src/cgen/other.o").exists(), "other.o");
        assert!(!wt.join("build-v").exists(), "build-v");
        assert_eq!(git(wt, &["status", "--porcelain", "--ignored"]), "");
    }

    #[test]
    fn scope_is_a_directory_prefix() {
        assert!(in_scope("src/libbpfilter/cgen/prologue.c", "src/libbpfilter/cgen"));
        assert!(in_scope("src/libbpfilter/cgen/sub/x.c", "src/libbpfilter/cgen/"));
        assert!(!in_scope("src/libbpfilter/cgen2/x.c", "src/libbpfilter/cgen"));
        assert!(!in_scope("README.md", "src/libbpfilter/cgen"));
    }
}
