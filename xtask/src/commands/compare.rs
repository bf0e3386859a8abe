//! `cargo xtask bench-compare`.

use anyhow::Result;
use xtask::flags::CompareFlags;
use xtask::output::{self, Human};
use xtask::session::Session;
use xtask::{compare, report};

/// Compare the two revisions, print the table, write the outputs asked for.
pub fn run(flags: CompareFlags) -> Result<i32> {
    let human =
        Human::new(&[("--json-output", flags.json.json_output.as_deref()), ("--markdown", flags.markdown.as_deref())])?;
    let what = format!("bench-compare {} {}", flags.base, flags.reference);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let comparison = compare::run(&flags, &session)?;
    human.line(report::compare_table(&comparison, xtask::output::color()));
    human.line(report::summary(&comparison).trim_end());
    if flags.show_diff.is_some() {
        let diffs = report::listing_diffs(&comparison);
        if diffs.is_empty() {
            human.line("--show-diff: no program differs between BASE and REF");
        } else {
            human.line(diffs.trim_end());
        }
    }
    if let Some(path) = &flags.json.json_output {
        output::write_output(path, &serde_json::to_vec_pretty(&comparison)?)?;
        human.wrote("JSON", path);
    }
    if let Some(path) = &flags.markdown {
        output::write_output(path, report::markdown(&comparison).as_bytes())?;
        human.wrote("Markdown", path);
    }
    if let Some(path) = &flags.csv {
        output::write_output(path, &report::compare_csv(&comparison)?)?;
        human.wrote("CSV", path);
    }
    if let Some(summary) = output::append_step_summary(&report::markdown(&comparison))? {
        human.line(format!("Markdown appended to ${}: {}", output::STEP_SUMMARY_VAR, summary.display()));
    }
    Ok(compare::exit_code(&comparison, flags.fail_on, flags.fail_on_benchmark_error))
}
