//! Nothing is left behind: no bpffs mount, no pinned chain, no loaded
//! program, after success, after a case that fails at load, and after a panic.
//! One test per binary so no other test's programs are alive meanwhile.

use bench_harness::bpffs;
use bench_harness::program::Bfcli;
use bench_harness::results::{SourceInfo, Status};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite;
use bench_harness::suite_run::Bench;
use bfperf_tests::{loaded_programs_named, require_bpf, FixtureRepo};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A bfcli wrapper whose TC chains fail at load: the real bfcli loads and pins
/// the chain (program and counter map), then the program's pin is renamed, so
/// the harness finds no program where bpfilter pins it. The chain directory's
/// listing at that moment goes to `log`.
fn failing_tc_bfcli(real: &Path, dir: &Path, log: &Path) -> PathBuf {
    let wrapper = dir.join("bfcli");
    let script = format!(
        r#"#!/bin/bash
set -e
"{real}" "$@"
if [ "$3 $4" = "chain set" ] && [[ "$*" == *BF_HOOK_TC_INGRESS* ]]; then
    chain="$2/bpfilter/{chain}"
    mv "$chain/bf_prog" "$chain/bf_prog_moved"
    ls "$chain" >> "{log}"
fi
"#,
        real = real.display(),
        chain = suite::CHAIN_NAME,
        log = log.display(),
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn no_mount_pin_or_program_survives_success_failure_or_panic() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("failed-chain.txt");
    let bfcli = failing_tc_bfcli(&repo.build_bfcli(), dir.path(), &log);
    let config = SamplingConfig { samples: 3, sample_ms: 1.0, warmup: 0, load_samples: 2 };
    let cases = suite::suite();
    // One good case, one unsupported (log), one that fails at load (TC).
    let selected = suite::select(&cases, Some("xdp__prologue,single_rule__ip4_saddr_l,tc__prologue"));
    let progs_before = loaded_programs_named("bf_prog").len();
    let mounts_before = bpffs::live_mounts();

    let mut bench = Bench::new(Bfcli::new(&bfcli).unwrap(), config).unwrap();
    let mount = bpffs::live_mounts().into_iter().find(|m| !mounts_before.contains(m)).expect("a private bpffs");
    let results = bench.run(&selected, SourceInfo::default(), |_, _| {}, |_| {}).unwrap();
    let status = |name: &str| &results.cases.iter().find(|c| c.name == name).expect(name).status;
    assert_eq!(status("xdp__prologue"), &Status::Ok);
    assert!(matches!(status("single_rule__ip4_saddr_l"), Status::Unsupported { .. }), "{:?}", results.cases);
    let Status::Failed { reason } = status("tc__prologue") else { panic!("{:?}", status("tc__prologue")) };
    assert!(reason.contains("no program is pinned"), "{reason}");
    // The failed case had its program and its counter map pinned (under other names)...
    let listing = std::fs::read_to_string(&log).expect("the TC chain was loaded");
    assert_eq!(listing.split_whitespace().collect::<Vec<_>>(), ["bf_cmap", "bf_prog_moved"], "{listing}");
    // ...and, like every chain, it is flushed after its case: nothing pinned under bpfilter/.
    let pinned: Vec<_> = std::fs::read_dir(mount.join("bpfilter")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(pinned.is_empty(), "chains left pinned: {pinned:?}");
    drop(bench);
    assert_eq!(bpffs::live_mounts(), mounts_before, "bpffs unmounted");
    assert!(!mount.exists(), "mount directory removed");
    assert_eq!(loaded_programs_named("bf_prog").len(), progs_before, "programs unloaded");

    // A panic in the middle of a run (here: in the progress callback, after
    // the first case) unwinds through the guards.
    let outcome = std::panic::catch_unwind(|| {
        let mut bench = Bench::new(Bfcli::new(&bfcli).unwrap(), config).unwrap();
        let _ = bench.run(&selected, SourceInfo::default(), |_, _| {}, |_| panic!("boom"));
    });
    assert!(outcome.is_err());
    assert_eq!(bpffs::live_mounts(), mounts_before, "bpffs unmounted after a panic");
    assert_eq!(loaded_programs_named("bf_prog").len(), progs_before, "programs unloaded after a panic");
}
