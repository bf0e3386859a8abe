//! `cargo xtask bench-compare`.

use anyhow::Result;
use xtask::compare;
use xtask::flags::CompareFlags;
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;

/// Compare the two revisions, print the table, write the outputs asked for:
/// the JSON and the HTML report always (by default under `<cache>/runs/`).
pub fn run(flags: CompareFlags) -> Result<i32> {
    let human = Human::new(&[
        ("--json-output", flags.json.json_output.as_deref()),
        ("--markdown", flags.markdown.as_deref()),
        ("--csv", flags.csv.as_deref()),
        ("--html", flags.html.as_deref()),
    ])?;
    let what = format!("bench-compare {} {}", flags.base, flags.reference);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let comparison = compare::run(&flags, &session)?;
    let results = Results::Comparison(&comparison);
    let export = |format: Format| exporter(format).export(&results);
    human.line(String::from_utf8_lossy(&export(Format::Terminal { color: output::color() })?));
    if flags.show_diff.is_some() {
        let diffs = xtask::report::listing_diffs(&comparison);
        if diffs.is_empty() {
            human.line("--show-diff: no program differs between BASE and REF");
        } else {
            human.line(diffs.trim_end());
        }
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let runs = session.cache.join("runs");
    let json = flags.json.json_output.clone().unwrap_or_else(|| runs.join(format!("compare-{stamp}.json")));
    output::write_output(&json, &export(Format::Json)?)?;
    human.wrote("JSON", &json);
    let html = flags.html.clone().unwrap_or_else(|| runs.join(format!("compare-{stamp}.html")));
    output::write_output(&html, &export(Format::Html { templates: flags.templates.template.clone() })?)?;
    human.wrote("HTML", &html);
    let markdown = export(Format::Markdown)?;
    if let Some(path) = &flags.markdown {
        output::write_output(path, &markdown)?;
        human.wrote("Markdown", path);
    }
    if let Some(path) = &flags.csv {
        output::write_output(path, &export(Format::Csv)?)?;
        human.wrote("CSV", path);
    }
    if let Some(summary) = output::append_step_summary(&String::from_utf8_lossy(&markdown))? {
        human.line(format!("Markdown appended to ${}: {}", output::STEP_SUMMARY_VAR, summary.display()));
    }
    Ok(compare::exit_code(&comparison, flags.fail.fail_on, flags.fail.fail_on_benchmark_error))
}
