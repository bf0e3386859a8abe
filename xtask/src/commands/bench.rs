//! `cargo xtask bench`.

use anyhow::Result;
use bench_harness::results::Status;
use bench_harness::suite;
use xtask::flags::BenchFlags;
use xtask::output::{self, Human};
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
    human.line(bench_harness::table::run_table(&results, xtask::output::color()));
    for line in bench_harness::table::floor_lines(&results) {
        human.line(line);
    }
    let commit = results.source.commit.as_deref().map(|c| format!(" at {}", &c[..c.len().min(12)])).unwrap_or_default();
    human.line(format!(
        "{}{commit}: {} in {:.1} s",
        results.source.bfcli,
        bench_harness::table::status_counts(&results),
        results.wall_time_s
    ));
    let path = match flags.json.json_output.clone() {
        Some(p) => p,
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            session.cache.join("runs").join(format!("bench-{stamp}.json"))
        }
    };
    output::write_output(&path, &serde_json::to_vec_pretty(&results)?)?;
    human.wrote("results", &path);
    if let Some(path) = &flags.csv {
        output::write_output(path, &xtask::report::run_csv(&results)?)?;
        human.wrote("CSV", path);
    }
    let failed = results.cases.iter().filter(|c| matches!(c.status, Status::Failed { .. })).count();
    anyhow::ensure!(failed == 0, "{failed} case(s) failed: their programs returned the wrong verdict or could not run");
    Ok(exit::OK)
}
