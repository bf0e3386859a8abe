//! Rendering comparisons: the coloured terminal table and the Markdown for a
//! pull-request comment. Numbers are honest: every Δ comes with its interval.

use bench_harness::engine::Change;
use bench_harness::engine::{CaseComparison, Comparison};
use bench_harness::results::{RunResults, Status};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Color, Table};
use std::fmt::Write as _;

pub use super::format::delta;
use super::format::{num, signed, status_fields, unit, unit_code};
use crate::text;

/// The verdict word of a case: `no change` states what its interval rules
/// out (`no change (< ±1.8 %)`); identical programs are `same program`.
pub fn verdict(c: &CaseComparison) -> String {
    match (&c.base_status, &c.ref_status, c.change) {
        _ if c.untimed_same_program() => super::format::case_word(c),
        (Status::Ok, Status::Ok, _) => super::format::case_word(c),
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
        // A failure's reason is bfcli's own text.
        let word = verdict(case);
        let mut verdict_cell = Cell::new(text::line(&word));
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
    // The labels hold commit subjects: anyone's text.
    let _ = writeln!(out, "BASE: {}", text::line(&c.base.label));
    let _ = writeln!(out, "REF:  {}", text::line(&c.reference.label));
    if let Some(g) = &c.geomean {
        let _ = writeln!(out, "suite geometric mean REF/BASE: {:.4} ({})", g.ratio, delta(g));
    }
    let _ = writeln!(
        out,
        "{} slower, {} faster, {} no change, {} same program, {} not measured on both sides; threshold {:.1} %, {:.0} % intervals; {:.0} s",
        c.regressions().count(),
        c.improvements().count(),
        c.cases.iter().filter(|x| x.is_ok() && x.change == Some(Change::NoChange)).count(),
        c.cases.iter().filter(|x| x.untimed_same_program()).count(),
        c.errors().count(),
        c.config.threshold_pct,
        c.config.level * 100.0,
        c.wall_time_s
    );
    let _ = writeln!(
        out,
        "Δ is the median of per-round REF/BASE ratios (paired rounds), not the ratio of the two medians shown."
    );
    for line in load_methods(c) {
        let _ = writeln!(out, "{line}");
    }
    if c.same_build {
        let _ =
            writeln!(out, "A/A run (same build on both sides): any verdict other than `no change` is a false positive");
    }
    out
}

/// How the comparison's chain-load cases were timed ([`super::format::load_method_lines`]).
pub fn load_methods(c: &Comparison) -> Vec<String> {
    super::format::load_method_lines(c.cases.iter().map(|x| (x.name.as_str(), x.unit, x.load_method)))
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
    // Commit subjects, bfcli's messages and the host's names are text, never Markdown.
    let _ = writeln!(
        out,
        "### {icon} bfperf: {} → {}\n",
        text::markdown(&c.base.label),
        text::markdown(&c.reference.label)
    );
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
            Some(Change::Slower | Change::Faster) if x.is_ok() => format!("**{}**", text::markdown(&verdict(x))),
            _ => text::markdown(&verdict(x)),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            x.name,
            med(x.base_median()),
            med(x.ref_median()),
            x.estimate.as_ref().map(delta).unwrap_or_default(),
            word,
            signed(x.insns_delta())
        );
    }
    let _ = writeln!(
        out,
        "\n<sub>{} paired ABBA rounds per case at least; verdict needs the {:.0} % interval (repeated over the looks) to exclude 0 and |Δ| ≥ {:.1} %; `no change (< ±X %)` rules out changes beyond X; `same program`: identical code, not timed. Host: {} ({}), kernel {}.</sub>",
        c.config.min_rounds,
        c.config.level * 100.0,
        c.config.threshold_pct,
        text::markdown(&c.host.hostname),
        text::markdown(&c.host.cpu_model),
        text::markdown(&c.host.kernel)
    );
    for line in load_methods(c) {
        let _ = writeln!(out, "\n<sub>{}</sub>", text::markdown(&line));
    }
    for (name, d) in c.cases.iter().filter_map(|x| x.listing_diff.as_ref().map(|d| (&x.name, d))) {
        let _ = writeln!(
            out,
            "\n<details><summary>{}: {}</summary>\n\n{}",
            crate::output::html::escape(name),
            d.summary(),
            text::fenced("diff", if d.unified.is_empty() { "(no difference)\n" } else { &d.unified })
        );
        let _ = writeln!(out, "</details>");
    }
    out
}

/// The listing diffs of `bench-compare --show-diff` for the terminal: per
/// case, `+N −M instructions` and the unified diff.
pub fn listing_diffs(c: &Comparison) -> String {
    let mut out = String::new();
    for (name, d) in c.cases.iter().filter_map(|x| x.listing_diff.as_ref().map(|d| (&x.name, d))) {
        let _ = writeln!(out, "{name}: {}", d.summary());
        // Kernel output, but shown on a terminal: no control character gets through.
        let _ = write!(out, "{}", text::block(&d.unified));
    }
    out
}

/// `--csv` for `bench`: a header row, then one row per case (RFC 4180: a
/// field with a comma, quote or line break is quoted). Times are in the
/// case's `unit`; empty fields where the case has no value; `load_method`
/// as in [`compare_csv`].
pub fn run_csv(results: &RunResults) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record([
        "case",
        "status",
        "reason",
        "unit",
        "median",
        "mad_pct",
        "min",
        "max",
        "n",
        "xlated_insns",
        "jited_bytes",
        "verified_insns",
        "over_floor_ns",
        "load_method",
    ])?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for case in &results.cases {
        let (status, reason) = status_fields(&case.status);
        let s = case.summary;
        let m = case.metrics;
        w.write_record([
            case.name.clone(),
            status.into(),
            super::csv::text(&reason).into_owned(),
            unit_code(case.unit).into(),
            opt(s.map(|s| s.median.to_string())),
            opt(s.map(|s| format!("{:.3}", s.spread_pct()))),
            opt(s.map(|s| s.min.to_string())),
            opt(s.map(|s| s.max.to_string())),
            opt(s.map(|s| s.n.to_string())),
            opt(m.map(|m| m.xlated_insns.to_string())),
            opt(m.map(|m| m.jited_bytes.to_string())),
            opt(m.map(|m| m.verified_insns.to_string())),
            opt(case.cost_over_floor().filter(|_| case.status == Status::Ok).map(|c| c.to_string())),
            super::format::load_method_code(case.unit, case.load_method).into(),
        ])?;
    }
    Ok(w.into_inner()?)
}

/// `--csv` for `bench-compare`: a header row, then one row per case. `delta_pct`
/// and its interval are REF against BASE in %; `verdict` is `faster`,
/// `slower`, `no_change`, `same_program` (not timed) or `not_measured` (then
/// the statuses say why); `resolution_pct` is what a `no_change` rules out;
/// `load_method` how a chain-load case was timed ([`super::format::load_method_code`]).
pub fn compare_csv(c: &Comparison) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record([
        "case",
        "unit",
        "base_median",
        "ref_median",
        "delta_pct",
        "ci_low_pct",
        "ci_high_pct",
        "verdict",
        "resolution_pct",
        "rounds",
        "insns_delta",
        "jited_bytes_delta",
        "base_status",
        "base_reason",
        "ref_status",
        "ref_reason",
        "load_method",
    ])?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for case in &c.cases {
        let verdict = super::format::case_code(case);
        let (base_status, base_reason) = status_fields(&case.base_status);
        let (ref_status, ref_reason) = status_fields(&case.ref_status);
        let est = case.estimate.as_ref();
        w.write_record([
            case.name.clone(),
            unit_code(case.unit).into(),
            opt(case.base_median().map(|m| m.to_string())),
            opt(case.ref_median().map(|m| m.to_string())),
            opt(est.map(|e| format!("{:.4}", e.delta_pct()))),
            opt(est.map(|e| format!("{:.4}", e.ci_pct().0))),
            opt(est.map(|e| format!("{:.4}", e.ci_pct().1))),
            verdict.into(),
            opt(case.resolution_pct.map(|r| format!("{r:.4}"))),
            case.base_samples.len().to_string(),
            opt(case.insns_delta().map(|d| d.to_string())),
            opt(case.jited_delta().map(|d| d.to_string())),
            base_status.into(),
            super::csv::text(&base_reason).into_owned(),
            ref_status.into(),
            super::csv::text(&ref_reason).into_owned(),
            super::format::load_method_code(case.unit, case.load_method).into(),
        ])?;
    }
    Ok(w.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_harness::engine::{CompareConfig, SideInfo};
    use bench_harness::results::HostInfo;

    /// A comparison whose every piece of outside text is hostile.
    fn hostile() -> Comparison {
        let side = |label: &str| SideInfo { label: label.into(), source: Default::default() };
        let case = |reason: &str| CaseComparison {
            ref_status: Status::Failed { reason: reason.into() },
            ..CaseComparison::new("xdp__prologue", bench_harness::flavor::Flavor::Xdp)
        };
        Comparison {
            schema: bench_harness::engine::SCHEMA.into(),
            harness_version: "0".into(),
            started_at: "2026-11-25T00:00:00Z".into(),
            wall_time_s: 1.0,
            host: HostInfo {
                hostname: "box<script>".into(),
                kernel: "6.1 | x".into(),
                cpu_model: "cpu](http://e)".into(),
                cpus: 1,
            },
            base: side("aaaa (HEAD~1) fix\x1b]0;pwned\x07 `code` | pipe"),
            reference: side("bbbb (HEAD) <img src=x onerror=alert(1)> [link](http://evil) @team\u{9b}2J"),
            same_build: false,
            config: CompareConfig::default(),
            cases: vec![case("bfcli: \x1b[31mred | `x`")],
            geomean: None,
        }
    }

    #[test]
    fn terminal_output_carries_no_escape_sequence() {
        let c = hostile();
        let out = summary(&c) + &compare_table(&c, false).to_string();
        assert!(!out.chars().any(|ch| ch.is_control() && ch != '\n'), "{out:?}");
        assert!(out.contains("fix\\x1b]0;pwned\\x07"), "{out}");
        assert!(out.contains("@team\\u{9b}2J"), "{out}");
        assert!(out.contains("\\x1b[31mred"), "{out}");
    }

    #[test]
    fn markdown_shows_outside_text_as_text() {
        let md = markdown(&hostile());
        // An occurrence not preceded by a backslash is live Markdown.
        let live = |raw: &str| md.match_indices(raw).any(|(i, _)| !md[..i].ends_with('\\'));
        for raw in ["<img", "<script>", "[link](", "](http", "`code`", "| pipe", "@team", "6.1 | x", "red | "] {
            assert!(!live(raw), "{raw} reached the Markdown:\n{md}");
        }
        assert!(!md.chars().any(|ch| ch.is_control() && ch != '\n'), "{md:?}");
        assert!(md.contains("\\<img src\\=x"), "{md}");
        // The table keeps its six columns: no pipe from the reason splits a row.
        let row = md.lines().find(|l| l.starts_with("| `xdp__prologue`")).unwrap();
        let pipes = row.match_indices('|').filter(|(i, _)| !row[..*i].ends_with('\\')).count();
        assert_eq!(pipes, 7, "{row}");
    }

    #[test]
    fn identical_programs_say_same_program_and_diffs_fold_into_details() {
        let mut c = hostile();
        let mut case = c.cases[0].clone();
        case.ref_status = Status::Ok;
        case.change = Some(Change::NoChange);
        case.same_program = Some(true);
        assert_eq!(verdict(&case), "same program");
        // Timed anyway (--measure-identical): a significant difference is noise.
        case.base_samples = vec![30.0; 8];
        case.ref_samples = vec![31.0; 8];
        case.change = Some(Change::Slower);
        assert_eq!(verdict(&case), "slower (same program: noise)");
        case.same_program = Some(false);
        assert_eq!(verdict(&case), "slower");

        // A diff whose text tries to close the fence and run a control sequence.
        case.listing_diff = Some(bench_harness::listing::ListingDiff {
            unified: "--- BASE\n+++ REF\n@@ -1 +1,2 @@\n+\t```\n+\tr8 = 0\x1b[2J\n \texit\n".into(),
            added: 2,
            removed: 0,
        });
        c.cases = vec![case];
        let md = markdown(&c);
        assert!(
            md.contains("<details><summary>xdp__prologue: +2 \u{2212}0 instructions</summary>\n\n````diff\n"),
            "{md}"
        );
        assert!(md.contains("\n````\n\n</details>"), "{md}");
        assert!(!md.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\t'), "{md:?}");
        let term = listing_diffs(&c);
        assert!(term.starts_with("xdp__prologue: +2 \u{2212}0 instructions\n--- BASE\n"), "{term}");
        assert!(term.contains("r8 = 0\\x1b[2J"), "{term}");
    }
}
