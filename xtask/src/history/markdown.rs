//! `bench-history --markdown`: the significant changes of a history with
//! their commits and intervals, for a pull request or a CI job summary.
//! Commit subjects are outside text: escaped, never Markdown. Case names
//! (the suite's) and commit labels (hex, `wip`) go in code spans as they are.

use super::{History, PointStatus};
use crate::report::delta;
use crate::text;
use bench_harness::engine::Change;
use std::fmt::Write as _;

/// The percentage of a rate or level, without trailing zeros (`5`, `99.84`).
pub fn pct(rate: f64) -> String {
    let s = format!("{:.2}", rate * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The sentence that states how the change list was chosen.
pub fn method(h: &History) -> String {
    format!(
        "false discovery rate {} % (Benjamini–Hochberg over {} case × commit tests; intervals at {} %), |Δ| ≥ {:.1} %",
        pct(h.fdr),
        h.tests,
        pct(h.change_level),
        h.threshold_pct
    )
}

fn word(change: Change) -> &'static str {
    match change {
        Change::Slower => "**slower**",
        Change::Faster => "**faster**",
        Change::NoChange => "no change",
    }
}

/// The Markdown of a history.
pub fn render(h: &History) -> String {
    let mut out = String::new();
    let suite_changed = h.suite_changes();
    let slower = h.changes.iter().any(|c| c.change.change == Change::Slower)
        || h.suite.iter().any(|s| s.change == Change::Slower);
    let icon = if slower {
        "🔴"
    } else if h.changes.is_empty() && suite_changed == 0 {
        "⚪"
    } else {
        "🟢"
    };
    let (first, last) = (h.points.first(), h.points.last());
    let label = |p: Option<&super::Point>| p.map(|p| p.label.clone()).unwrap_or_default();
    let _ = writeln!(
        out,
        "### {icon} bfperf history: {} → {} ({} commits)\n",
        text::markdown(&label(first)),
        text::markdown(&label(last)),
        h.points.len()
    );
    if h.changes.is_empty() && suite_changed > 0 {
        let _ = writeln!(
            out,
            "No single case changed significantly; the suite did, at {suite_changed} commit{} (below).\n",
            if suite_changed == 1 { "" } else { "s" }
        );
    } else if h.changes.is_empty() {
        let _ = writeln!(out, "No significant change.\n");
    } else {
        let _ = writeln!(out, "| commit | subject | case | Δ paired [CI] | verdict |");
        let _ = writeln!(out, "|---|---|---|---:|---|");
        for c in &h.changes {
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | {} | {} |",
                c.commit,
                text::markdown(&c.subject),
                c.case,
                delta(&c.change.estimate),
                word(c.change.change)
            );
        }
        out.push('\n');
    }
    if !h.suite.is_empty() {
        let _ = writeln!(out, "Suite geometric mean per commit ({} % intervals):\n", pct(h.suite_level));
        let _ = writeln!(out, "| commit | subject | Δ suite [CI] | verdict |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for s in &h.suite {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                s.commit,
                text::markdown(&s.subject),
                delta(&s.estimate),
                word(s.change)
            );
        }
        out.push('\n');
    }
    let failed: Vec<&super::Point> =
        h.points.iter().filter(|p| !matches!(p.status, PointStatus::Measured { .. })).collect();
    for p in failed {
        let what = match &p.status {
            PointStatus::BuildFailed { .. } => "does not build",
            PointStatus::UnsupportedTree { .. } => "unsupported tree (predates bpfilter's daemon removal)",
            PointStatus::Missing { .. } => "missing (no shard measured it)",
            PointStatus::Measured { .. } => continue,
        };
        let _ = writeln!(out, "* `{}` {}: {what}", p.label, text::markdown(&p.subject));
    }
    if let Some(note) = h.unsupported_note() {
        let _ = writeln!(out, "\n{}", text::markdown(&note));
    }
    let _ = writeln!(out, "<sub>Changes: {}.</sub>", method(h));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_commits_intervals_and_the_rate() {
        let mut h = crate::output::html::history::tests::synthetic();
        h.fdr = 0.05;
        h.tests = 4;
        h.change_level = 0.9875;
        let md = render(&h);
        assert!(
            md.contains("| `bbbbbbb` | Use \\<script\\>alert\\(1\\)\\<\\/script\\> \\& \\\"friends\\\" | `xdp__ip4` |"),
            "{md}"
        );
        assert!(md.contains("**slower**"), "{md}");
        assert!(md.contains("false discovery rate 5 % (Benjamini–Hochberg over 4 case"), "{md}");
        assert!(md.contains("intervals at 98.75 %"), "{md}");
        assert!(md.contains("does not build"), "{md}");
        assert_eq!(pct(0.05), "5");
        // No case under the rate, but a slower suite: said so, and red.
        h.changes.clear();
        h.suite = vec![super::super::SuiteChange {
            index: 1,
            commit: "bbbbbbb".into(),
            subject: "slower".into(),
            estimate: bench_harness::stats::paired::RatioEstimate {
                ratio: 1.03,
                lo: 1.02,
                hi: 1.04,
                n: 10,
                level: 0.99,
            },
            p_value: 0.001,
            change: Change::Slower,
        }];
        let md = render(&h);
        assert!(md.starts_with("### 🔴"), "{md}");
        assert!(md.contains("No single case changed significantly; the suite did, at"), "{md}");
        assert!(!md.contains("No significant change."), "{md}");
        assert_eq!(pct(0.998_4), "99.84");
    }
}
