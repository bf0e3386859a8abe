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
            cases => rows,
            listings,
        },
    )
}
