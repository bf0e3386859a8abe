//! bench's page: one run's cases (median, spread, the program's metrics,
//! the cost over the empty program), or why a case was not measured.

use super::{case_id, flag_words, Templates};
use crate::output::format::{num, status_fields, unit};
use crate::output::table::{floor_lines, status_counts};
use crate::text;
use anyhow::Result;
use bench_harness::results::{RunResults, Status};
use minijinja::context;

/// The page of `results`, generated at `generated`.
pub fn render(results: &RunResults, templates: &Templates, generated: &str) -> Result<String> {
    let cases: Vec<minijinja::Value> = results
        .cases
        .iter()
        .map(|case| {
            let (word, reason) = status_fields(&case.status);
            let summary = case.summary.filter(|_| case.status == Status::Ok);
            let metric = |f: fn(&bench_harness::program::ProgramMetrics) -> u32| {
                case.metrics.as_ref().map(|m| f(m).to_string()).unwrap_or_default()
            };
            context! {
                id => case_id(&case.name),
                name => case.name.clone(),
                label => case.label.clone(),
                flags => flag_words(&case.flags),
                failed => summary.is_none(),
                class => if matches!(case.status, Status::Unsupported { .. }) { "not_measured" } else { "failure" },
                word,
                // bfcli's text: shown, escaped by the template.
                reason => text::line(&reason).into_owned(),
                median => summary.map(|s| format!("{}\u{a0}{}", num(s.median), unit(case.unit))),
                median_sort => summary.map_or(f64::NAN, |s| s.median).to_string(),
                spread => summary.map(|s| format!("{:.1}\u{a0}%", s.spread_pct())),
                range => summary.map(|s| format!("{} … {}", num(s.min), num(s.max))),
                n => summary.map(|s| s.n),
                insns => metric(|m| m.xlated_insns),
                jited => metric(|m| m.jited_bytes),
                verified => metric(|m| m.verified_insns),
                over_floor => case.cost_over_floor().filter(|_| summary.is_some()).map(|c| format!("+{}\u{a0}ns", num(c))).unwrap_or_default(),
            }
        })
        .collect();
    let host = format!(
        "{} — {} ({} CPUs), kernel {}",
        results.host.hostname, results.host.cpu_model, results.host.cpus, results.host.kernel
    );
    templates.render(
        "run.html",
        context! {
            bfcli => text::line(&results.source.bfcli).into_owned(),
            commit => results.source.commit.as_deref().map(|c| c[..c.len().min(12)].to_owned()),
            dirty => results.source.dirty,
            counts => status_counts(results),
            samples => results.sampling.samples,
            sample_ms => num(results.sampling.sample_ms),
            host,
            started => results.started_at.clone(),
            wall => format!("{:.1} s", results.wall_time_s),
            generated,
            cases,
            floors => floor_lines(results),
            load_methods => crate::output::table::load_methods(results),
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bench_harness::flavor::{Flavor, Hook};
    use bench_harness::program::ProgramMetrics;
    use bench_harness::results::{CaseResult, HostInfo, SourceInfo, Unit, HARNESS_VERSION, SCHEMA};
    use bench_harness::stats::Summary;

    /// A case result of the given samples and status (an XDP case, 42 instructions).
    pub(crate) fn case(name: &str, unit: Unit, samples: Vec<f64>, status: Status) -> CaseResult {
        CaseResult {
            name: name.into(),
            label: format!("{name} <label>"),
            hook: Hook::Xdp,
            flavor: Flavor::Xdp,
            packet: None,
            flags: Default::default(),
            status,
            unit,
            repeat: Some(1000),
            retval: Some(2),
            summary: Summary::of(&samples),
            samples,
            metrics: Some(ProgramMetrics { xlated_insns: 42, jited_bytes: 250, verified_insns: 45 }),
            floor_ns: Some(10.0),
            load_ms: None,
            load_method: None,
        }
    }

    /// A run of three cases: one measured, one failed (bfcli's hostile text), one chain load.
    pub(crate) fn run() -> RunResults {
        RunResults {
            schema: SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: "2026-12-03T00:00:00Z".into(),
            wall_time_s: 3.5,
            host: HostInfo { hostname: "box<i>".into(), kernel: "6.12".into(), cpu_model: "cpu".into(), cpus: 2 },
            source: SourceInfo {
                bfcli: "/src/<b>bpfilter</b>/bfcli".into(),
                commit: Some("0123456789abcdef0123".into()),
                dirty: true,
            },
            sampling: Default::default(),
            floors: vec![],
            cases: vec![
                case("xdp__prologue", Unit::NsPerPacket, vec![30.0, 31.0, 30.5], Status::Ok),
                case(
                    "tc__<script>",
                    Unit::NsPerPacket,
                    vec![],
                    Status::Failed { reason: "bfcli: <script>alert(1)</script>".into() },
                ),
                case("chain_load", Unit::Milliseconds, vec![12.0, 12.5, 13.0], Status::Ok),
            ],
        }
    }

    #[test]
    fn every_case_is_a_row_outside_text_escaped() {
        let mut run = run();
        run.cases[2].load_method = Some(bench_harness::chainset::Method::InProcess);
        let page = render(&run, &Templates::embedded(), "now").unwrap();
        assert!(page.contains("<li>ms: bf_chain_set in-process, as upstream: chain_load</li>"), "{page}");
        let csv = String::from_utf8(crate::output::report::run_csv(&run).unwrap()).unwrap();
        assert!(csv.lines().last().unwrap().ends_with(",in_process"), "{csv}");
        assert!(page.starts_with("<!doctype html>"), "{page}");
        assert!(page.contains("<tr id=\"case-xdp__prologue\">"), "{page}");
        assert!(page.contains("30.5\u{a0}ns/pkt") && page.contains("12.5\u{a0}ms"), "{page}");
        assert!(page.contains("+20.5\u{a0}ns"), "cost over the floor: {page}");
        assert!(
            page.contains("<span class=\"badge failure\">failed</span> bfcli: &lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert!(page.contains("tc__&lt;script&gt;") && page.contains("&lt;b&gt;bpfilter&lt;/b&gt;"));
        assert!(!page.contains("<script>alert") && !page.contains("<b>bpfilter") && !page.contains("box<i>"));
        assert!(page.contains("<code>0123456789ab</code> (uncommitted changes)"), "{page}");
        assert!(page.contains("2 ok, 1 failed"), "{page}");
    }
}
