//! bench-compare's page: the forest plot of every case's Δ above the table,
//! and the program listings' diffs when the comparison holds them.

use super::{case_id, flag_words, safe, Templates};
use crate::output::format::{change_code, delta, nbsp, num, signed, unit};
use crate::output::svg::{self, ForestRow};
use crate::text;
use anyhow::Result;
use bench_harness::engine::{Change, Comparison};
use minijinja::context;

/// The page of `c`, generated at `generated`.
pub fn render(c: &Comparison, templates: &Templates, generated: &str) -> Result<String> {
    // The JSON form too: fields other helpers' engines add (`listing_diff`)
    // are read from it, so this page shows them when they are there.
    let json = serde_json::to_value(c)?;
    let level = format!("{:.0}", c.config.level * 100.0);
    let mut rows = vec![];
    let mut forest = vec![];
    let mut listings = vec![];
    for (i, case) in c.cases.iter().enumerate() {
        let measured = case.is_ok();
        let change = if measured { case.change.or(Some(Change::NoChange)) } else { None };
        let class = change_code(change, measured);
        let word = crate::output::report::verdict(case);
        let est = case.estimate.filter(|_| measured);
        let med = |v: Option<f64>| v.map(|m| format!("{} {}", num(m), unit(case.unit))).unwrap_or_default();
        let tip = match &est {
            Some(e) => format!("{}: {} ({})", case.name, delta(e), word),
            None => format!("{}: {}", case.name, word),
        };
        forest.push(ForestRow {
            name: case.name.clone(),
            panel: match case.unit {
                bench_harness::results::Unit::NsPerPacket => "Per packet (ns/pkt)".into(),
                bench_harness::results::Unit::Milliseconds => "Chain loads (ms)".into(),
            },
            estimate: est.map(|e| (e.delta_pct(), e.ci_pct().0, e.ci_pct().1)),
            change,
            tip,
        });
        rows.push(context! {
            id => case_id(&case.name),
            name => case.name.clone(),
            flags => flag_words(&case.flags),
            same_program => case.same_program == Some(true),
            base_median => med(case.base_median()),
            ref_median => med(case.ref_median()),
            base_sort => case.base_median().unwrap_or(f64::NAN).to_string(),
            ref_sort => case.ref_median().unwrap_or(f64::NAN).to_string(),
            delta => est.map(|e| nbsp(&delta(&e))).unwrap_or_default(),
            delta_sort => est.map(|e| e.delta_pct()).unwrap_or(f64::NAN).to_string(),
            class,
            // A failure's reason is bfcli's text: shown, escaped by the template.
            verdict => text::line(&word).into_owned(),
            rounds => case.base_samples.len(),
            insns => signed(case.insns_delta()),
            jited => signed(case.jited_delta()),
        });
        if let Some(diff) = json["cases"][i].get("listing_diff").filter(|d| d.is_object()) {
            let count = |k: &str| diff.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            if let Some(unified) = diff.get("unified").and_then(|u| u.as_str()).filter(|u| !u.is_empty()) {
                listings.push(context! {
                    name => case.name.clone(),
                    added => count("added"),
                    removed => count("removed"),
                    diff => super::diff(unified),
                });
            }
        }
    }
    let geomean = c.geomean.as_ref();
    let geomean_class = geomean
        .map(|g| change_code(Some(bench_harness::engine::classify(g, c.config.threshold_pct)), true))
        .unwrap_or_default();
    let host = format!("{} — {} ({} CPUs), kernel {}", c.host.hostname, c.host.cpu_model, c.host.cpus, c.host.kernel);
    templates.render(
        "compare.html",
        context! {
            base => text::line(&c.base.label).into_owned(),
            ref => text::line(&c.reference.label).into_owned(),
            geomean => geomean.map(|g| format!("{:.4} ({})", g.ratio, delta(g))),
            geomean_class,
            slower => c.regressions().count(),
            faster => c.improvements().count(),
            no_change => c.cases.iter().filter(|x| x.is_ok() && x.change == Some(Change::NoChange)).count(),
            not_measured => c.errors().count(),
            level,
            threshold => format!("{}", c.config.threshold_pct),
            min_rounds => c.config.min_rounds,
            host,
            started => c.started_at.clone(),
            wall => format!("{:.0} s", c.wall_time_s),
            generated,
            same_build => c.same_build,
            forest => safe(svg::forest(&forest, c.config.threshold_pct)),
            load_methods => crate::output::report::load_methods(c),
            cases => rows,
            listings,
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bench_harness::engine::{CaseComparison, CompareConfig, SideInfo, SCHEMA};
    use bench_harness::results::{HostInfo, Status};
    use bench_harness::stats::paired::RatioEstimate;

    fn case(name: &str, ratio: f64, half: f64, change: Change) -> CaseComparison {
        CaseComparison {
            repeat: Some(1000),
            base_samples: vec![30.0; 8],
            ref_samples: vec![30.0 * ratio; 8],
            same_program: Some(ratio == 1.0),
            estimate: Some(RatioEstimate { ratio, lo: ratio - half, hi: ratio + half, n: 8, level: 0.95 }),
            change: Some(change),
            ..CaseComparison::new(name, bench_harness::flavor::Flavor::Xdp)
        }
    }

    pub(crate) fn comparison() -> Comparison {
        let side = |label: &str| SideInfo { label: label.into(), source: Default::default() };
        let mut failed = case("nf__<b>failed</b>", 1.0, 0.0, Change::NoChange);
        failed.ref_status = Status::Failed { reason: "bfcli: <script>alert(1)</script> =1+1".into() };
        failed.flags.use_set = true;
        Comparison {
            schema: SCHEMA.into(),
            harness_version: "0".into(),
            started_at: "2026-12-03T00:00:00Z".into(),
            wall_time_s: 12.0,
            host: HostInfo { hostname: "box<i>".into(), kernel: "6.12".into(), cpu_model: "cpu".into(), cpus: 2 },
            base: side("aaaa main <img src=x onerror=alert(1)>"),
            reference: side("bbbb (HEAD) \"quoted\" & 'single'"),
            same_build: false,
            config: CompareConfig::default(),
            cases: vec![
                case("xdp__prologue", 1.04, 0.01, Change::Slower),
                case("tc__prologue", 0.95, 0.01, Change::Faster),
                case("cgroup_skb__prologue", 1.0, 0.02, Change::NoChange),
                failed,
            ],
            geomean: Some(RatioEstimate { ratio: 1.01, lo: 1.0, hi: 1.02, n: 24, level: 0.95 }),
        }
    }

    #[test]
    fn forest_above_the_table_colours_by_verdict_outside_text_escaped() {
        let page = render(&comparison(), &Templates::embedded(), "now").unwrap();
        let forest = page.find("<svg class=\"plot forest\"").expect("forest plot");
        assert!(forest < page.find("<table class=\"sortable\">").unwrap());
        assert!(page.contains("<rect class=\"band\""));
        // One whisker per measured case, coloured by the engine's verdict; the failed case says so.
        assert!(page.contains("<g class=\"slower\"><title>xdp__prologue: +4.0 % [+3.0, +5.0] (slower)</title>"));
        assert!(page.contains("<g class=\"faster\"><title>tc__prologue: "));
        assert!(page.contains("<g class=\"no_change\"><title>cgroup_skb__prologue: "));
        assert!(page.contains("stroke=\"#c62828\"") && page.contains("stroke=\"#2e7d32\""));
        assert!(page.contains(">not measured</text>"));
        // Badges: same program, the case's flags.
        assert!(page.contains(
            "<tr id=\"case-cgroup_skb__prologue\"><td><code>cgroup_skb__prologue</code> <span class=\"badge same\""
        ));
        assert!(page.contains("<span class=\"badge flag\">set</span>"));
        // Outside text is text: labels, host, bfcli's reason, the case name in the plot.
        for raw in ["<img", "<script>alert", "<b>failed", "<i>"] {
            assert!(!page.contains(raw), "{raw} reached the page");
        }
        assert!(page.contains("aaaa main &lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("bbbb (HEAD) &quot;quoted&quot; &amp; &#39;single&#39;"));
        assert!(page.contains("nf__&lt;b&gt;failed&lt;/b&gt;"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("id=\"listings\""), "no listing without listing_diff");
    }

    #[test]
    fn the_page_and_the_csv_say_how_chain_loads_were_timed() {
        let mut c = comparison();
        let mut load = case("chain_set__x/8", 1.0, 0.02, Change::NoChange);
        load.unit = bench_harness::results::Unit::Milliseconds;
        load.load_method = Some(bench_harness::chainset::Method::StartupSubtracted);
        c.cases.push(load);
        let page = render(&c, &Templates::embedded(), "now").unwrap();
        assert!(page.contains("<li>ms: bfcli start-up subtracted (bfcli chain set minus the empty chain"), "{page}");
        assert!(page.contains("): chain_set__x/8</li>"), "{page}");
        let csv = String::from_utf8(crate::output::report::compare_csv(&c).unwrap()).unwrap();
        assert!(csv.lines().next().unwrap().ends_with(",load_method"), "{csv}");
        assert!(csv.lines().last().unwrap().ends_with(",startup_subtracted"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().ends_with(','), "a runtime case has none: {csv}");
        // Before any chain load is in the comparison, no such section.
        let page = render(&comparison(), &Templates::embedded(), "now").unwrap();
        assert!(!page.contains("How chain loads were timed"), "{page}");
    }

    #[test]
    fn an_empty_comparison_renders() {
        let mut c = comparison();
        c.cases.clear();
        c.geomean = None;
        let page = render(&c, &Templates::embedded(), "now").unwrap();
        assert!(page.contains("0 slower") && page.contains("</svg>"));
    }
}
