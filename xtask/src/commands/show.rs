//! `cargo xtask show`.

use anyhow::{Context as _, Result};
use bench_harness::listing;
use bench_harness::suite;
use xtask::flags::{HostFlags, ShowFlags};
use xtask::output::{self, Human};
use xtask::session::Session;
use xtask::show::{self, Shown, ShownCase};
use xtask::{exit, progress};

/// Build (unless `--bfcli`), load each case, print its listing; write the JSON asked for.
pub fn run(flags: ShowFlags) -> Result<i32> {
    let human = Human::new(&[("--json-output", flags.json.json_output.as_deref())])?;
    let cases = suite::suite();
    let selected = show::cases_named(&cases, &flags.cases)?;
    let session = Session::local(&HostFlags::default(), &flags.common, "show")?;
    let (bfcli, source) = show::bfcli(&flags, &session)?;
    let side = bench_harness::suite_run::Side::new(bfcli.clone())?;
    let mut shown = Vec::new();
    for case in selected {
        let spin = progress::spinner(format!("loading {}", case.name));
        let loaded = listing::load_listing(&side, case, flags.jited);
        spin.finish_and_clear();
        let listing = loaded.with_context(|| format!("cannot show {}", case.name))?;
        human.line(show::header(&case.name, &listing));
        human.line(listing.text());
        shown.push(ShownCase { name: case.name.clone(), listing });
    }
    if let Some(path) = &flags.json.json_output {
        let out = Shown { schema: show::SCHEMA, source, bfcli: bfcli.path().display().to_string(), cases: shown };
        output::write_output(path, &serde_json::to_vec_pretty(&out)?)?;
        human.wrote("JSON", path);
    }
    Ok(exit::OK)
}
