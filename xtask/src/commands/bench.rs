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
    let human = Human::new(&[("--json-output", flags.json.json_output.as_deref()), ("--csv", flags.csv.as_deref())])?;
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, "bench", flags.bfcli.bfcli.is_none())?;
    let results = bench::run(&flags, &session)?;
    let export = |format: Format| exporter(format).export(&Results::Run(&results));
    human.line(String::from_utf8_lossy(&export(Format::Terminal { color: output::color() })?));
    let path = match flags.json.json_output.clone() {
        Some(p) => p,
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            session.cache.join("runs").join(format!("bench-{stamp}.json"))
        }
    };
    output::write_output(&path, &export(Format::Json)?)?;
    human.wrote("results", &path);
    if let Some(path) = &flags.csv {
        output::write_output(path, &export(Format::Csv)?)?;
        human.wrote("CSV", path);
    }
    let failed = results.cases.iter().filter(|c| matches!(c.status, Status::Failed { .. })).count();
    anyhow::ensure!(failed == 0, "{failed} case(s) failed: their programs returned the wrong verdict or could not run");
    Ok(exit::OK)
}
