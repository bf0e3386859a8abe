//! The evidence a model optimizes from, instead of optimizing blind: the
//! baseline's numbers per case (ns/pkt, time over the empty-program floor,
//! xlated/jited/verified counts), the listings of the programs the baseline
//! generates, and a compiler explorer over the attempt's own tree.
//!
//! The baseline is the run branch's last kept state. Its numbers are measured
//! once per kept state (`<run>/evidence/numbers.json`) and its listings loaded
//! before each proposal (`<run>/evidence/listings/<case>.json`), with the
//! bfcli of the run's build directory, rebuilt from the worktree (which is at
//! that state between attempts).
//!
//! The explorer ([`show`]) builds the attempt's tree incrementally (bfcli only,
//! in `<run>/explore`, inside the sandbox as validation builds are), loads one
//! case with the new bfcli and returns its listing, the diff against the
//! baseline's and the count deltas. API models call it as the
//! `build_and_show` tool; an external agent runs `$BFPERF_SHOW CASE`, a
//! script in the run directory that runs this binary's hidden `optimize-show`
//! with the run's context ([`ShowContext`]).

use super::knowledge::{self, cut, Knowledge};
use crate::agent::{FileTools, ToolHost, ToolResult, ToolSpec};
use crate::build::{Build, BuildFailed};
use anyhow::{Context as _, Result};
use bench_harness::listing::{self, Listing};
use bench_harness::program::{Bfcli, ProgramMetrics};
use bench_harness::results::RunResults;
use bench_harness::suite::{self, Case};
use bench_harness::suite_run::Side;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Tool name: the baseline listing of a case.
pub const SHOW_PROGRAM: &str = "show_program";
/// Tool name: the suite with the baseline's numbers.
pub const LIST_CASES: &str = "list_cases";
/// Tool name: build the attempt's tree and show a case's new listing.
pub const BUILD_AND_SHOW: &str = "build_and_show";
/// The environment variable naming the explorer command of an external agent.
pub const SHOW_VAR: &str = "BFPERF_SHOW";

/// Longest listing put in the prompt (per prologue) or returned by a tool.
const MAX_LISTING_CHARS: usize = 12_000;
/// Longest diff returned by `build_and_show`.
const MAX_DIFF_CHARS: usize = 8_000;
/// Longest compiler message returned by `build_and_show`.
const MAX_BUILD_ERROR_CHARS: usize = 6_000;
/// Largest evidence file read back (they are written by the run, in the cache).
const MAX_EVIDENCE_BYTES: u64 = 16 << 20;

/// One case of the baseline's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    /// Case name.
    pub name: String,
    /// Median ns/pkt (runtime cases) or ms (chain loads).
    pub median: Option<f64>,
    /// `ns` or `ms`.
    pub unit: String,
    /// Median ns/pkt over the empty program of the same flavor and packet.
    pub over_floor: Option<f64>,
    /// Exact counts.
    pub metrics: Option<ProgramMetrics>,
    /// `ok`, or why the case has no numbers.
    pub status: String,
}

/// The baseline's numbers, and the commit they were measured at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Numbers {
    /// The commit measured.
    pub commit: String,
    /// One row per measured case.
    pub rows: Vec<CaseRow>,
}

impl Numbers {
    /// The rows of a suite run.
    pub fn of(commit: &str, results: &RunResults) -> Numbers {
        let rows = results
            .cases
            .iter()
            .map(|c| CaseRow {
                name: c.name.clone(),
                median: c.summary.map(|s| s.median),
                unit: match c.unit {
                    bench_harness::results::Unit::Milliseconds => "ms".into(),
                    _ => "ns".into(),
                },
                over_floor: c.cost_over_floor(),
                metrics: c.metrics,
                status: match &c.status {
                    bench_harness::results::Status::Ok => "ok".into(),
                    bench_harness::results::Status::Failed { reason } => format!("failed: {reason}"),
                    bench_harness::results::Status::Unsupported { reason } => format!("unsupported: {reason}"),
                },
            })
            .collect();
        Numbers { commit: commit.to_owned(), rows }
    }
}

/// The table as text, one line per case of `names` (every case of the suite
/// for `list_cases`); cases that were not measured say so.
pub fn table(numbers: Option<&Numbers>, names: &[String]) -> String {
    let mut out = format!(
        "{:<36} {:>10} {:>11} {:>7} {:>8} {:>9}\n",
        "case", "median", "over floor", "xlated", "jited B", "verified"
    );
    for name in names {
        let row = numbers.and_then(|n| n.rows.iter().find(|r| &r.name == name));
        let Some(row) = row else {
            let _ = writeln!(out, "{name:<36} {:>10}", "(not measured: outside --filter, or flagged)");
            continue;
        };
        let num = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.1} {unit}"));
        let (x, j, v) = row.metrics.map_or(("-".into(), "-".into(), "-".into()), |m| {
            (m.xlated_insns.to_string(), m.jited_bytes.to_string(), m.verified_insns.to_string())
        });
        let status = if row.status == "ok" { String::new() } else { format!("  [{}]", row.status) };
        let _ = writeln!(
            out,
            "{:<36} {:>10} {:>11} {x:>7} {j:>8} {v:>9}{status}",
            row.name,
            num(row.median, &row.unit),
            num(row.over_floor, &row.unit),
        );
    }
    out
}

/// The names of the prologue cases of the suite (one per flavor).
pub fn prologue_cases() -> Vec<String> {
    suite::suite().into_iter().map(|c| c.name).filter(|n| n.ends_with("__prologue")).collect()
}

/// Everything the proposal's prompt carries besides the run's attempts.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// What the tree says about itself.
    pub knowledge: Knowledge,
    /// The baseline's numbers, when they could be measured.
    pub numbers: Option<Numbers>,
    /// The cases the table shows (the judged cases and the prologues).
    pub shown_cases: Vec<String>,
    /// Baseline listings by case (the prologues and the judged cases).
    pub listings: BTreeMap<String, Listing>,
    /// What is missing and why (one line each).
    pub notes: Vec<String>,
}

impl Evidence {
    /// The prologue listings as (case, text) for the prompt, each bounded.
    pub fn prologue_listings(&self) -> Vec<(String, String)> {
        prologue_cases().into_iter().filter_map(|c| self.listings.get(&c).map(|l| (c, listing_text(l)))).collect()
    }
}

/// A listing's text with its counts, bounded.
pub fn listing_text(l: &Listing) -> String {
    let head = format!(
        "; {} xlated instructions, {} jited bytes, {} verified instructions\n",
        l.counts.xlated_insns, l.counts.jited_bytes, l.counts.verified_insns
    );
    head + &cut(&l.text(), MAX_LISTING_CHARS, "show_program / $BFPERF_SHOW give a case's whole listing")
}

/// Where a run keeps its evidence.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("evidence")
}

fn listing_path(run_dir: &Path, case: &str) -> PathBuf {
    dir(run_dir).join("listings").join(format!("{case}.json"))
}

/// Read a JSON file the run wrote: not through a link, bounded.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&crate::planted::read(path, MAX_EVIDENCE_BYTES).ok()?).ok()
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    bench_harness::results::write_atomic(path, serde_json::to_string(value)?.as_bytes())
}

/// What [`gather`] needs of the run.
pub struct Baseline<'a> {
    /// The run's worktree, at the branch's last kept state.
    pub worktree: &'a Path,
    /// The run's directory.
    pub run_dir: &'a Path,
    /// The scope.
    pub scope: &'a str,
    /// The commit of the last kept state.
    pub commit: &'a str,
    /// The judged cases.
    pub cases: &'a [&'a Case],
}

/// Gather the evidence for a proposal: the tree's knowledge, the baseline's
/// numbers (measured when the kept state changed) and listings (loaded with
/// the rebuilt bfcli). What cannot be had becomes a note; only Ctrl-C is an error.
pub fn gather(cx: &super::Context, base: &Baseline<'_>) -> Result<Evidence> {
    let mut ev = Evidence { knowledge: knowledge::gather(base.worktree, base.scope), ..Evidence::default() };
    let all = suite::suite();
    let prologues = prologue_cases();
    ev.shown_cases = prologues.clone();
    ev.shown_cases.extend(base.cases.iter().map(|c| c.name.clone()).filter(|n| !prologues.contains(n)));

    // A build directory of its own (bfcli only, incremental from one kept state to the next): the
    // run's build directory is configured for validation (tests included) and must stay so.
    let build = dir(base.run_dir).join("build");
    let bfcli = cx.machine.build_confined(base.worktree, &build, Some(&cx.sandbox));
    bench_harness::interrupt::check()?;
    let bfcli = match bfcli {
        Ok(b) => b,
        Err(e) => {
            ev.notes.push(format!("the baseline could not be built for measuring: {}", first_line(&e)));
            return Ok(ev);
        }
    };

    let numbers_path = dir(base.run_dir).join("numbers.json");
    ev.numbers = read_json::<Numbers>(&numbers_path).filter(|n| n.commit == base.commit);
    // `--objective insns` times nothing, the baseline included: the listings carry the counts.
    let timed = cx.flags.objective != super::Objective::Insns;
    if !timed {
        ev.notes.push("--objective insns: nothing is timed; each listing's header gives its counts".into());
    }
    if ev.numbers.is_none() && timed {
        let spin = crate::progress::spinner("measuring the baseline for the model (ns/pkt, counts)");
        let mut measured: Vec<&Case> = base.cases.to_vec();
        measured
            .extend(all.iter().filter(|c| prologues.contains(&c.name) && !base.cases.iter().any(|b| b.name == c.name)));
        let sampling = bench_harness::runner::SamplingConfig {
            sample_ms: cx.config.sample_ms,
            samples: 10,
            warmup: cx.config.warmup,
            load_samples: 3,
        };
        let source = bench_harness::results::SourceInfo {
            bfcli: bfcli.display().to_string(),
            commit: Some(base.commit.to_owned()),
            dirty: false,
        };
        let results = cx.machine.bench(&bfcli, &measured, sampling, source, |_| {}, |_| {});
        spin.finish_and_clear();
        bench_harness::interrupt::check()?;
        match results {
            Ok(r) => {
                let n = Numbers::of(base.commit, &r);
                if let Err(e) = write_json(&numbers_path, &n) {
                    eprintln!("warning: {e:#}");
                }
                ev.numbers = Some(n);
            }
            Err(e) => ev.notes.push(format!("the baseline could not be measured: {}", first_line(&e))),
        }
    }

    if !cx.machine.is_local() {
        ev.notes.push("listings are not available with --host (the programs are built and loaded there)".into());
        return Ok(ev);
    }
    let side = Side::new(Bfcli::new(&bfcli)?)?;
    for name in &ev.shown_cases {
        let Some(case) = all.iter().find(|c| &c.name == name) else { continue };
        match listing::load_listing(&side, case, false) {
            Ok(l) => {
                if let Err(e) = write_json(&listing_path(base.run_dir, name), &l) {
                    eprintln!("warning: {e:#}");
                }
                ev.listings.insert(name.clone(), l);
            }
            Err(e) => ev.notes.push(format!("{name}: the baseline's program could not be loaded: {e}")),
        }
        bench_harness::interrupt::check()?;
    }
    Ok(ev)
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_owned()
}

/// A case of the suite by name (model output is untrusted: only suite names are accepted).
fn find_case(name: &str) -> std::result::Result<Case, String> {
    suite::suite().into_iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<String> = suite::suite().into_iter().map(|c| c.name).collect();
        format!("no case named {name:?} in the suite: use one of {}", names.join(", "))
    })
}

/// Arguments of the hidden `optimize-show` subcommand, which `$BFPERF_SHOW` runs.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run's explorer context (`<run>/evidence/show.json`).
    #[arg(long, value_name = "FILE")]
    pub context: PathBuf,
    /// The case to show.
    pub case: String,
}

/// What the explorer of one run needs: written to `<run>/evidence/show.json`
/// for `$BFPERF_SHOW`, the same values the `build_and_show` tool uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShowContext {
    /// The attempt's worktree.
    pub worktree: PathBuf,
    /// The explorer's build directory (bfcli only, incremental).
    pub build: PathBuf,
    /// The run's directory (the baseline's listings are under its `evidence/`).
    pub run_dir: PathBuf,
    /// How the build is confined.
    pub sandbox: crate::sandbox::Policy,
}

impl ShowContext {
    /// The context file of a run.
    pub fn path(run_dir: &Path) -> PathBuf {
        dir(run_dir).join("show.json")
    }

    /// The `$BFPERF_SHOW` script of a run.
    pub fn script(run_dir: &Path) -> PathBuf {
        dir(run_dir).join("bfperf-show")
    }

    /// Write the context and the `$BFPERF_SHOW` script (this very binary, its
    /// hidden `optimize-show`, the context file); returns the script's path.
    pub fn install(&self) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt as _;
        let ctx = Self::path(&self.run_dir);
        write_json(&ctx, self)?;
        let exe = own_binary()?;
        let quote = |p: &Path| shlex::try_quote(&p.to_string_lossy()).map(|q| q.into_owned());
        let script = Self::script(&self.run_dir);
        let text = format!(
            "#!/bin/sh\n# bfperf optimize: build the attempt's tree and show a case's program (see doc/optimize.md).\n\
             exec {} optimize-show --context {} \"$@\"\n",
            quote(&exe)?,
            quote(&ctx)?
        );
        bench_harness::results::write_atomic(&script, text.as_bytes())?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", script.display()))?;
        Ok(script)
    }

    /// Read a context file (`optimize-show`).
    pub fn load(path: &Path) -> Result<ShowContext> {
        read_json(path)
            .with_context(|| format!("{} is not an optimize run's context: run $BFPERF_SHOW", path.display()))
    }
}

/// This binary's path, for the `$BFPERF_SHOW` script. Rebuilt while a run
/// lasts (`cargo build`), Linux reports it as `PATH (deleted)`: the path then
/// holds the new build of the same tool, which is what the script should run.
fn own_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find bfperf's own binary")?;
    let text = exe.to_str().context("bfperf's own path is not UTF-8")?;
    Ok(PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(text)))
}

/// Build the attempt's tree, load `case` with its bfcli and describe the
/// program against the baseline's. `Err` is for the model (or agent) to read:
/// an unknown case, the compiler's message, a load the verifier refused.
pub fn show(ctx: &ShowContext, case: &str) -> std::result::Result<String, String> {
    let case = find_case(case)?;
    let built = Build::new(&ctx.worktree, &ctx.build).confined(Some(ctx.sandbox.clone())).bfcli_built();
    let bfcli = built.map_err(|e| match e.downcast_ref::<BuildFailed>() {
        Some(f) => format!(
            "the build failed ({}):\n{}",
            f.step,
            cut(&f.tail, MAX_BUILD_ERROR_CHARS, "the build log has the rest")
        ),
        None => format!("the build failed: {e:#}"),
    })?;
    let side = Bfcli::new(&bfcli).and_then(Side::new).map_err(|e| format!("{e:#}"))?;
    let new = listing::load_listing(&side, &case, false)
        .map_err(|e| format!("the tree built, but {} could not be loaded: {e:#}", case.name))?;
    let base: Option<Listing> = read_json(&listing_path(&ctx.run_dir, &case.name));
    let mut out = format!("{} with the attempt's changes:\n", case.name);
    match &base {
        Some(base) => {
            let d = listing::diff(base, &new);
            let delta = |a: u32, b: u32| format!("{b} ({:+})", i64::from(b) - i64::from(a));
            let (o, n) = (base.counts, new.counts);
            let _ = writeln!(
                out,
                "xlated {}, jited bytes {}, verified {}; vs the baseline: {}",
                delta(o.xlated_insns, n.xlated_insns),
                delta(o.jited_bytes, n.jited_bytes),
                delta(o.verified_insns, n.verified_insns),
                d.summary()
            );
            if d.unified.is_empty() {
                out.push_str("The program is the same as the baseline's.\n");
            } else {
                let _ =
                    writeln!(out, "Diff (BASE = baseline, REF = attempt):\n{}", cut(&d.unified, MAX_DIFF_CHARS, "cut"));
            }
        }
        None => out.push_str("(no baseline listing of this case to compare with)\n"),
    }
    let _ = write!(out, "Listing:\n{}", listing_text(&new));
    Ok(out)
}

/// The optimize loop's tools: the file tools, `show_program` and
/// `list_cases`, and while implementing `build_and_show`.
pub struct Tools<'a> {
    files: FileTools,
    evidence: &'a Evidence,
    explore: Option<ShowContext>,
}

impl<'a> Tools<'a> {
    /// The proposal's tools (read-only).
    pub fn propose(files: FileTools, evidence: &'a Evidence) -> Self {
        Tools { files, evidence, explore: None }
    }

    /// The implementation's tools: `files` with writes, and the explorer when given.
    pub fn implement(files: FileTools, evidence: &'a Evidence, explore: Option<ShowContext>) -> Self {
        Tools { files, evidence, explore }
    }

    /// Paths refused by the file tools.
    pub fn refusals(&self) -> &[String] {
        self.files.refusals()
    }

    fn case_arg(input: &Value) -> std::result::Result<String, String> {
        input
            .get("case")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "invalid input: give {\"case\": NAME} (list_cases lists them)".to_owned())
    }
}

impl ToolHost for Tools<'_> {
    fn specs(&self) -> Vec<ToolSpec> {
        let case = json!({"type": "object", "properties": {
            "case": {"type": "string", "description": "A case name of the suite, e.g. xdp__prologue (list_cases lists them)"}
        }, "required": ["case"]});
        let mut specs = self.files.specs();
        specs.push(ToolSpec {
            name: SHOW_PROGRAM.into(),
            description: "The BPF program the baseline generates for a case: its xlated instructions in bpftool \
                          syntax (labels for jump targets, named helpers and maps) with its counts."
                .into(),
            input_schema: case.clone(),
        });
        specs.push(ToolSpec {
            name: LIST_CASES.into(),
            description: "The benchmark's cases with the baseline's numbers: median ns/pkt, time over the \
                          empty-program floor, xlated/jited/verified counts."
                .into(),
            input_schema: json!({"type": "object", "properties": {}}),
        });
        if self.explore.is_some() {
            specs.push(ToolSpec {
                name: BUILD_AND_SHOW.into(),
                description: "Build your edited tree (bfcli only, incremental) and show the program it now \
                              generates for a case: the listing, the diff against the baseline's and the count \
                              deltas. A build error returns the compiler's message."
                    .into(),
                input_schema: case,
            });
        }
        specs
    }

    fn call(&mut self, name: &str, input: &Value) -> ToolResult {
        let result = match name {
            SHOW_PROGRAM => Self::case_arg(input).and_then(|c| {
                find_case(&c)?;
                self.evidence.listings.get(&c).map(listing_text).ok_or_else(|| {
                    format!("no baseline listing of {c}: only the judged cases and the prologues are loaded")
                })
            }),
            LIST_CASES => {
                let names: Vec<String> = suite::suite().into_iter().map(|c| c.name).collect();
                Ok(table(self.evidence.numbers.as_ref(), &names))
            }
            BUILD_AND_SHOW => match &self.explore {
                Some(ctx) => Self::case_arg(input).and_then(|c| show(ctx, &c)),
                None => Err("build_and_show is only available while implementing".into()),
            },
            _ => return self.files.call(name, input),
        };
        result.map(ToolResult::ok).unwrap_or_else(ToolResult::error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_numbers_and_what_was_not_measured() {
        let numbers = Numbers {
            commit: "c".into(),
            rows: vec![CaseRow {
                name: "xdp__prologue".into(),
                median: Some(31.25),
                unit: "ns".into(),
                over_floor: Some(12.5),
                metrics: Some(ProgramMetrics { xlated_insns: 54, jited_bytes: 312, verified_insns: 60 }),
                status: "ok".into(),
            }],
        };
        let t = table(Some(&numbers), &["xdp__prologue".into(), "tc__prologue".into()]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("case") && lines[0].contains("over floor"), "{t}");
        assert!(lines[1].starts_with("xdp__prologue") && lines[1].contains("31.2 ns"), "{t}");
        assert!(lines[1].contains("12.5 ns") && lines[1].contains(" 54 ") && lines[1].ends_with(" 60"), "{t}");
        assert!(lines[2].starts_with("tc__prologue") && lines[2].contains("not measured"), "{t}");
    }

    #[test]
    fn prologues_are_the_suite_s() {
        let p = prologue_cases();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.contains(&"xdp__prologue".to_owned()));
    }

    #[test]
    fn tools_refuse_unknown_cases_and_list_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Evidence::default();
        let mut tools = Tools::propose(FileTools::read_only(dir.path()).unwrap(), &ev);
        let names: Vec<String> = tools.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["read_file", "list_dir", "grep", SHOW_PROGRAM, LIST_CASES]);
        let r = tools.call(SHOW_PROGRAM, &json!({"case": "../../etc/passwd"}));
        assert!(r.is_error && r.content.contains("no case named") && r.content.contains("xdp__prologue"), "{r:?}");
        let r = tools.call(SHOW_PROGRAM, &json!({"case": "xdp__prologue"}));
        assert!(r.is_error && r.content.contains("no baseline listing"), "{r:?}");
        let r = tools.call(SHOW_PROGRAM, &json!({"name": "xdp__prologue"}));
        assert!(r.is_error && r.content.contains("invalid input"), "{r:?}");
        let r = tools.call(BUILD_AND_SHOW, &json!({"case": "xdp__prologue"}));
        assert!(r.is_error && r.content.contains("only available while implementing"), "{r:?}");
        let r = tools.call(LIST_CASES, &json!({}));
        assert!(!r.is_error && r.content.lines().count() == suite::suite().len() + 1, "{}", r.content);
    }

    #[test]
    fn the_show_script_runs_this_binary_with_the_run_s_context() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run with space");
        let ctx = ShowContext {
            worktree: run_dir.join("worktree"),
            build: run_dir.join("explore"),
            run_dir: run_dir.clone(),
            sandbox: crate::sandbox::Policy { secret_names: vec!["MY_CREDS".into()], ..Default::default() },
        };
        let script = ctx.install().unwrap();
        assert_eq!(script, run_dir.join("evidence/bfperf-show"));
        let text = std::fs::read_to_string(&script).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{text}");
        assert!(text.contains(&format!("exec {} optimize-show --context '", exe.display())), "{text}");
        assert!(text.contains("run with space/evidence/show.json' \"$@\""), "quoted:\n{text}");
        assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o111, 0o111);
        let back = ShowContext::load(&ShowContext::path(&run_dir)).unwrap();
        assert_eq!(back.sandbox.secret_names, ["MY_CREDS"]);
        assert_eq!(back.build, ctx.build);
        let missing = ShowContext::load(&dir.path().join("nothing.json")).unwrap_err().to_string();
        assert!(missing.contains("is not an optimize run's context"), "{missing}");
    }
}
