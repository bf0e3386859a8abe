//! The output flags every result-producing command shares: `--json-output`
//! and `--markdown` to `-` (stdout), `$GITHUB_STEP_SUMMARY`, `--csv`,
//! `--html` and `--template DIR` (an override used, a bad one refused before
//! anything runs). Against the minifilter test double and the real kernel;
//! every comparison is a cheap A/A.

use bfperf_tests::COMPARE_CHEAP as CHEAP;
use bfperf_tests::{require_bpf, run_leaving_no_mount, show, FixtureRepo, Run};
use std::path::Path;

#[test]
fn json_output_dash_makes_stdout_pure_json_and_the_table_goes_to_stderr() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let md = out.path().join("comment.md");
    let csv_path = out.path().join("cmp.csv");
    let args = [
        CHEAP,
        &[
            "HEAD",
            "HEAD",
            "--json-output",
            "-",
            "--markdown",
            md.to_str().unwrap(),
            "--csv",
            csv_path.to_str().unwrap(),
        ],
    ]
    .concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&run)));
    assert_eq!(v["schema"], "bfperf.compare.v1");
    assert_eq!(v["cases"].as_array().unwrap().len(), 2);
    assert!(run.stderr.contains("xdp__prologue") && run.stderr.contains("verdict"), "the table:\n{}", show(&run));
    assert!(run.stderr.contains(&format!("Markdown: {}", md.display())), "{}", show(&run));
    assert!(std::fs::read_to_string(&md).unwrap().contains("xdp__prologue"));

    // The CSV parses back: a header, one row per case, the same verdicts as the JSON.
    let mut csv = csv::Reader::from_path(&csv_path).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, case) in rows.iter().zip(v["cases"].as_array().unwrap()) {
        assert_eq!(&row[col("case")], case["name"].as_str().unwrap());
        let want = match case["change"].as_str() {
            Some("faster") => "faster",
            Some("slower") => "slower",
            _ => "no_change",
        };
        assert_eq!(&row[col("verdict")], want, "{row:?} vs {case}");
        assert!(row[col("base_median")].parse::<f64>().unwrap() > 0.0, "{row:?}");
        assert!(row[col("ci_low_pct")].parse::<f64>().unwrap() <= row[col("ci_high_pct")].parse::<f64>().unwrap());
        assert_eq!(&row[col("insns_delta")], "0", "A/A: the same program");
        assert_eq!(&row[col("base_status")], "ok");
    }

    // Two outputs cannot share stdout: one error, before anything runs.
    let both = [CHEAP, &["HEAD", "HEAD", "--json-output", "-", "--markdown", "-"]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &both, cache.path());
    assert_eq!(run.code, 1, "{}", show(&run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&run));
    assert!(errors[0].contains("--json-output and --markdown all ask for stdout"), "{}", show(&run));
    assert!(run.stdout.is_empty(), "{}", show(&run));
}

/// `bench-compare ARGS` with `$GITHUB_STEP_SUMMARY` set to `summary`.
fn compare_with_summary(repo: &FixtureRepo, args: &[&str], cache: &Path, summary: &Path) -> Run {
    let mut cmd = bfperf_tests::subcommand("bench-compare", repo.path(), args, cache);
    cmd.env("GITHUB_STEP_SUMMARY", summary);
    output_of(cmd)
}

#[test]
fn the_markdown_is_appended_to_github_step_summary_and_a_planted_link_is_refused() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary");
    std::fs::write(&summary, "# an earlier step\n").unwrap();
    let args = [CHEAP, &["HEAD", "HEAD"]].concat();
    let run = compare_with_summary(&repo, &args, cache.path(), &summary);
    assert_eq!(run.code, 0, "{}", show(&run));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# an earlier step\n"), "appended, not truncated:\n{text}");
    assert!(text.contains("xdp__prologue") && text.contains("tc__prologue"), "{text}");
    assert!(run.stdout.contains("Markdown appended to $GITHUB_STEP_SUMMARY"), "{}", show(&run));
    // A second step appends again.
    let first = text.len();
    let run = compare_with_summary(&repo, &args, cache.path(), &summary);
    assert_eq!(run.code, 0, "{}", show(&run));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.len() > first && text[first..].contains("xdp__prologue"), "{text}");

    // A symbolic link planted at the path is not followed: one error, the target untouched.
    let target = dir.path().join("target");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = compare_with_summary(&repo, &args, cache.path(), &link);
    assert_eq!(run.code, 1, "{}", show(&run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", show(&run));
    assert!(errors[0].contains("is a symbolic link"), "{}", show(&run));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn bench_csv_to_stdout_parses_back_one_row_per_case() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let src = repo.path().to_str().unwrap();
    // minifilter rejects `log`: the second case is unsupported, with bfcli's message as its reason.
    let filter = "xdp__prologue,single_rule__ip4_saddr_l";
    let args = ["bench", "--sources", src, "--filter", filter, "--samples", "3", "--sample-ms", "2", "--csv", "-"];
    let run = bfperf_tests::xtask(&args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    assert!(run.stderr.contains("1 ok, 0 failed, 1 unsupported"), "the summary is on stderr:\n{}", show(&run));
    let mut csv = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..5], ["case", "status", "reason", "unit", "median"]);
    let rows: Vec<csv::StringRecord> =
        csv.records().map(|r| r.unwrap_or_else(|e| panic!("{e}: {}", run.stdout))).collect();
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    assert_eq!(rows.iter().filter(|r| r.len() == header.len()).count(), 2, "every row has every column");
    let ok = rows.iter().find(|r| &r[0] == "xdp__prologue").expect("the xdp row");
    assert_eq!(&ok[1], "ok");
    assert_eq!(&ok[3], "ns");
    assert!(ok[4].parse::<f64>().unwrap() > 0.0, "{ok:?}");
    assert_eq!(ok[8].parse::<usize>().unwrap(), 3, "n is --samples");
    let unsupported = rows.iter().find(|r| &r[0] == "single_rule__ip4_saddr_l").expect("the unsupported row");
    assert_eq!(&unsupported[1], "unsupported");
    assert!(!unsupported[2].is_empty() && unsupported[4].is_empty(), "a reason, no median: {unsupported:?}");
}

#[test]
fn bench_compare_saves_its_json_and_a_self_contained_html_report_by_default() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(300);
    repo.commit("pad every program with 300 instructions");
    let cache = tempfile::tempdir().unwrap();
    let args = [CHEAP, &["HEAD~1", "HEAD"]].concat();
    let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
    assert_eq!(run.code, 0, "{}", show(&run));
    // Both paths are printed, both under <cache>/runs/, named by the same time.
    let path_of = |what: &str| {
        let line = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .unwrap_or_else(|| panic!("no {what}: {}", show(&run)));
        std::path::PathBuf::from(line.trim())
    };
    let (json, html) = (path_of("JSON:"), path_of("HTML:"));
    let runs = cache.path().join("runs");
    assert_eq!(json.parent(), Some(runs.as_path()), "{}", json.display());
    assert_eq!(html.parent(), Some(runs.as_path()), "{}", html.display());
    let stem = |p: &Path| p.file_stem().unwrap().to_str().unwrap().to_owned();
    assert!(stem(&json).starts_with("compare-") && stem(&json) == stem(&html), "{json:?} {html:?}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "bfperf.compare.v1");

    // The page: the forest plot above the table, one row and one whisker per case, the
    // threshold band; nothing fetched from anywhere.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let forest = page.find("<svg class=\"plot forest\"").expect("the forest plot");
    let table = page.find("<table class=\"sortable\">").expect("the table");
    assert!(forest < table, "the plot comes first");
    assert!(page.contains("<rect class=\"band\""), "the threshold band");
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert!(page.contains(&format!("<tr id=\"case-{name}\">")), "{name} row");
        let change = case["change"].as_str().unwrap();
        let class = if change == "no_change" { "no_change" } else { change };
        assert!(page.contains(&format!("<g class=\"{class}\"><title>{name}: ")), "{name} whisker ({class})");
    }
    let stripped = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"), "an external URL");
    assert!(!page.contains("<link") && !page.contains("src=") && !page.contains("<script src"), "a fetched resource");
}

/// The output of a command run with `cmd`.
fn output_of(mut cmd: std::process::Command) -> Run {
    let out = cmd.output().expect("xtask runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn bench_writes_every_format_and_template_overrides_are_used() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    // A run page of our own, extending the built-in base page, and a stylesheet of our own.
    std::fs::write(
        templates.path().join("run.html"),
        "{% extends \"base.html\" %}{% block body %}<p id=\"ours\">our page: {{ counts }}</p>\
         {% for c in cases %}<i>{{ c.name }}</i>{% endfor %}{% endblock %}",
    )
    .unwrap();
    std::fs::write(templates.path().join("style.css"), "body { --ours: 1 }").unwrap();
    let (html, md, summary) = (out.path().join("run.html"), out.path().join("run.md"), out.path().join("summary"));
    std::fs::write(&summary, "# an earlier step\n").unwrap();
    let src = repo.path().to_str().unwrap();
    let args = [
        "bench",
        "--sources",
        src,
        "--filter",
        "xdp__prologue",
        "--samples",
        "3",
        "--sample-ms",
        "2",
        "--html",
        html.to_str().unwrap(),
        "--template",
        templates.path().to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ];
    let mut cmd = bfperf_tests::xtask_command(&args, cache.path());
    cmd.env("GITHUB_STEP_SUMMARY", &summary);
    let run = output_of(cmd);
    assert_eq!(run.code, 0, "{}", show(&run));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<p id=\"ours\">our page: 1 ok, 0 failed, 0 unsupported</p>"), "{page}");
    assert!(page.contains("<i>xdp__prologue</i>") && page.contains("body { --ours: 1 }"), "{page}");
    assert!(!page.contains("--slower"), "the built-in stylesheet was replaced: {page}");
    assert!(run.stdout.contains(&format!("HTML: {}", html.display())), "{}", show(&run));
    // The Markdown: to the file and appended to the job summary, as every command does.
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("| `xdp__prologue` |"), "{markdown}");
    let text = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(text, format!("# an earlier step\n{markdown}"), "appended, not truncated");
    assert!(run.stdout.contains("Markdown appended to $GITHUB_STEP_SUMMARY"), "{}", show(&run));
}

#[test]
fn a_bad_template_is_one_error_before_anything_runs() {
    let repo = FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    let html = templates.path().join("out.html");
    let args = ["HEAD", "HEAD", "--template", templates.path().to_str().unwrap(), "--html", html.to_str().unwrap()];
    let fails_with = |why: &str| {
        let run = run_leaving_no_mount("bench-compare", repo.path(), &args, cache.path());
        assert_eq!(run.code, 1, "{}", show(&run));
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{}", show(&run));
        assert!(errors[0].contains(why), "{}", show(&run));
        // Checked before the builds and the measuring: nothing built, nothing written.
        assert!(!run.stderr.contains("building"), "{}", show(&run));
        assert!(!cache.path().join("runs").exists() && !html.exists(), "{}", show(&run));
    };
    // A syntax error: the file is named.
    let compare = templates.path().join("compare.html");
    std::fs::write(&compare, "{% extends \"base.html\" %}{% block body %}{% for c in cases %}{% endblock %}").unwrap();
    fails_with(&format!("template {} does not parse", compare.display()));
    // A link planted in the directory is not followed.
    std::fs::remove_file(&compare).unwrap();
    let secret = templates.path().join("secret");
    std::fs::write(&secret, "not a template").unwrap();
    std::os::unix::fs::symlink(&secret, templates.path().join("base.html")).unwrap();
    fails_with("base.html is a symbolic link");
    // Nor is a file that cannot be a template read whole.
    std::fs::remove_file(templates.path().join("base.html")).unwrap();
    std::fs::write(templates.path().join("style.css"), vec![b'a'; (1 << 20) + 1]).unwrap();
    fails_with("style.css is larger than 1 MiB");
}
