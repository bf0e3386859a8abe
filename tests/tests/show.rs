//! `cargo xtask show` and `bench-compare --show-diff` end to end, on the
//! minifilter test double and the real kernel: the listing and its header,
//! `--jited`, `--json-output -`, an unknown case, the diff of two commits
//! whose programs differ, and "same program" on an A/A comparison.

use bfperf_tests::COMPARE_CHEAP as CHEAP;
use bfperf_tests::{require_bpf, run_leaving_no_mount, show, FixtureRepo, Run};
use serde_json::Value;
use std::path::Path;

fn show_cmd(sources: &Path, args: &[&str], cache: &Path) -> Run {
    run_leaving_no_mount("show", sources, args, cache)
}

/// minifilter's padding emits alternating `r9 *= 7` / `r9 ^= 94741925` lines.
fn padding_lines(listing: &str) -> usize {
    listing.lines().filter(|l| l.ends_with(": r9 *= 7") || l.ends_with(": r9 ^= 94741925")).count()
}

#[test]
fn show_prints_the_listing_of_the_working_tree_or_a_revision() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let (src, cache) = (repo.path(), cache.path());

    // The committed tree: 16 padding instructions per program.
    let run = show_cmd(src, &["xdp__prologue", "--rev", "HEAD"], cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    let first = run.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("xdp__prologue: xlated ") && first.contains(" insns, jited ") && first.contains(" verified "),
        "header: {first}"
    );
    assert!(run.stdout.contains("  map[counters]: bf_cmap (type 2,"), "{}", show(&run));
    assert_eq!(padding_lines(&run.stdout), 16, "{}", show(&run));
    assert!(run.stdout.contains(": exit\n"), "{}", show(&run));
    assert!(run.stdout.lines().any(|l| l.contains(" goto L") || l.starts_with("L0:")), "labels: {}", show(&run));
    assert!(run.stdout.contains(": r1 = map[counters]\n") || run.stdout.contains("= map[counters]"), "{}", run.stdout);

    // Without --rev: the working tree, uncommitted change included.
    repo.set_padding(4);
    let run = show_cmd(src, &["xdp__prologue", "tc__prologue"], cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert_eq!(padding_lines(&run.stdout), 8, "4 per program, two programs:\n{}", run.stdout);
    assert!(run.stdout.contains("\ntc__prologue: xlated "), "{}", run.stdout);

    // --jited: x86-64 code; minifilter loads without BTF, so in one block with a note.
    let run = show_cmd(src, &["xdp__prologue", "--jited"], cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stdout.contains("; the kernel gave no line info"), "{}", run.stdout);
    // The JIT's frame; it returns with `ret` or through the return thunk (`jmp`), as the kernel's mitigations say.
    assert!(run.stdout.contains(": push rbp\n") && run.stdout.contains(": leave\n"), "{}", run.stdout);

    // --json-output -: the same as data on stdout, the listing on stderr.
    let run = show_cmd(src, &["xdp__prologue", "--json-output", "-"], cache);
    assert_eq!(run.code, 0, "{}", show(&run));
    let v: Value = serde_json::from_str(&run.stdout).expect("stdout is JSON only");
    assert_eq!(v["schema"], "bfperf.show.v1");
    assert!(v["source"].as_str().unwrap().starts_with("wip (on "), "{}", v["source"]);
    let case = &v["cases"][0];
    assert_eq!(case["name"], "xdp__prologue");
    let lines = case["listing"]["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l["text"] == "exit"), "{case}");
    assert_eq!(lines.iter().filter(|l| l["text"] == "r9 *= 7").count(), 2);
    let xlated = case["listing"]["counts"]["xlated_insns"].as_u64().unwrap();
    assert!(run.stderr.contains(&format!("xdp__prologue: xlated {xlated} insns")), "{}", show(&run));
    assert_eq!(case["listing"]["maps"][0]["name"], "counters");

    // An unknown case: one error line that says where the names are; nothing built.
    let run = show_cmd(src, &["xdp__prologue", "no_such_case"], cache);
    assert_eq!(run.code, 1, "{}", show(&run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&run));
    assert!(errors[0].contains("`no_such_case`") && errors[0].contains("bench --list"), "{}", errors[0]);
    assert!(run.stdout.is_empty(), "{}", show(&run));
}

#[test]
fn show_diff_sums_up_and_shows_what_changed_and_a_a_says_same_program() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let base = repo.head();
    repo.set_padding(24);
    let reference = repo.commit("8 more padding instructions");
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (json, md) = (out.path().join("cmp.json"), out.path().join("cmp.md"));
    let args = [
        CHEAP,
        &["--threshold", "10", &base, &reference, "--json-output", json.to_str().unwrap()],
        &["--markdown", md.to_str().unwrap(), "--show-diff"],
    ]
    .concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    for case in ["xdp__prologue", "tc__prologue"] {
        assert!(
            run.stdout.contains(&format!("\n{case}: +8 \u{2212}0 instructions\n--- BASE\n+++ REF\n")),
            "{}",
            show(&run)
        );
    }
    assert_eq!(run.stdout.matches("\n+\tr9 *= 7\n").count(), 8, "4 per case:\n{}", run.stdout);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for case in v["cases"].as_array().unwrap() {
        assert_eq!(case["same_program"], false);
        assert_eq!(case["listing_diff"]["added"], 8, "{case}");
        assert_eq!(case["listing_diff"]["removed"], 0, "{case}");
        assert!(case["listing_diff"]["unified"].as_str().unwrap().contains("+\tr9 ^= 94741925\n"));
    }
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown
            .contains("<details><summary>xdp__prologue: +8 \u{2212}0 instructions</summary>\n\n```diff\n--- BASE\n"),
        "{markdown}"
    );
    assert_eq!(markdown.matches("</details>").count(), 2, "{markdown}");

    // A/A: every case "same program", and --show-diff without names shows none.
    let args = [CHEAP, &["--threshold", "10", &reference, &reference, "--show-diff"]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    for case in ["xdp__prologue", "tc__prologue"] {
        let row = run.stdout.lines().find(|l| l.contains(case)).unwrap_or_else(|| panic!("{}", show(&run)));
        assert!(row.contains("same program"), "{row}");
    }
    assert!(!run.stdout.contains("--- BASE"), "{}", show(&run));
    assert!(run.stdout.contains("--show-diff: no program differs between BASE and REF"), "{}", show(&run));

    // Named on an A/A run: the diff is empty, +0 −0.
    let args = [CHEAP, &["--threshold", "10", &reference, &reference, "--show-diff", "xdp__prologue"]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stdout.contains("\nxdp__prologue: +0 \u{2212}0 instructions"), "{}", show(&run));
}
