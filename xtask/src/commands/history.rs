//! `cargo xtask bench-history`.

use anyhow::{Context as _, Result};
use bench_harness::engine::Change;
use bench_harness::results::write_atomic;
use xtask::flags::HistoryFlags;
use xtask::output::{self, Human};
use xtask::session::Session;
use xtask::{history, report, text};

/// Measure the range, print the commits and changes, write the reports.
pub fn run(flags: HistoryFlags) -> Result<i32> {
    let human =
        Human::new(&[("--json-output", flags.json.json_output.as_deref()), ("--markdown", flags.markdown.as_deref())])?;
    let what = format!("bench-history {}..{}", flags.since, flags.until);
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let cache = session.cache.clone();
    let hist = history::run(&flags, &session)?;
    for p in &hist.points {
        let state = match &p.status {
            history::PointStatus::Measured { cached: true } => "cached".to_string(),
            history::PointStatus::Measured { cached: false } => "measured".to_string(),
            history::PointStatus::BuildFailed { .. } => "BUILD FAILED".to_string(),
            history::PointStatus::UnsupportedTree { .. } => "unsupported tree".to_string(),
        };
        human.line(format!("{:<12} {:<9} {}", p.label, state, text::line(&p.subject)));
    }
    if let Some(note) = hist.unsupported_note() {
        human.line(note);
    }
    for s in &hist.suite {
        let mark = match s.change {
            Change::Slower => "slower",
            Change::Faster => "faster",
            Change::NoChange => "",
        };
        human.line(format!(
            "{mark:>6} {:<42} at {} {}: {}",
            "suite",
            s.commit,
            text::line(&s.subject),
            report::delta(&s.estimate)
        ));
    }
    if hist.changes.is_empty() {
        human.line(format!("no significant change along {} commits", hist.points.len()));
    }
    for c in &hist.changes {
        let word = if c.change.change == Change::Slower { "slower" } else { "faster" };
        let subject = text::line(&c.subject);
        human.line(format!(
            "{word:>6} {:<42} at {} {subject}: {}",
            c.case,
            c.commit,
            report::delta(&c.change.estimate)
        ));
    }
    human.line(format!("changes: {}", history::markdown::method(&hist)));
    let html = flags.html.unwrap_or_else(|| {
        cache.join("reports").join(format!("history-{}.html", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))
    });
    write_atomic(&html, history::html::render(&hist).as_bytes())
        .with_context(|| format!("cannot write {}", html.display()))?;
    human.line(format!("report: {}", html.display()));
    if let Some(path) = &flags.json.json_output {
        output::write_output(path, &serde_json::to_vec_pretty(&hist)?)?;
        human.wrote("JSON", path);
    }
    if let Some(path) = &flags.markdown {
        output::write_output(path, history::markdown::render(&hist).as_bytes())?;
        human.wrote("Markdown", path);
    }
    if let Some(summary) = output::append_step_summary(&history::markdown::render(&hist))? {
        human.line(format!("Markdown appended to ${}: {}", output::STEP_SUMMARY_VAR, summary.display()));
    }
    Ok(history::exit_code(&hist, flags.fail_on, flags.fail_on_benchmark_error, flags.fail_on_last_commit_failure))
}
