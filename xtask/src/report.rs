//! Rendering comparisons: the coloured terminal table and the Markdown for a
//! pull-request comment. Numbers are honest: every Δ comes with its interval.

use bench_harness::compare::{Change, RatioEstimate};
use bench_harness::interleave::{CaseComparison, Comparison};
use bench_harness::results::{Status, Unit};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Color, Table};
use std::fmt::Write as _;

use bench_harness::report::num;

fn unit(u: Unit) -> &'static str {
    match u {
        Unit::NsPerPacket => "ns",
        Unit::Milliseconds => "ms",
    }
}

/// `+3.1 % [+2.2, +4.0]`.
pub fn delta(est: &RatioEstimate) -> String {
    let (lo, hi) = est.ci_pct();
    // Bounds near 0 get more digits: "[+0.0, +2.7]" would hide that 0 is excluded.
    let bound = |v: f64| if v.abs() < 0.1 { format!("{v:+.2}") } else { format!("{v:+.1}") };
    format!("{:+.1} % [{}, {}]", est.delta_pct(), bound(lo), bound(hi))
}

/// The verdict word of a case.
pub fn verdict(c: &CaseComparison) -> String {
    match (&c.base_status, &c.ref_status, c.change) {
        (Status::Ok, Status::Ok, Some(Change::Faster)) => "faster".into(),
        (Status::Ok, Status::Ok, Some(Change::Slower)) => "slower".into(),
        (Status::Ok, Status::Ok, _) => "no change".into(),
        (b, r, _) => {
            let side = |s: &Status| match s {
                Status::Ok => "ok".to_string(),
                Status::Failed { reason } => format!("failed: {reason}"),
                Status::Unsupported { reason } if reason.starts_with("unsupported") => reason.clone(),
                Status::Unsupported { reason } => format!("unsupported: {reason}"),
            };
            format!("BASE {} / REF {}", side(b), side(r))
        }
    }
}

fn signed(v: Option<i64>) -> String {
    match v {
        Some(0) => "=".into(),
        Some(d) => format!("{d:+}"),
        None => String::new(),
    }
}

/// The terminal table.
pub fn compare_table(c: &Comparison, color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header([
        "case",
        "BASE median",
        "REF median",
        "Δ paired [95 % CI]",
        "verdict",
        "rounds",
        "Δ insns",
        "Δ jited B",
    ]);
    for case in &c.cases {
        let med = |v: Option<f64>| v.map(|m| format!("{} {}", num(m), unit(case.unit))).unwrap_or_default();
        let word = verdict(case);
        let mut verdict_cell = Cell::new(&word);
        if color {
            verdict_cell = match case.change {
                _ if !case.is_ok() => verdict_cell.fg(Color::Yellow),
                Some(Change::Faster) => verdict_cell.fg(Color::Green),
                Some(Change::Slower) => verdict_cell.fg(Color::Red),
                _ => verdict_cell,
            };
        }
        t.add_row(vec![
            Cell::new(&case.name),
            Cell::new(med(case.base_median())).set_alignment(CellAlignment::Right),
            Cell::new(med(case.ref_median())).set_alignment(CellAlignment::Right),
            Cell::new(case.estimate.as_ref().map(delta).unwrap_or_default()).set_alignment(CellAlignment::Right),
            verdict_cell,
            Cell::new(case.base_samples.len()).set_alignment(CellAlignment::Right),
            Cell::new(signed(case.insns_delta())).set_alignment(CellAlignment::Right),
            Cell::new(signed(case.jited_delta())).set_alignment(CellAlignment::Right),
        ]);
    }
    t
}

/// The summary lines under the table.
pub fn summary(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "BASE: {}", c.base.label);
    let _ = writeln!(out, "REF:  {}", c.reference.label);
    if let Some(g) = &c.geomean {
        let _ = writeln!(out, "suite geometric mean REF/BASE: {:.4} ({})", g.ratio, delta(g));
    }
    let _ = writeln!(
        out,
        "{} slower, {} faster, {} no change, {} not measured on both sides; threshold {:.1} %, {:.0} % intervals; {:.0} s",
        c.regressions().count(),
        c.improvements().count(),
        c.cases.iter().filter(|x| x.is_ok() && x.change == Some(Change::NoChange)).count(),
        c.errors().count(),
        c.config.threshold_pct,
        c.config.level * 100.0,
        c.wall_time_s
    );
    let _ = writeln!(
        out,
        "Δ is the median of per-round REF/BASE ratios (paired rounds), not the ratio of the two medians shown."
    );
    if c.same_build {
        let _ =
            writeln!(out, "A/A run (same build on both sides): any verdict other than `no change` is a false positive");
    }
    out
}

/// Markdown for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let icon = if c.regressions().next().is_some() {
        "🔴"
    } else if c.improvements().next().is_some() {
        "🟢"
    } else {
        "⚪"
    };
    let _ = writeln!(out, "### {icon} bfperf: `{}` → `{}`\n", c.base.label, c.reference.label);
    if let Some(g) = &c.geomean {
        let _ = writeln!(out, "Suite geometric mean REF/BASE: **{:.4}** ({})\n", g.ratio, delta(g));
    }
    let _ = writeln!(out, "| case | BASE median | REF median | Δ paired [95 % CI] | verdict | Δ insns |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|---:|");
    // Significant changes first: what a reviewer must look at.
    let mut rows: Vec<&CaseComparison> = c.cases.iter().collect();
    rows.sort_by_key(|x| match x.change {
        _ if !x.is_ok() => 1,
        Some(Change::Slower) => 0,
        Some(Change::Faster) => 0,
        _ => 2,
    });
    for x in rows {
        let med = |v: Option<f64>| v.map(|m| format!("{} {}", num(m), unit(x.unit))).unwrap_or_default();
        let word = match x.change {
            Some(Change::Slower) if x.is_ok() => "**slower**".to_string(),
            Some(Change::Faster) if x.is_ok() => "**faster**".to_string(),
            _ => verdict(x),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            x.name,
            med(x.base_median()),
            med(x.ref_median()),
            x.estimate.as_ref().map(delta).unwrap_or_default(),
            word.replace('|', "\\|"),
            signed(x.insns_delta())
        );
    }
    let _ = writeln!(
        out,
        "\n<sub>{} paired ABBA rounds per case at least; verdict needs the {:.0} % interval to exclude 0 and |Δ| ≥ {:.1} %. Host: {} ({}), kernel {}.</sub>",
        c.config.min_rounds,
        c.config.level * 100.0,
        c.config.threshold_pct,
        c.host.hostname,
        c.host.cpu_model,
        c.host.kernel
    );
    out
}
