//! `cargo xtask demo`.

use anyhow::Result;
use xtask::flags::DemoFlags;
use xtask::session::Session;
use xtask::{exit, report, text};

/// Run the demo and print what it shows.
pub fn run(flags: DemoFlags) -> Result<i32> {
    let session = Session::local(&flags.host, &flags.common, "demo")?;
    let cache = &session.cache;
    let demo = xtask::demo::run(&session, true)?;
    println!("── bench-compare HEAD~1 HEAD (minifilter: the second commit pads every prologue) ──");
    println!("{}", report::compare_table(&demo.comparison, xtask::output::color()));
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
    Ok(exit::OK)
}
