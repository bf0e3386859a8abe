//! Human-readable rendering of results: the terminal table of one run.

use crate::results::{RunResults, Status, Unit};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Color, Table};

/// A value with about three significant digits (`164`, `36.8`, `2.07`).
pub fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

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
                let unit = match case.unit {
                    Unit::NsPerPacket => "ns/pkt",
                    Unit::Milliseconds => "ms",
                };
                row.push(Cell::new(format!("{} {unit}", num(s.median))).set_alignment(CellAlignment::Right));
                row.push(Cell::new(format!("{:.1} %", s.spread_pct())).set_alignment(CellAlignment::Right));
                row.push(Cell::new(format!("{} … {}", num(s.min), num(s.max))).set_alignment(CellAlignment::Right));
                row.push(Cell::new(s.n).set_alignment(CellAlignment::Right));
            }
            (Status::Ok, None) => row.extend((0..4).map(|_| Cell::new("-"))),
            (Status::Failed { reason }, _) => {
                let c = Cell::new(format!("FAILED: {reason}"));
                row.push(if color { c.fg(Color::Red) } else { c });
                row.extend((0..3).map(|_| Cell::new("")));
            }
            (Status::Unsupported { reason }, _) => {
                let c = Cell::new(format!("unsupported: {reason}"));
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
