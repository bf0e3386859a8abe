//! The harness against real programs: minifilter builds, the kernel loads and
//! test-runs every flavor, and verdicts, metrics and statuses are checked.

use bench_harness::program::Bfcli;
use bench_harness::results::{SourceInfo, Status, Unit};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite::{self, Case};
use bench_harness::suite_run::Bench;
use bfperf_tests::{require_bpf, FixtureRepo};
use std::os::unix::fs::PermissionsExt;

fn quick() -> SamplingConfig {
    SamplingConfig { samples: 5, sample_ms: 2.0, warmup: 1, load_samples: 2 }
}

fn run(bfcli: &std::path::Path, filter: &str) -> bench_harness::results::RunResults {
    let cases = suite::suite();
    let selected: Vec<&Case> = suite::select(&cases, Some(filter));
    let mut bench = Bench::new(Bfcli::new(bfcli).unwrap(), quick()).unwrap();
    bench.run(&selected, SourceInfo::default(), |_, _| {}, |_| {}).unwrap()
}

#[test]
fn every_flavor_loads_runs_and_returns_its_verdict() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let results = run(
        &bfcli,
        "prologue,chain_policy_c,single_rule__ip4_saddr,single_rule__ip4_saddr_c,multiple_rules__ip4_saddr/8,\
         single_rule__ip6_saddr__x_elem_set/8,single_rule__ip6_nexthdr,sport,chain_set__ip4_saddr__x_elem_set/8",
    );
    let by_name = |n: &str| results.cases.iter().find(|c| c.name == n).unwrap_or_else(|| panic!("{n} missing"));

    for flavor in ["xdp", "tc", "netfilter", "cgroup_skb"] {
        let c = by_name(&format!("{flavor}__prologue"));
        assert_eq!(c.status, Status::Ok, "{flavor}");
        assert_eq!(c.retval, Some(c.flavor.retval(bench_harness::flavor::Verdict::Accept)), "{flavor}");
        let m = c.metrics.unwrap();
        assert!(m.xlated_insns > 2 && m.jited_bytes > 0 && m.verified_insns > 0, "{flavor}: {m:?}");
        let s = c.summary.unwrap();
        assert_eq!(s.n, 5);
        assert!(s.median > 0.0 && s.min <= s.median && s.median <= s.max);
        assert!(c.floor_ns.unwrap() > 0.0, "{flavor} floor");
        assert!(c.repeat.unwrap() >= 1);
    }
    // single_rule__ip6_nexthdr runs upstream's 90-byte packet (three chained
    // extension headers, 12 trailing zeros) and drops it.
    for name in [
        "chain_policy_c",
        "single_rule__ip4_saddr",
        "single_rule__ip4_saddr_c",
        "single_rule__tcp_sport",
        "single_rule__ip6_nexthdr",
    ] {
        let c = by_name(name);
        assert_eq!(c.status, Status::Ok, "{name}");
        assert_eq!(c.retval, Some(1), "{name}: XDP_DROP");
    }
    // More rules, more instructions: exact metrics are comparable.
    let one = by_name("single_rule__ip4_saddr").metrics.unwrap().xlated_insns;
    let eight = by_name("multiple_rules__ip4_saddr/8").metrics.unwrap().xlated_insns;
    assert!(eight > one, "8 rules ({eight}) vs 1 rule ({one})");
    // Every floor measured is the 2-instruction empty program.
    assert!(!results.floors.is_empty());
    assert!(results.floors.iter().all(|f| f.metrics.xlated_insns == 2));

    let load = by_name("chain_set__ip4_saddr__x_elem_set/8");
    assert_eq!(load.status, Status::Ok);
    assert_eq!(load.unit, Unit::Milliseconds);
    assert!(load.samples.len() >= 2 && load.samples.iter().all(|&ms| ms > 0.0));
    assert!(load.metrics.is_none());
    // minifilter's bfcli has bf_chain_set in its symbol table: the call is
    // timed in-process, as upstream; runtime cases have no load method, also
    // those loaded after the uprobes were attached (single_rule__ip6_nexthdr).
    assert_eq!(load.load_method, Some(bench_harness::chainset::Method::InProcess));
    assert_eq!(by_name("single_rule__ip6_nexthdr").load_method, None);
}

#[test]
fn cases_the_build_cannot_parse_are_unsupported_and_the_rest_continue() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let results = run(&bfcli, "single_rule__ip4_saddr_l,single_rule__meta_flow_hash,xdp__prologue");
    assert_eq!(results.cases.len(), 3);
    for c in &results.cases {
        if c.name == "xdp__prologue" {
            assert_eq!(c.status, Status::Ok);
        } else {
            let Status::Unsupported { reason } = &c.status else { panic!("{}: {:?}", c.name, c.status) };
            assert!(reason.contains("unsupported"), "{}: {reason}", c.name);
        }
    }
}

#[test]
fn a_wrong_return_value_fails_that_case_with_expected_and_got() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let real = repo.build_bfcli();
    // A bfcli that silently turns every DROP into ACCEPT: its programs are wrong.
    let dir = tempfile::tempdir().unwrap();
    let liar = dir.path().join("bfcli");
    std::fs::write(
        &liar,
        format!("#!/bin/bash\nargs=()\nfor a in \"$@\"; do args+=(\"${{a//DROP/ACCEPT}}\"); done\nexec {} \"${{args[@]}}\"\n", real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&liar, std::fs::Permissions::from_mode(0o755)).unwrap();
    let results = run(&liar, "single_rule__ip4_saddr,xdp__prologue");
    let bad = results.cases.iter().find(|c| c.name == "single_rule__ip4_saddr").unwrap();
    let Status::Failed { reason } = &bad.status else { panic!("{:?}", bad.status) };
    assert!(reason.contains("expected 1 (DROP), got 2"), "{reason}");
    assert_eq!(bad.retval, Some(2));
    assert!(bad.samples.is_empty(), "a wrong program is not measured");
    let good = results.cases.iter().find(|c| c.name == "xdp__prologue").unwrap();
    assert_eq!(good.status, Status::Ok);
}

#[test]
fn a_slower_knob_adds_its_instructions_and_both_builds_are_measured() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(0);
    let fast_bfcli = repo.build_bfcli();
    let fast = run(&fast_bfcli, "xdp__prologue");
    repo.set_padding(400);
    let slow_bfcli = repo.build_bfcli();
    let slow = run(&slow_bfcli, "xdp__prologue");
    let (f, s) = (&fast.cases[0], &slow.cases[0]);
    // Instruction counts are exact: 400 more ALU instructions (plus the
    // spill that keeps them live, emitted only when there is padding).
    let (fm, sm) = (f.metrics.unwrap(), s.metrics.unwrap());
    assert_eq!(sm.xlated_insns - fm.xlated_insns, 401, "{fm:?} vs {sm:?}");
    // The verifier walks each of them (the prologue has no branch to prune), and each
    // becomes machine code: at least 3 bytes on x86-64 (`imul r9, r9, 7` is 4).
    assert_eq!(sm.verified_insns - fm.verified_insns, 401, "{fm:?} vs {sm:?}");
    assert!(sm.jited_bytes >= fm.jited_bytes + 3 * 400, "{fm:?} vs {sm:?}");
    // Both builds are measured. Whether the longer program is slower is a timing question,
    // answered by the paired comparison (compare.rs, ci_workflow.rs), not by comparing two
    // separate runs taken minutes apart on a shared machine.
    for (c, what) in [(f, "padding 0"), (s, "padding 400")] {
        assert_eq!(c.status, Status::Ok, "{what}");
        let summary = c.summary.unwrap();
        assert_eq!(summary.n, 5, "{what}");
        assert!(summary.min > 0.0, "{what}: {summary:?}");
    }
}

#[test]
fn the_power_check_runs_the_engine_on_generated_programs() {
    require_bpf!();
    // Small and fast: 2 copies per side and a target no interval reaches, so the
    // engine's loop goes past its first pass to the cap, reloading copy pairs.
    // Up to 16 rounds: with sequential looks each interval is at 1 − α/K, and at
    // 10 rounds two rounds disturbed by other tests running beside this one
    // (1 ms samples) could keep even a +96 % change undecided.
    let config = bench_harness::engine::CompareConfig {
        sample_ms: 1.0,
        warmup: 1,
        min_rounds: 6,
        max_rounds: 16,
        target_ci_pct: 0.01,
        instances: 2,
        ..Default::default()
    };
    let points = bench_harness::power::power(16, &[256], 3, &config, |_| {}).unwrap();
    let p = &points[0];
    // 256 dependent ALU instructions on top of 16: several times the cost.
    assert!(p.true_delta_pct > 50.0, "{p:?}");
    assert_eq!((p.detected, p.wrong, p.reps), (3, 0, 3), "{p:?}");
    assert_eq!(bench_harness::power::smallest_detected(&points), Some(p.true_delta_pct));
}

#[test]
fn two_loads_of_a_case_are_the_same_program_and_another_case_is_not() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let cases = suite::suite();
    let by_name = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
    let side = bench_harness::suite_run::Side::new(Bfcli::new(&bfcli).unwrap()).unwrap();
    let load = |n: &str| side.load(by_name(n)).unwrap().into_program();
    // Both copies stay loaded at once, so their maps have different ids.
    let (first, second) = (load("single_rule__ip4_saddr"), load("single_rule__ip4_saddr"));
    let (a, b) = (first.code().unwrap(), second.code().unwrap());
    assert_eq!(a.insns.len() as u32, first.metrics().xlated_insns);
    assert!(!a.maps.is_empty(), "minifilter's programs use maps");
    assert_ne!(a.maps.iter().map(|m| m.id).collect::<Vec<_>>(), b.maps.iter().map(|m| m.id).collect::<Vec<_>>());
    assert!(a.same_program(&b), "two loads of one case");
    let other = load("multiple_rules__ip4_saddr/8").code().unwrap();
    assert!(!a.same_program(&other));
}
