//! `cargo xtask`: bfperf's command line. Thin: parsing, dispatch, printing;
//! the work is in the library modules.

use anyhow::{Context as _, Result};
use bench_harness::interleave::CompareConfig;
use bench_harness::results::write_atomic;
use bench_harness::{results::Status, runner::SamplingConfig, suite};
use xtask::flags::*;
use xtask::machine::Machine;
use xtask::remote;
use xtask::session::Session;
use xtask::{bench, compare, exit, history, optimize, report, selfcheck, text};

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
        Err(e) => match exit::finished(&e) {
            // The command ran again inside a systemd slice (--slice); that run printed everything.
            Some(code) => std::process::exit(code),
            None => {
                // Errors quote remote hosts, bfcli and the model: no terminal escapes.
                eprintln!("error: {}", text::block(&format!("{e:#}")));
                std::process::exit(exit::of_error());
            }
        },
    }
}

fn cmd_demo(args: DemoFlags) -> Result<()> {
    let session = Session::local(&args.host, &args.common, "demo")?;
    let cache = &session.cache;
    let demo = xtask::demo::run(cache, true)?;
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

fn cmd_hook(args: HookFlags) -> Result<()> {
    let sources = xtask::session::sources(&args.tree)?;
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

fn cmd_doctor(args: DoctorFlags) -> i32 {
    let checks = xtask::doctor::run(args.tree.sources.as_deref());
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

fn cmd_optimize(args: OptimizeFlags) -> Result<()> {
    let session = Session::enter(&args.host, &args.remote, &args.common, "optimize", true)?;
    let cache = session.cache.clone();
    let config = args.measure.config(CompareConfig::default(), None)?;
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
        sources: args.tree.sources,
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
        filter: args.cases.filter,
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

fn cmd_selfcheck(args: SelfcheckFlags) -> Result<()> {
    let session = Session::local(&args.host, &args.common, "bench-selfcheck")?;
    let cache = session.cache.clone();
    let config = args.quick.base(CompareConfig::default());
    let mut json = serde_json::Map::new();
    if !args.power_only {
        let opts = bench::BenchOptions {
            sources: args.tree.sources.clone(),
            bfcli: args.bfcli.bfcli.clone(),
            filter: args.cases.filter.clone(),
            sampling: SamplingConfig::default(),
            cache: cache.clone(),
            machine: Machine::Local,
        };
        let bfcli = bench_harness::program::Bfcli::new(bench::prepare(&opts)?.0)?;
        eprintln!("A/A: {} comparisons of {} with itself", args.aa_runs, bfcli.path().display());
        let aa = selfcheck::aa(&bfcli, args.cases.filter.as_deref(), args.aa_runs, config, |run, o| {
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
    if let Some(path) = &args.json.json_output {
        write_atomic(path, &serde_json::to_vec_pretty(&json)?)?;
        println!("JSON: {}", path.display());
    }
    Ok(())
}

fn cmd_history(args: HistoryFlags) -> Result<i32> {
    use bench_harness::compare::Change;
    let what = format!("bench-history {}..{}", args.since, args.until);
    let session = Session::enter(&args.host, &args.remote, &args.common, &what, true)?;
    let cache = session.cache.clone();
    // bench-history's own default budget: per pair of consecutive commits.
    let mut config = args.measure.config(CompareConfig { time_budget_s: 60.0, ..CompareConfig::default() }, None)?;
    config.level = history::LEVEL;
    let opts = history::HistoryOptions {
        sources: args.tree.sources,
        since: args.since,
        until: args.until,
        include: args.include,
        retry: args.retry,
        filter: args.cases.filter,
        config,
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
    if let Some(path) = &args.json.json_output {
        write_atomic(path, &serde_json::to_vec_pretty(&hist)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    Ok(history::exit_code(&hist, args.fail_on, args.fail_on_benchmark_error, args.fail_on_last_commit_failure))
}

fn cmd_compare(args: CompareFlags) -> Result<i32> {
    let what = format!("bench-compare {} {}", args.base, args.reference);
    let session = Session::enter(&args.host, &args.remote, &args.common, &what, true)?;
    let config = args.measure.config(CompareConfig::default(), Some(&args.rounds))?;
    let opts = compare::CompareOptions {
        sources: args.tree.sources,
        base: args.base,
        reference: args.reference,
        filter: args.cases.filter,
        config,
        cache: session.cache.clone(),
        machine: session.machine.clone(),
    };
    let comparison = compare::run(&opts)?;
    println!("{}", report::compare_table(&comparison, color()));
    print!("{}", report::summary(&comparison));
    if let Some(path) = &args.json.json_output {
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

fn cmd_bench(args: BenchFlags) -> Result<()> {
    if args.list {
        let cases = suite::suite();
        for case in suite::select(&cases, args.cases.filter.as_deref()) {
            println!("{:<45} {}", case.name, case.label);
        }
        return Ok(());
    }
    let session = Session::enter(&args.host, &args.remote, &args.common, "bench", args.bfcli.bfcli.is_none())?;
    let opts = bench::BenchOptions {
        sources: args.tree.sources,
        bfcli: args.bfcli.bfcli,
        filter: args.cases.filter,
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
    let path = match args.json.json_output {
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
