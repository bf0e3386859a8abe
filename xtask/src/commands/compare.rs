//! `cargo xtask bench-compare`.

use anyhow::Result;
use xtask::compare;
use xtask::flags::CompareFlags;
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;

/// Compare the two revisions, print the table, write the outputs asked for:
/// the JSON and the HTML report always (by default under `<cache>/runs/`).
pub fn run(flags: CompareFlags) -> Result<i32> {
    let human = Human::new(&flags.output.named())?;
    flags.output.outputs(None, None).check()?;
    let what = format!("bench-compare {} {}", flags.base, flags.reference);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let comparison = compare::run(&flags, &session)?;
    let results = Results::Comparison(&comparison);
    human.line(String::from_utf8_lossy(&exporter(Format::Terminal { color: output::color() }).export(&results)?));
    if flags.show_diff.is_some() {
        let diffs = xtask::report::listing_diffs(&comparison);
        if diffs.is_empty() {
            human.line("--show-diff: no program differs between BASE and REF");
        } else {
            human.line(diffs.trim_end());
        }
    }
    // The JSON and the HTML are always saved: by default under <cache>/runs/, named by the same time.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let runs = session.cache.join("runs");
    let outputs = flags
        .output
        .outputs(Some(runs.join(format!("compare-{stamp}.json"))), Some(runs.join(format!("compare-{stamp}.html"))));
    outputs.write(&results, &human)?;
    Ok(compare::exit_code(&comparison, flags.fail.fail_on, flags.fail.fail_on_benchmark_error))
}
