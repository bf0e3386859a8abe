//! `cargo xtask optimize`: a model proposes one codegen optimization at a
//! time, implements it inside the scope, and the change lands on the run's
//! branch only if it builds, passes the tests (relative to the baseline) and
//! is measurably faster in a paired A/B comparison with its parent.
//!
//! Safety is by construction: the model gets our Rust file tools only (no
//! shell), reads are confined to the worktree and writes to the scope, the
//! scope is enforced on the diff, only scope files are committed, and the
//! user's checkout is never touched (the run has its own worktree and branch).

pub mod html;
pub mod keep;
pub mod prompt;
pub mod record;
pub mod serve;
pub mod validate;

use crate::agent::{self, AgentError, Conversation, Effort, FileTools, Model};
use crate::build::Build;
use crate::compare::{build_rev, select_cases, RepoCache};
use crate::machine::Machine;
use crate::progress;
use crate::sources::Sources;
use crate::worktree::{Repo, Rev};
use anyhow::{bail, Context as _, Result};
use bench_harness::interleave::{CompareConfig, SideInfo};
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

/// Everything `cargo xtask optimize` takes.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    /// The user's checkout.
    pub sources: Option<PathBuf>,
    /// Attempts to make (in this invocation).
    pub iterations: usize,
    /// A hint for the proposals.
    pub hint: Option<String>,
    /// Model id.
    pub model: String,
    /// Thinking effort.
    pub effort: Effort,
    /// Stop before a call would exceed this.
    pub budget_usd: Option<f64>,
    /// Scope directory, relative to the tree.
    pub scope: String,
    /// Objective.
    pub objective: Objective,
    /// Largest per-case significant slowdown accepted, in %.
    pub max_regression_pct: f64,
    /// Continue this run.
    pub resume: Option<String>,
    /// Name of a new run (default: a timestamp).
    pub run_id: Option<String>,
    /// Fix rounds after a validation failure.
    pub max_fix_attempts: usize,
    /// API base URL.
    pub api_base_url: Option<String>,
    /// Backend.
    pub backend: Backend,
    /// Validation commands (`{build}`, `{source}`, `{jobs}` expanded).
    pub validate: Vec<String>,
    /// Case filter.
    pub filter: Option<String>,
    /// Also judge cases flagged use_set / use_log / userspace_only.
    pub include_flagged: bool,
    /// Comparison settings for evaluations.
    pub config: CompareConfig,
    /// Cache directory.
    pub cache: PathBuf,
    /// Where to build, validate and measure.
    pub machine: Machine,
    /// Model requests allowed per conversation.
    pub max_turns: usize,
    /// Serve a live dashboard on this (loopback) address.
    pub serve: Option<std::net::SocketAddr>,
}

fn run_dir(cache: &Path, run_id: &str) -> PathBuf {
    cache.join("optimize").join(run_id)
}

fn history_path(cache: &Path, run_id: &str) -> PathBuf {
    run_dir(cache, run_id).join("history.json")
}

/// The model backend for `opts`, `spent_usd` already spent by the run (a resumed
/// run's budget covers the whole run). The key is read here and never stored elsewhere.
pub fn make_model(opts: &OptimizeOptions, worktree: &Path, spent_usd: f64) -> Result<Box<dyn Model>> {
    let budget = agent::Budget { spent_usd, ..agent::Budget::new(opts.budget_usd) };
    Ok(match &opts.backend {
        Backend::Anthropic => {
            let config = agent::anthropic::AnthropicConfig::new(&opts.model, opts.api_base_url.as_deref());
            Box::new(agent::anthropic::Anthropic::from_env(config)?.with_budget(budget))
        }
        Backend::OpenAi => {
            let base = opts
                .api_base_url
                .clone()
                .context("--backend openai needs --api-base-url (e.g. http://127.0.0.1:8080)")?;
            let config = agent::openai::OpenAiConfig::new(&opts.model, base);
            Box::new(agent::openai::OpenAi::from_env(config)?.with_budget(budget))
        }
        Backend::Command(cmd) => Box::new(agent::command::AgentCommand::new(cmd.clone(), worktree)),
    })
}

/// Start or resume a run and make `opts.iterations` attempts.
pub fn run(opts: &OptimizeOptions) -> Result<RunRecord> {
    let sources = Sources::from_arg_or_env(opts.sources.as_deref())?;
    let repo = Repo::open(sources.root())?;
    let all_cases = suite::suite();
    let mut selected: Vec<&Case> = select_cases(&all_cases, opts.filter.as_deref())?;
    selected.retain(|c| keep::judges(c, opts.include_flagged));
    anyhow::ensure!(
        !selected.is_empty(),
        "no case left to judge (the selected ones are all flagged; see --include-flagged)"
    );

    // Check model access before any slow step (worktree, baseline build).
    if opts.backend == Backend::Anthropic {
        agent::ApiKey::from_env("ANTHROPIC_API_KEY").ok_or(AgentError::MissingApiKey)?;
    }
    let live = opts.serve.map(serve::Dashboard::start).transpose()?;
    if let Some(d) = &live {
        eprintln!("dashboard: {} (stop token: {})", d.url(), d.token());
    }
    let mut record = match &opts.resume {
        Some(id) => resume(&repo, opts, id)?,
        None => start(&repo, opts)?,
    };
    let dir = run_dir(&opts.cache, &record.run_id);
    let history = history_path(&opts.cache, &record.run_id);
    let worktree = record.worktree.clone();
    let mut model = make_model(opts, &worktree, record.spent_usd)?;
    let earlier = earlier_runs(&opts.cache, &record);
    let publish = |r: &RunRecord| live.iter().for_each(|d| d.publish(r));
    publish(&record);

    let first = record.attempts.len() + 1;
    for index in first..first + opts.iterations {
        let mut attempt = Attempt::new(index);
        let started = Instant::now();
        let (m, dash) = (model.as_mut(), live.as_ref());
        let result = attempt_once(&repo, opts, &selected, &mut record, &earlier, &mut attempt, m, &dir, &history, dash);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) if bench_harness::interrupt::requested() => {
                attempt.outcome = Some(Outcome::Interrupted);
                // Cut short after its commit (validating, evaluating): the commit goes too.
                reset_worktree(&worktree, Some(kept_tip(&record)?))?;
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
        eprintln!(
            "attempt {index}: {} — {} ({total_s:.0} s, cost ${:.2}, run ${:.2}; kept {}; cumulative {:+.2} % vs baseline)",
            outcome.name(),
            if attempt.title().is_empty() { "(no plan)" } else { attempt.title() },
            attempt.cost_usd,
            record.spent_usd,
            record.kept() + usize::from(outcome == Outcome::Kept),
            (record.cumulative_ratio - 1.0) * 100.0
        );
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
        record.stopped = Some(format!("{} attempts done", opts.iterations));
    }
    record.save(&history)?;
    write_report(&dir, &record);
    publish(&record);
    Ok(record)
}

fn write_report(dir: &Path, record: &RunRecord) {
    let path = dir.join("report.html");
    if let Err(e) = bench_harness::results::write_atomic(&path, html::render(record).as_bytes()) {
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
fn start(repo: &Repo, opts: &OptimizeOptions) -> Result<RunRecord> {
    let dirty = repo.dirty_files()?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
        let more = if dirty.len() > 10 { format!(" and {} more", dirty.len() - 10) } else { String::new() };
        bail!("the source tree has uncommitted changes ({}{more}): commit or stash them first", shown.join(", "));
    }
    anyhow::ensure!(
        repo.root().join(&opts.scope).is_dir(),
        "the scope {} is not a directory of {}: pass --scope",
        opts.scope,
        repo.root().display()
    );
    let run_id = opts.run_id.clone().unwrap_or_else(|| chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string());
    let branch = format!("optimize/{run_id}");
    let git = repo.git();
    if git.find_branch(&branch, git2::BranchType::Local).is_ok() {
        bail!("the branch {branch} already exists: pass another --run-id, or delete it (git branch -D {branch})");
    }
    let dir = run_dir(&opts.cache, &run_id);
    anyhow::ensure!(
        !dir.exists(),
        "a run {run_id} already exists in {}: pass --resume {run_id} or another --run-id",
        dir.display()
    );
    let head = repo.head()?;
    let worktree = dir.join("worktree");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let b = git.branch(&branch, &git.find_commit(head)?, false)?;
    let mut wopts = git2::WorktreeAddOptions::new();
    wopts.reference(Some(b.get()));
    git.worktree(&format!("bfperf-opt-{run_id}"), &worktree, Some(&wopts))
        .with_context(|| format!("cannot create the worktree {}", worktree.display()))?;
    eprintln!("optimize run {run_id}: branch {branch}, worktree {}", worktree.display());

    let mut record = RunRecord {
        schema: record::SCHEMA.into(),
        run_id: run_id.clone(),
        sources: repo.root().to_owned(),
        branch,
        worktree: worktree.clone(),
        base_commit: head.to_string(),
        scope: opts.scope.clone(),
        model: match &opts.backend {
            Backend::Command(c) => format!("command: {c}"),
            _ => opts.model.clone(),
        },
        objective: format!("{:?}", opts.objective).to_lowercase(),
        baseline_failures: vec![],
        baseline_failed_commands: vec![],
        attempts: vec![],
        spent_usd: 0.0,
        cumulative_ratio: 1.0,
        stopped: None,
    };
    let history = history_path(&opts.cache, &run_id);
    record.save(&history)?;

    let spin = progress::spinner("baseline: configuring and validating (build, style, tests)");
    let (build, logs) = (dir.join("build"), dir.join("logs"));
    let configured = configure(&opts.machine, &worktree, &build, &logs);
    let results =
        configured.and_then(|()| opts.machine.run_commands(&opts.validate, &worktree, &build, &logs, "baseline"));
    spin.finish_and_clear();
    let results = results?;
    if let Some(broken) = results
        .iter()
        .find(|r| !r.ok && validate::classify(&r.command) == validate::Kind::Build && r.failed_tests.is_empty())
    {
        if broken.command == opts.validate[0] {
            bail!(
                "the baseline does not build ({}; log {}): fix it before optimizing",
                broken.command,
                broken.log.display()
            );
        }
    }
    for r in results.iter().filter(|r| !r.ok) {
        record.baseline_failures.extend(r.failed_tests.iter().cloned());
        if r.failed_tests.is_empty() {
            record.baseline_failed_commands.push(r.command.clone());
        }
    }
    if !record.baseline_failures.is_empty() || !record.baseline_failed_commands.is_empty() {
        eprintln!(
            "baseline: already failing (ignored for attempts): {}",
            record
                .baseline_failures
                .iter()
                .chain(&record.baseline_failed_commands)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    reset_worktree(&worktree, None)?;
    record.save(&history)?;
    Ok(record)
}

fn resume(repo: &Repo, opts: &OptimizeOptions, run_id: &str) -> Result<RunRecord> {
    let history = history_path(&opts.cache, run_id);
    let mut record = RunRecord::load(&history)?;
    anyhow::ensure!(
        record.sources == repo.root(),
        "run {run_id} belongs to {}, not {}",
        record.sources.display(),
        repo.root().display()
    );
    anyhow::ensure!(
        record.worktree.is_dir(),
        "the worktree of run {run_id} is gone ({}): start a new run",
        record.worktree.display()
    );
    // An attempt cut short leaves changes or a commit under evaluation: back to the branch's last kept state.
    reset_worktree(&record.worktree, Some(kept_tip(&record)?))?;
    record.stopped = None;
    eprintln!(
        "resuming run {run_id}: {} attempts so far, {} kept, ${:.2} spent",
        record.attempts.len(),
        record.kept(),
        record.spent_usd
    );
    Ok(record)
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
fn configure(machine: &Machine, worktree: &Path, build: &Path, logs: &Path) -> Result<()> {
    if matches!(machine, Machine::Local) && Build::new(worktree, build).is_configured() {
        return Ok(());
    }
    let cmake = ["cmake -S {source} -B {build} -DNO_DOCS=1".to_owned()];
    let results = machine.run_commands(&cmake, worktree, build, logs, "configure")?;
    if let Some(r) = results.iter().find(|r| !r.ok) {
        bail!("cmake failed for the run's worktree on {} (log {}):\n{}", machine.name(), r.log.display(), r.tail);
    }
    Ok(())
}

/// Reset the worktree: to `to` (dropping commits after it) or to its HEAD,
/// removing untracked files. Only ever inside the run's own worktree.
fn reset_worktree(worktree: &Path, to: Option<Oid>) -> Result<()> {
    let wt = Repository::open(worktree)?;
    let target = match to {
        Some(oid) => oid,
        None => wt.head()?.peel_to_commit()?.id(),
    };
    let obj = wt.find_object(target, None)?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.force().remove_untracked(true);
    wt.reset(&obj, git2::ResetType::Hard, Some(&mut co))?;
    Ok(())
}

/// Changed paths in the worktree (tracked and untracked), relative.
fn changed_files(worktree: &Path) -> Result<Vec<String>> {
    let wt = Repository::open(worktree)?;
    let mut o = git2::StatusOptions::new();
    o.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = wt.statuses(Some(&mut o))?;
    let files = statuses.iter().filter_map(|s| s.path().map(str::to_owned)).collect();
    Ok(files)
}

fn in_scope(path: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    path == scope || path.starts_with(&format!("{scope}/"))
}

/// The diff of the worktree against HEAD (untracked included).
fn worktree_diff(worktree: &Path) -> Result<String> {
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
    Ok(out)
}

/// Commit the scope files only, with a message in bpfilter's style.
fn commit_scope(worktree: &Path, scope: &str, title: &str, why: &str) -> Result<Oid> {
    let wt = Repository::open(worktree)?;
    let mut index = wt.index()?;
    for path in changed_files(worktree)?.into_iter().filter(|p| in_scope(p, scope)) {
        if worktree.join(&path).exists() {
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

fn account(attempt: &mut Attempt, outcome: &agent::Outcome, model: &str) {
    attempt.tokens.0 += outcome.usage.input_tokens;
    attempt.tokens.1 += outcome.usage.output_tokens;
    attempt.cost_usd += outcome.usage.cost_usd(model);
}

fn model_error(e: AgentError) -> Outcome {
    Outcome::ModelError { reason: e.to_string() }
}

#[allow(clippy::too_many_arguments)]
fn attempt_once(
    repo: &Repo,
    opts: &OptimizeOptions,
    cases: &[&Case],
    record: &mut RunRecord,
    earlier: &[RunRecord],
    attempt: &mut Attempt,
    model: &mut dyn Model,
    dir: &Path,
    history: &Path,
    live: Option<&serve::Dashboard>,
) -> Result<Outcome> {
    let worktree = record.worktree.clone();
    let scope = record.scope.clone();
    let n = attempt.index;
    let step_start = |a: &mut Attempt, step: Step, rec: &RunRecord| -> Result<Instant> {
        a.step = step;
        let mut snapshot = rec.clone();
        snapshot.attempts.push(a.clone());
        snapshot.save(history)?;
        live.iter().for_each(|d| d.publish(&snapshot));
        Ok(Instant::now())
    };

    // Propose.
    let t = step_start(attempt, Step::Propose, record)?;
    let spin = progress::spinner(format!("attempt {n}: proposing"));
    let system = prompt::system(&worktree, &scope, record, earlier, opts.hint.as_deref())?;
    let mut read_tools = FileTools::read_only(&worktree)?;
    let conv = Conversation {
        system: system.clone(),
        user: prompt::propose(&scope)?,
        max_turns: opts.max_turns,
        effort: opts.effort,
    };
    let proposed = model.converse(&conv, &mut read_tools);
    spin.finish_and_clear();
    bench_harness::interrupt::check()?;
    attempt.refusals.extend(read_tools.refusals().iter().cloned());
    // Proposing is read-only. Our tools cannot write, but an agent command can: what it
    // changed is out of scope and goes, so it can neither leak into the implementation
    // nor be left in the worktree for the next attempt.
    let touched = changed_files(&worktree)?;
    if !touched.is_empty() {
        if let Ok(o) = &proposed {
            account(attempt, o, &opts.model);
            attempt.plan = o.text.trim().to_owned();
        }
        attempt.diff = worktree_diff(&worktree)?;
        reset_worktree(&worktree, None)?;
        return Ok(Outcome::OutOfScope { files: touched });
    }
    let proposed = match proposed {
        Ok(o) => o,
        Err(e) => return Ok(model_error(e)),
    };
    account(attempt, &proposed, &opts.model);
    attempt.plan = proposed.text.trim().to_owned();
    attempt.thinking = proposed.thinking.clone();
    attempt.timings.push((Step::Propose, t.elapsed().as_secs_f64()));
    // One concrete plan in the asked form; anything else is not a plan.
    if plan_field(&attempt.plan, "TITLE").is_none_or(str::is_empty) {
        return Ok(Outcome::EmptyPlan);
    }
    eprintln!("attempt {n}: plan: {}", attempt.title());

    // Implement, then validate; failures go back to the implementer.
    let mut failure: Option<validate::Failure> = None;
    loop {
        let t = step_start(attempt, Step::Implement, record)?;
        let spin =
            progress::spinner(format!("attempt {n}: implementing{}", if failure.is_some() { " (fixing)" } else { "" }));
        let mut tools = FileTools::new(&worktree, Some(Path::new(&scope)))?;
        let user =
            prompt::implement(&scope, &attempt.plan, failure.as_ref().map(|f| (f.command.as_str(), f.tail.as_str())))?;
        let conv = Conversation { system: system.clone(), user, max_turns: opts.max_turns, effort: opts.effort };
        let implemented = model.converse(&conv, &mut tools);
        spin.finish_and_clear();
        bench_harness::interrupt::check()?;
        attempt.refusals.extend(tools.refusals().iter().cloned());
        attempt.timings.push((Step::Implement, t.elapsed().as_secs_f64()));
        match implemented {
            Ok(o) => account(attempt, &o, &opts.model),
            Err(e) => {
                reset_worktree(&worktree, None)?;
                return Ok(model_error(e));
            }
        }
        let changed = changed_files(&worktree)?;
        if changed.is_empty() {
            return Ok(Outcome::NoChange);
        }
        let outside: Vec<String> = changed.iter().filter(|p| !in_scope(p, &scope)).cloned().collect();
        if !outside.is_empty() {
            // Only possible through --agent-command: our own tools cannot write there.
            attempt.diff = worktree_diff(&worktree)?;
            reset_worktree(&worktree, None)?;
            return Ok(Outcome::OutOfScope { files: outside });
        }
        attempt.diff = worktree_diff(&worktree)?;

        let t = step_start(attempt, Step::Validate, record)?;
        let spin = progress::spinner(format!("attempt {n}: validating (build, style, tests)"));
        let tag = format!("attempt{n}-try{}", attempt.fix_rounds);
        let results = opts.machine.run_commands(&opts.validate, &worktree, &dir.join("build"), &dir.join("logs"), &tag);
        spin.finish_and_clear();
        let results = results?;
        attempt.logs.extend(results.iter().map(|r| r.log.clone()));
        attempt.timings.push((Step::Validate, t.elapsed().as_secs_f64()));
        match validate::new_failure(&results, &record.baseline_failures, &record.baseline_failed_commands) {
            None => break,
            Some(f) if attempt.fix_rounds < opts.max_fix_attempts => {
                eprintln!(
                    "attempt {n}: {} failed, asking for a fix ({}/{})",
                    f.command,
                    attempt.fix_rounds + 1,
                    opts.max_fix_attempts
                );
                attempt.fix_rounds += 1;
                failure = Some(f);
            }
            Some(f) => {
                reset_worktree(&worktree, None)?;
                return Ok(match f.kind {
                    validate::Kind::Build => Outcome::BuildFailed { tail: f.tail },
                    validate::Kind::Test => Outcome::TestFailed { tail: f.tail },
                });
            }
        }
    }
    // Style fixes may touch files outside the scope: they are not ours to commit.
    attempt.diff = worktree_diff(&worktree)?;

    // Commit the scope only.
    let t = step_start(attempt, Step::Commit, record)?;
    let parent = Repository::open(&worktree)?.head()?.peel_to_commit()?.id();
    let why = plan_field(&attempt.plan, "WHY").unwrap_or("");
    let title = plan_field(&attempt.plan, "TITLE").unwrap_or(attempt.title()).lines().next().unwrap_or("").to_owned();
    let commit = commit_scope(&worktree, &scope, &title, why)?;
    reset_worktree(&worktree, None)?;
    attempt.commit = Some(commit.to_string());
    attempt.timings.push((Step::Commit, t.elapsed().as_secs_f64()));

    // Evaluate against the parent, interleaved.
    let t = step_start(attempt, Step::Evaluate, record)?;
    let attempt_bfcli = opts.machine.bfcli_of(&dir.join("build"));
    let layout = RepoCache { worktrees: dir.join("slots"), builds: dir.join("builds") };
    let parent_rev = Rev::Commit { oid: parent, spec: parent.to_string() };
    let evaluated = build_rev(&opts.machine, repo, &layout, "parent", &parent_rev).and_then(|parent_bfcli| {
        let side = |bfcli: PathBuf, label: String, commit: Oid| {
            let source =
                SourceInfo { bfcli: bfcli.display().to_string(), commit: Some(commit.to_string()), dirty: false };
            (bfcli, SideInfo { label, source })
        };
        let attempt_side = side(attempt_bfcli.clone(), format!("attempt {n}"), commit);
        let bar = progress::spinner(format!("attempt {n}: measuring against its parent"));
        let c =
            opts.machine.compare(side(parent_bfcli, "parent".into(), parent), attempt_side, cases, opts.config, |_| {});
        bar.finish_and_clear();
        c
    });
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
    let verdict = keep::accept(&comparison, opts.objective, opts.max_regression_pct);
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
    fn scope_is_a_directory_prefix() {
        assert!(in_scope("src/libbpfilter/cgen/prologue.c", "src/libbpfilter/cgen"));
        assert!(in_scope("src/libbpfilter/cgen/sub/x.c", "src/libbpfilter/cgen/"));
        assert!(!in_scope("src/libbpfilter/cgen2/x.c", "src/libbpfilter/cgen"));
        assert!(!in_scope("README.md", "src/libbpfilter/cgen"));
    }
}
