//! `cargo xtask optimize`.

use anyhow::Result;
use xtask::flags::OptimizeFlags;
use xtask::session::Session;
use xtask::{exit, optimize, text};

/// Run (or resume) the loop and print its attempts.
pub fn run(flags: OptimizeFlags) -> Result<i32> {
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, "optimize", true)?;
    let cache = session.cache.clone();
    let cx = optimize::Context::new(flags, cache.clone(), session.machine.clone())?;
    let record = optimize::run(&cx)?;
    println!(
        "run {}: {} attempts, {} kept, cumulative {:+.2} % vs baseline, {} spent ({})",
        record.run_id,
        record.attempts.len(),
        record.kept(),
        (record.cumulative_ratio - 1.0) * 100.0,
        optimize::record::usd(record.spent_usd, record.cost_unknown()),
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
