//! `cargo xtask optimize`.

use anyhow::Result;
use xtask::flags::OptimizeFlags;
use xtask::output::{Human, Results};
use xtask::session::Session;
use xtask::{exit, optimize, text};

/// Run (or resume) the loop and print its attempts.
pub fn run(flags: OptimizeFlags) -> Result<i32> {
    let output = flags.output.clone();
    let human = Human::new(&output.named())?;
    output.outputs(None, None).check()?;
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, "optimize", true)?;
    let cache = session.cache.clone();
    let cx = optimize::Context::new(flags, cache.clone(), session.machine.clone())?;
    let record = optimize::run(&cx)?;
    human.line(format!(
        "run {}: {} attempts, {} kept, cumulative {:+.2} % vs baseline, {} spent ({})",
        record.run_id,
        record.attempts.len(),
        record.kept(),
        (record.cumulative_ratio - 1.0) * 100.0,
        optimize::record::usd(record.spent_usd, record.cost_unknown()),
        text::line(record.stopped.as_deref().unwrap_or(""))
    ));
    for a in &record.attempts {
        let title = text::line(a.title());
        human.line(format!(
            "  {:>2}. {:<16} {title}",
            a.index,
            a.outcome.as_ref().map(|o| o.name()).unwrap_or("running")
        ));
    }
    let dir = cache.join("optimize").join(&record.run_id);
    human.line(format!("branch to merge: {} (worktree {})", record.branch, record.worktree.display()));
    human.line(format!("history: {}", dir.join("history.json").display()));
    // report.html was written as the run went (built-in templates); written again through the
    // output layer with --template, or to --html instead.
    let mut outputs = output.outputs(None, Some(dir.join("report.html")));
    outputs.html_label = "report";
    outputs.write(&Results::Optimize(&record), &human)?;
    Ok(exit::OK)
}

/// `$BFPERF_SHOW CASE` (hidden `optimize-show`): build the attempt's tree and
/// print the case's program against the baseline's; the build's or the
/// load's error instead, exit code 1.
pub fn show(args: optimize::evidence::ShowArgs) -> Result<i32> {
    let ctx = optimize::evidence::ShowContext::load(&args.context)?;
    match optimize::evidence::show(&ctx, &args.case) {
        Ok(text) => {
            print!("{text}");
            Ok(exit::OK)
        }
        Err(message) => anyhow::bail!("{message}"),
    }
}
