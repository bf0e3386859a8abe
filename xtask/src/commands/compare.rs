//! `cargo xtask bench-compare`.

use anyhow::{Context as _, Result};
use bench_harness::results::write_atomic;
use xtask::flags::CompareFlags;
use xtask::session::Session;
use xtask::{compare, report};

/// Compare the two revisions, print the table, write the outputs asked for.
pub fn run(flags: CompareFlags) -> Result<i32> {
    let what = format!("bench-compare {} {}", flags.base, flags.reference);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let comparison = compare::run(&flags, &session)?;
    println!("{}", report::compare_table(&comparison, super::color()));
    print!("{}", report::summary(&comparison));
    if let Some(path) = &flags.json.json_output {
        let json = serde_json::to_vec_pretty(&comparison)?;
        write_atomic(path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    if let Some(path) = &flags.markdown {
        write_atomic(path, report::markdown(&comparison).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("Markdown: {}", path.display());
    }
    Ok(compare::exit_code(&comparison, flags.fail_on, flags.fail_on_benchmark_error))
}
