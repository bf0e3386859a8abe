//! `cargo xtask bench-history`.

use anyhow::Result;
use xtask::flags::HistoryFlags;
use xtask::history;
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;

/// Measure the range, print the commits and changes, write the reports.
pub fn run(flags: HistoryFlags) -> Result<i32> {
    let human =
        Human::new(&[("--json-output", flags.json.json_output.as_deref()), ("--markdown", flags.markdown.as_deref())])?;
    let what = format!("bench-history {}..{}", flags.since, flags.until);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let cache = session.cache.clone();
    let hist = history::run(&flags, &session)?;
    let results = Results::History(&hist);
    let export = |format: Format| exporter(format).export(&results);
    human.line(String::from_utf8_lossy(&export(Format::Terminal { color: output::color() })?));
    let html = flags.html.clone().unwrap_or_else(|| {
        cache.join("reports").join(format!("history-{}.html", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))
    });
    output::write_output(&html, &export(Format::Html { templates: flags.templates.template.clone() })?)?;
    human.line(format!("report: {}", html.display()));
    if let Some(path) = &flags.json.json_output {
        output::write_output(path, &export(Format::Json)?)?;
        human.wrote("JSON", path);
    }
    let markdown = export(Format::Markdown)?;
    if let Some(path) = &flags.markdown {
        output::write_output(path, &markdown)?;
        human.wrote("Markdown", path);
    }
    if let Some(summary) = output::append_step_summary(&String::from_utf8_lossy(&markdown))? {
        human.line(format!("Markdown appended to ${}: {}", output::STEP_SUMMARY_VAR, summary.display()));
    }
    Ok(history::exit_code(
        &hist,
        flags.fail.fail_on,
        flags.fail.fail_on_benchmark_error,
        flags.fail_on_last_commit_failure,
    ))
}
