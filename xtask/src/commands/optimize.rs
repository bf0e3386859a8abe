//! `cargo xtask optimize`.

use anyhow::Result;
use bench_harness::interleave::CompareConfig;
use xtask::flags::OptimizeFlags;
use xtask::session::Session;
use xtask::{exit, optimize, text};

/// Run (or resume) the loop and print its attempts.
pub fn run(flags: OptimizeFlags) -> Result<i32> {
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, "optimize", true)?;
    let cache = session.cache.clone();
    let config = flags.measure.config(CompareConfig::default(), None)?;
    let backend = match (&flags.agent_command, flags.backend.as_str()) {
        (Some(cmd), _) => optimize::Backend::Command(cmd.clone()),
        (None, "anthropic") => optimize::Backend::Anthropic,
        (None, "openai") => optimize::Backend::OpenAi,
        (None, other) => anyhow::bail!("--backend {other}: use anthropic or openai (or --agent-command)"),
    };
    let validate = if flags.validate.is_empty() {
        xtask::validation::BPFILTER_COMMANDS.iter().map(|s| s.to_string()).collect()
    } else {
        flags.validate
    };
    let opts = optimize::OptimizeOptions {
        sources: flags.tree.sources,
        iterations: flags.iterations,
        hint: flags.hint,
        model: flags.model,
        effort: flags.effort,
        budget_usd: flags.budget_usd,
        scope: flags.scope,
        objective: flags.objective,
        max_regression_pct: flags.max_regression,
        resume: flags.resume,
        run_id: flags.run_id,
        max_fix_attempts: flags.max_fix_attempts,
        api_base_url: flags.api_base_url,
        backend,
        validate,
        filter: flags.cases.filter,
        include_flagged: flags.include_flagged,
        config,
        cache: cache.clone(),
        machine: session.machine.clone(),
        max_turns: flags.max_turns,
        serve: flags.serve,
        sandbox: xtask::sandbox::Policy { confine: !flags.no_sandbox, secret_names: flags.secret_env, helper: None },
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
    Ok(exit::OK)
}
