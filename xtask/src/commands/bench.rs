//! `cargo xtask bench`.

use anyhow::Result;
use bench_harness::results::Status;
use bench_harness::suite;
use xtask::flags::BenchFlags;
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;
use xtask::{bench, exit};

/// List the cases, or build and run the suite, print the table and write the results.
pub fn run(flags: BenchFlags) -> Result<i32> {
    if flags.list {
        let cases = suite::suite();
        for case in suite::select(&cases, flags.cases.filter.as_deref()) {
            println!("{:<45} {}", case.name, case.label);
        }
        return Ok(exit::OK);
    }
    let human = Human::new(&flags.output.named())?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut outputs = flags.output.outputs(None, None);
    outputs.check()?;
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, "bench", flags.bfcli.bfcli.is_none())?;
    let results = bench::run(&flags, &session)?;
    let results_kind = Results::Run(&results);
    human.line(String::from_utf8_lossy(&exporter(Format::Terminal { color: output::color() }).export(&results_kind)?));
    // The JSON is always saved: by default under <cache>/runs/.
    outputs.json.get_or_insert_with(|| session.cache.join("runs").join(format!("bench-{stamp}.json")));
    outputs.json_label = "results";
    outputs.write(&results_kind, &human)?;
    let failed = results.cases.iter().filter(|c| matches!(c.status, Status::Failed { .. })).count();
    anyhow::ensure!(failed == 0, "{failed} case(s) failed: their programs returned the wrong verdict or could not run");
    Ok(exit::OK)
}
