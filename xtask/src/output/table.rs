//! The terminal rendering of one run (`bench`): its table, the floors and
//! the status counts.

use super::format::{num, unit};
use bench_harness::results::{RunResults, Status};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Color, Table};

/// The table of one run: per case the median and spread, the exact program
/// metrics and the cost over the empty program of its flavor.
pub fn run_table(results: &RunResults, color: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if !color {
        table.force_no_tty();
    } else {
        table.enforce_styling();
    }
    table.set_header(["case", "median", "± MAD", "min … max", "n", "insns", "jited B", "verified", "over floor"]);
    for case in &results.cases {
        let mut row = vec![Cell::new(&case.name)];
        match (&case.status, case.summary) {
            (Status::Ok, Some(s)) => {
                row.push(
                    Cell::new(format!("{} {}", num(s.median), unit(case.unit))).set_alignment(CellAlignment::Right),
                );
                row.push(Cell::new(format!("{:.1} %", s.spread_pct())).set_alignment(CellAlignment::Right));
                row.push(Cell::new(format!("{} … {}", num(s.min), num(s.max))).set_alignment(CellAlignment::Right));
                row.push(Cell::new(s.n).set_alignment(CellAlignment::Right));
            }
            (Status::Ok, None) => row.extend((0..4).map(|_| Cell::new("-"))),
            (Status::Failed { reason }, _) => {
                let c = Cell::new(format!("FAILED: {}", crate::text::line(reason)));
                row.push(if color { c.fg(Color::Red) } else { c });
                row.extend((0..3).map(|_| Cell::new("")));
            }
            (Status::Unsupported { reason }, _) => {
                let c = Cell::new(format!("unsupported: {}", crate::text::line(reason)));
                row.push(if color { c.fg(Color::Yellow) } else { c });
                row.extend((0..3).map(|_| Cell::new("")));
            }
        }
        match case.metrics {
            Some(m) => {
                row.push(Cell::new(m.xlated_insns).set_alignment(CellAlignment::Right));
                row.push(Cell::new(m.jited_bytes).set_alignment(CellAlignment::Right));
                row.push(Cell::new(m.verified_insns).set_alignment(CellAlignment::Right));
            }
            None => row.extend((0..3).map(|_| Cell::new(""))),
        }
        row.push(match case.cost_over_floor() {
            Some(c) if case.status == Status::Ok => {
                Cell::new(format!("+{} ns", num(c))).set_alignment(CellAlignment::Right)
            }
            _ => Cell::new(""),
        });
        table.add_row(row);
    }
    table
}

/// One line per empty-program floor, e.g. `floor xdp/local_ip6_tcp: 9.8 ns/pkt (2 insns)`.
pub fn floor_lines(results: &RunResults) -> Vec<String> {
    results
        .floors
        .iter()
        .map(|f| {
            format!(
                "floor {}/{}: {} ns/pkt ± {:.1} % ({} insns)",
                f.flavor,
                f.packet,
                num(f.summary.median),
                f.summary.spread_pct(),
                f.metrics.xlated_insns
            )
        })
        .collect()
}

/// How the run's chain-load cases were timed ([`super::format::load_method_lines`]).
pub fn load_methods(results: &RunResults) -> Vec<String> {
    super::format::load_method_lines(results.cases.iter().map(|c| (c.name.as_str(), c.unit, c.load_method)))
}

/// `N ok, N failed, N unsupported`.
pub fn status_counts(results: &RunResults) -> String {
    let count = |f: fn(&Status) -> bool| results.cases.iter().filter(|c| f(&c.status)).count();
    format!(
        "{} ok, {} failed, {} unsupported",
        count(|s| matches!(s, Status::Ok)),
        count(|s| matches!(s, Status::Failed { .. })),
        count(|s| matches!(s, Status::Unsupported { .. }))
    )
}

/// The whole terminal output of a run: the table, the floors, and the line
/// naming the build with the status counts and the time.
pub fn run(results: &RunResults, color: bool) -> String {
    let mut out = run_table(results, color).to_string();
    for line in floor_lines(results).into_iter().chain(load_methods(results)) {
        out.push('\n');
        out.push_str(&line);
    }
    let commit = results.source.commit.as_deref().map(|c| format!(" at {}", &c[..c.len().min(12)])).unwrap_or_default();
    out.push_str(&format!(
        "\n{}{commit}: {} in {:.1} s",
        crate::text::line(&results.source.bfcli),
        status_counts(results),
        results.wall_time_s
    ));
    out
}

/// A run as a Markdown table: per case its median with the spread, or why it
/// was not measured, and the program's instruction count.
pub fn run_markdown(results: &RunResults) -> String {
    let mut out = String::from("| case | median | ± MAD | n | insns |\n|---|---:|---:|---:|---:|\n");
    for case in &results.cases {
        let insns = case.metrics.map(|m| m.xlated_insns.to_string()).unwrap_or_default();
        let row = match (&case.status, case.summary) {
            (Status::Ok, Some(s)) => {
                format!("{} {} | {:.1} % | {}", num(s.median), unit(case.unit), s.spread_pct(), s.n)
            }
            (status, _) => {
                let (word, reason) = super::format::status_fields(status);
                format!("{word}: {} | | ", crate::text::markdown(&reason))
            }
        };
        out.push_str(&format!("| `{}` | {row} | {insns} |\n", case.name));
    }
    out.push_str(&format!("\n{}\n", status_counts(results)));
    for line in load_methods(results) {
        out.push_str(&format!("\n{}\n", crate::text::markdown(&line)));
    }
    out
}

/// A history's terminal lines: each commit with its state, then each
/// significant change with its interval (or that there was none).
pub fn history(h: &crate::history::History) -> String {
    use crate::history::PointStatus;
    let mut lines = vec![];
    for p in &h.points {
        let state = match &p.status {
            PointStatus::Measured { cached: true } => "cached",
            PointStatus::Measured { cached: false } => "measured",
            PointStatus::BuildFailed { .. } => "BUILD FAILED",
            PointStatus::UnsupportedTree { .. } => "unsupported tree",
            PointStatus::Missing { .. } => "missing",
        };
        lines.push(format!("{:<12} {:<9} {}", p.label, state, crate::text::line(&p.subject)));
    }
    if let Some(note) = h.unsupported_note() {
        lines.push(note);
    }
    for s in &h.suite {
        let mark = match s.change {
            bench_harness::engine::Change::NoChange => "",
            change => super::format::change_word(change),
        };
        lines.push(format!(
            "{mark:>6} {:<42} at {} {}: {}",
            "suite",
            s.commit,
            crate::text::line(&s.subject),
            super::format::delta(&s.estimate)
        ));
    }
    let suite_changed = h.suite_changes();
    if h.changes.is_empty() && suite_changed > 0 {
        lines.push(format!(
            "no single case changed significantly along {} commits (threshold {:.1} %); the suite did, above",
            h.points.len(),
            h.threshold_pct
        ));
    } else if h.changes.is_empty() {
        lines.push(format!(
            "no significant change along {} commits (threshold {:.1} %)",
            h.points.len(),
            h.threshold_pct
        ));
    }
    for c in &h.changes {
        lines.push(format!(
            "{:>6} {:<42} at {} {}: {}",
            super::format::change_word(c.change.change),
            c.case,
            c.commit,
            crate::text::line(&c.subject),
            super::format::delta(&c.change.estimate)
        ));
    }
    lines.push(format!("changes: {}", crate::history::markdown::method(h)));
    lines.join("\n")
}

/// An optimize run's terminal lines: one per attempt (outcome, suite Δ,
/// title), then the cumulative Δ.
pub fn optimize(r: &crate::optimize::record::RunRecord) -> String {
    let mut lines = vec![];
    for a in &r.attempts {
        let outcome = a.outcome.as_ref().map(|o| o.name()).unwrap_or("running");
        let suite = a.geomean.map(|g| super::format::delta(&g)).unwrap_or_default();
        lines.push(format!("#{:<3} {outcome:<17} {suite:<24} {}", a.index, crate::text::line(a.title())));
    }
    lines.push(format!(
        "{} attempt(s), {} kept: cumulative {} vs the baseline",
        r.attempts.len(),
        r.kept(),
        super::format::pct((r.cumulative_ratio - 1.0) * 100.0)
    ));
    lines.join("\n")
}

/// An optimize run as Markdown (`--markdown`, the job summary): the run, its
/// cumulative Δ and cost, then one row per attempt. The model's titles and
/// the stop reason are outside text: every punctuation character escaped.
pub fn optimize_markdown(r: &crate::optimize::record::RunRecord) -> String {
    use crate::text::markdown;
    let mut out = format!(
        "### bfperf optimize `{}`\n\n{} attempt(s), {} kept: cumulative **{}** vs the baseline (negative is faster); \
         branch to merge `{}`; {} spent{}\n\n",
        markdown(&r.run_id),
        r.attempts.len(),
        r.kept(),
        super::format::pct((r.cumulative_ratio - 1.0) * 100.0),
        markdown(&r.branch),
        crate::optimize::record::usd(r.spent_usd, r.cost_unknown()),
        r.stopped.as_deref().map(|s| format!("; stopped: {}", markdown(s))).unwrap_or_default(),
    );
    if r.attempts.is_empty() {
        out.push_str("No attempt yet.\n");
        return out;
    }
    out.push_str("| # | outcome | title | suite Δ [CI] | insns Δ | commit |\n|---:|---|---|---:|---:|---|\n");
    for a in &r.attempts {
        let outcome = a.outcome.as_ref().map(|o| o.name()).unwrap_or("running");
        let suite = a.geomean.map(|g| super::format::delta(&g)).unwrap_or_default();
        let commit = a.commit.as_deref().map(|c| format!("`{}`", &c[..c.len().min(12)])).unwrap_or_default();
        out.push_str(&format!(
            "| {} | {outcome} | {} | {suite} | {} | {commit} |\n",
            a.index,
            markdown(a.title()),
            super::format::signed(a.insns_delta),
        ));
    }
    out
}
