//! Nothing is left behind: no bpffs mount, no pinned chain, no loaded
//! program, after success, after a failing case, and after a panic.
//! One test per binary so no other test's programs are alive meanwhile.

use bench_harness::bench::Bench;
use bench_harness::bpffs;
use bench_harness::program::Bfcli;
use bench_harness::results::{SourceInfo, Status};
use bench_harness::runner::SamplingConfig;
use bench_harness::suite;
use bfperf_tests::{loaded_programs_named, require_bpf, FixtureRepo};

#[test]
fn no_mount_pin_or_program_survives_success_failure_or_panic() {
    require_bpf!();
    let repo = FixtureRepo::new();
    let bfcli = repo.build_bfcli();
    let config = SamplingConfig { samples: 3, sample_ms: 1.0, warmup: 0, load_samples: 2 };
    let cases = suite::suite();
    // One good case, one unsupported (log), one the fixture rejects at load.
    let selected = suite::select(&cases, Some("xdp__prologue,single_rule__ip4_saddr_l,tc__prologue"));
    let progs_before = loaded_programs_named("bf_prog").len();
    let mounts_before = bpffs::live_mounts();

    let mut bench = Bench::new(Bfcli::new(&bfcli).unwrap(), config).unwrap();
    let mount = bpffs::live_mounts().into_iter().find(|m| !mounts_before.contains(m)).expect("a private bpffs");
    let results = bench.run(&selected, SourceInfo::default(), |_, _| {}, |_| {}).unwrap();
    assert!(results.cases.iter().any(|c| matches!(c.status, Status::Unsupported { .. })));
    // Between cases the chain is flushed: nothing pinned under bpfilter/.
    let pinned: Vec<_> = std::fs::read_dir(mount.join("bpfilter")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(pinned.is_empty(), "chains left pinned: {pinned:?}");
    drop(bench);
    assert_eq!(bpffs::live_mounts(), mounts_before, "bpffs unmounted");
    assert!(!mount.exists(), "mount directory removed");
    assert_eq!(loaded_programs_named("bf_prog").len(), progs_before, "programs unloaded");

    // A panic in the middle of a run (here: in the progress callback) unwinds
    // through the guards.
    let outcome = std::panic::catch_unwind(|| {
        let mut bench = Bench::new(Bfcli::new(&bfcli).unwrap(), config).unwrap();
        let _ = bench.run(&selected, SourceInfo::default(), |_, _| {}, |_| panic!("boom"));
    });
    assert!(outcome.is_err());
    assert_eq!(bpffs::live_mounts(), mounts_before, "bpffs unmounted after a panic");
    assert_eq!(loaded_programs_named("bf_prog").len(), progs_before, "programs unloaded after a panic");
}
