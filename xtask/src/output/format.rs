//! Numbers, units, percentages and verdict words, for every format (terminal,
//! Markdown, CSV, HTML): one spelling of each, so that a table, a comment and
//! a report never disagree.

use bench_harness::chainset::Method;
use bench_harness::engine::CaseComparison;
use bench_harness::engine::Change;
use bench_harness::results::{Status, Unit};
use bench_harness::stats::paired::RatioEstimate;

/// A value with about three significant digits (`164`, `36.8`, `2.07`).
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A unit as people read it: `ns/pkt` (per packet, the runtime cases) or `ms`.
pub fn unit(u: Unit) -> &'static str {
    match u {
        Unit::NsPerPacket => "ns/pkt",
        Unit::Milliseconds => "ms",
    }
}

/// A unit as a CSV column holds it: `ns` or `ms` (the `unit` column of
/// `--csv`; a number per packet for `ns`).
pub fn unit_code(u: Unit) -> &'static str {
    match u {
        Unit::NsPerPacket => "ns",
        Unit::Milliseconds => "ms",
    }
}

/// One line per way chain-load cases were timed, naming the cases, e.g.
/// `ms: bf_chain_set in-process, as upstream: chain_set__ip4_saddr__x_elem_set/8`.
/// A case without a method (files from before bfperf recorded it) timed the
/// whole `bfcli chain set`. Nothing when no case is a chain load.
pub fn load_method_lines<'a>(cases: impl IntoIterator<Item = (&'a str, Unit, Option<Method>)>) -> Vec<String> {
    let mut groups: Vec<(Option<Method>, Vec<&str>)> = vec![];
    for (name, u, method) in cases {
        if u != Unit::Milliseconds {
            continue;
        }
        match groups.iter_mut().find(|(m, _)| *m == method) {
            Some((_, names)) => names.push(name),
            None => groups.push((method, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(method, names)| {
            let how = match method {
                Some(Method::InProcess) => "bf_chain_set in-process, as upstream",
                Some(Method::StartupSubtracted) => {
                    "bfcli start-up subtracted (bfcli chain set minus the empty chain's; no bf_chain_set found to time in-process)"
                }
                None => "the whole bfcli chain set process",
            };
            format!("ms: {how}: {}", names.join(", "))
        })
        .collect()
}

/// A chain-load case's timing in a CSV cell: `in_process`,
/// `startup_subtracted`, or `whole_process` (files from before bfperf
/// recorded it); empty for a runtime case.
pub fn load_method_code(u: Unit, method: Option<Method>) -> &'static str {
    match (u, method) {
        (Unit::NsPerPacket, _) => "",
        (Unit::Milliseconds, Some(Method::InProcess)) => "in_process",
        (Unit::Milliseconds, Some(Method::StartupSubtracted)) => "startup_subtracted",
        (Unit::Milliseconds, None) => "whole_process",
    }
}

/// A signed percentage with one decimal, `+3.1 %`; values near 0 get two
/// (`+0.04 %`: "+0.0" would hide that it is not zero).
pub fn pct(v: f64) -> String {
    format!("{} %", bound(v))
}

/// A signed number of percent without the sign `%`, as inside an interval:
/// one decimal, two below 0.1 in magnitude.
fn bound(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0.0"
    if v.abs() < 0.1 && v != 0.0 {
        format!("{v:+.2}")
    } else {
        format!("{v:+.1}")
    }
}

/// An interval in %, `[+2.2, +4.0]`; `none (too few samples)` when it is a
/// point (fewer samples than an interval needs).
pub fn ci(lo: f64, hi: f64) -> String {
    if lo == hi {
        "none (too few samples)".to_owned()
    } else {
        format!("[{}, {}]", bound(lo), bound(hi))
    }
}

/// `+3.1 % [+2.2, +4.0]`: the paired Δ of REF against BASE with its interval.
pub fn delta(est: &RatioEstimate) -> String {
    let (lo, hi) = est.ci_pct();
    format!("{} {}", pct(est.delta_pct()), ci(lo, hi))
}

/// The verdict word of the engine's [`Change`]: `faster`, `slower`, `no change`.
pub fn change_word(change: Change) -> &'static str {
    match change {
        Change::Faster => "faster",
        Change::Slower => "slower",
        Change::NoChange => "no change",
    }
}

/// The verdict as a CSV or CSS token: `faster`, `slower`, `no_change`, or
/// `not_measured` for a case not measured on both sides.
pub fn change_code(change: Option<Change>, measured: bool) -> &'static str {
    match (measured, change) {
        (false, _) => "not_measured",
        (true, Some(Change::Faster)) => "faster",
        (true, Some(Change::Slower)) => "slower",
        (true, _) => "no_change",
    }
}

/// The verdict word of a case measured (or known) on both sides: `same
/// program` when the code is identical (a significant change there is
/// `slower (same program: noise)`), `no change`
/// with what its interval rules out (`no change (< ±1.8 %)`), else the change.
pub fn case_word(c: &CaseComparison) -> String {
    if c.untimed_same_program() {
        return "same program".into();
    }
    if c.same_program == Some(true) {
        // Timed anyway (--measure-identical): the JIT is deterministic given
        // the xlated code, so a significant difference is noise.
        return match c.change {
            Some(change @ (Change::Faster | Change::Slower)) => {
                format!("{} (same program: noise)", change_word(change))
            }
            _ => "same program".into(),
        };
    }
    match (c.change, c.resolution_pct) {
        (Some(Change::Faster), _) => change_word(Change::Faster).into(),
        (Some(Change::Slower), _) => change_word(Change::Slower).into(),
        (_, Some(r)) => format!("{} (< ±{r:.1} %)", change_word(Change::NoChange)),
        (_, None) => change_word(Change::NoChange).into(),
    }
}

/// [`change_code`] of a case, with `same_program` for identical code not timed.
pub fn case_code(c: &CaseComparison) -> &'static str {
    if c.untimed_same_program() {
        "same_program"
    } else {
        change_code(c.change, c.is_ok())
    }
}

/// A status as its word and its reason (empty when ok).
pub fn status_fields(s: &Status) -> (&'static str, String) {
    match s {
        Status::Ok => ("ok", String::new()),
        Status::Failed { reason } => ("failed", reason.clone()),
        Status::Unsupported { reason } => ("unsupported", reason.clone()),
    }
}

/// A signed count: `=` for 0, `+3`, `-12`; empty when unknown.
pub fn signed(v: Option<i64>) -> String {
    match v {
        Some(0) => "=".into(),
        Some(d) => format!("{d:+}"),
        None => String::new(),
    }
}

/// `s` with its spaces made no-break (HTML cells: `+3.1 %` never wraps).
pub fn nbsp(s: &str) -> String {
    s.replace(' ', "\u{a0}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn load_method_lines_group_chain_loads_by_method() {
        use super::*;
        let cases = [
            ("xdp__prologue", Unit::NsPerPacket, None),
            ("chain_set/8", Unit::Milliseconds, Some(Method::InProcess)),
            ("chain_set/64", Unit::Milliseconds, Some(Method::StartupSubtracted)),
            ("chain_set/128", Unit::Milliseconds, Some(Method::InProcess)),
            ("old/8", Unit::Milliseconds, None),
        ];
        let lines = load_method_lines(cases);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], "ms: bf_chain_set in-process, as upstream: chain_set/8, chain_set/128");
        assert!(lines[1].starts_with("ms: bfcli start-up subtracted") && lines[1].ends_with(": chain_set/64"));
        assert_eq!(lines[2], "ms: the whole bfcli chain set process: old/8");
        assert!(load_method_lines([("xdp__prologue", Unit::NsPerPacket, None)]).is_empty());
    }

    use super::*;

    #[test]
    fn percentages_keep_the_digits_that_matter() {
        assert_eq!(pct(3.12), "+3.1 %");
        assert_eq!(pct(-0.04), "-0.04 %");
        assert_eq!(pct(0.0), "+0.0 %");
        assert_eq!(pct(-0.0), "+0.0 %");
        assert_eq!(ci(-0.04, 2.66), "[-0.04, +2.7]");
        assert_eq!(ci(1.0, 1.0), "none (too few samples)");
        let est = RatioEstimate { ratio: 1.031, lo: 1.022, hi: 1.04, n: 8, level: 0.95 };
        assert_eq!(delta(&est), "+3.1 % [+2.2, +4.0]");
    }

    #[test]
    fn numbers_units_and_words() {
        assert_eq!(
            (num(164.2), num(36.84), num(2.071), num(-12.34)),
            ("164".into(), "36.8".into(), "2.07".into(), "-12.3".into())
        );
        assert_eq!((unit(Unit::NsPerPacket), unit_code(Unit::NsPerPacket)), ("ns/pkt", "ns"));
        assert_eq!(change_word(Change::NoChange), "no change");
        assert_eq!(change_code(Some(Change::Slower), false), "not_measured");
        assert_eq!(change_code(None, true), "no_change");
        assert_eq!((signed(Some(0)), signed(Some(-3)), signed(None)), ("=".into(), "-3".into(), String::new()));
        assert_eq!(nbsp("+1.0 %"), "+1.0\u{a0}%");
    }
}
