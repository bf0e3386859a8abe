//! `cargo xtask bench-history`.

use anyhow::Result;
use xtask::flags::HistoryFlags;
use xtask::history;
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;

/// Measure the range, print the commits and changes, write the reports.
pub fn run(flags: HistoryFlags) -> Result<i32> {
    let human = Human::new(&flags.output.named())?;
    flags.output.outputs(None, None).check()?;
    let what = format!("bench-history {}..{}", flags.since, flags.until);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let hist = history::run(&flags, &session)?;
    let results = Results::History(&hist);
    human.line(String::from_utf8_lossy(&exporter(Format::Terminal { color: output::color() }).export(&results)?));
    // The HTML report is always saved: by default under <cache>/reports/.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut outputs =
        flags.output.outputs(None, Some(session.cache.join("reports").join(format!("history-{stamp}.html"))));
    outputs.html_label = "report";
    outputs.write(&results, &human)?;
    Ok(history::exit_code(
        &hist,
        flags.fail.fail_on,
        flags.fail.fail_on_benchmark_error,
        flags.fail_on_last_commit_failure,
    ))
}
