//! `BFCLI=path/to/bfcli cargo bench -p bench-harness`: the suite under
//! criterion, the drop-in replacement of bpfilter's `make benchmark`.
//!
//! Each runtime case is loaded once through the given bfcli; criterion's
//! iterations are packets, run by `BPF_PROG_TEST_RUN` with `repeat = iters`
//! and timed as this thread's CPU time. Chain-load cases time `chain set`.
//! Extra arguments filter cases as criterion does (`cargo bench -- prologue`).

use bench_harness::program::Bfcli;
use bench_harness::runner::{self, RunInput};
use bench_harness::suite::{self, Measure};
use bench_harness::suite_run::Side;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn suite_benches(c: &mut Criterion) {
    let Some(bfcli) = std::env::var_os("BFCLI") else {
        eprintln!("SKIPPED: set BFCLI=path/to/bfcli to benchmark a bpfilter build");
        return;
    };
    if let Err(e) = bench_harness::program::check_bpf_access() {
        eprintln!("SKIPPED: {e}");
        return;
    }
    bench_harness::interrupt::install();
    let bfcli = Bfcli::new(bfcli).unwrap_or_else(|e| panic!("{e}"));
    let side = Side::new(bfcli).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("bpfilter");
    for case in suite::suite() {
        match case.measure {
            Measure::Runtime { packet, expected } => {
                let chain = match side.load(&case) {
                    Ok(chain) => chain,
                    Err(e) => {
                        eprintln!("{}: unsupported: {e}", case.name);
                        continue;
                    }
                };
                let input = RunInput::new(case.flavor(), packet);
                if let Err(e) = runner::check_verdict(chain.program(), &input, expected) {
                    eprintln!("{}: FAILED: {e}", case.name);
                    continue;
                }
                group.throughput(Throughput::Elements(1));
                group.bench_function(&case.name, |b| {
                    b.iter_custom(|iters| {
                        let repeat = u32::try_from(iters).unwrap_or(u32::MAX);
                        let outcome = runner::test_run(chain.program(), &input, repeat).expect("test run");
                        Duration::from_nanos(outcome.cpu_ns)
                    })
                });
            }
            Measure::ChainLoad => {
                // As `bench`: bf_chain_set inside bfcli, or start-up subtracted.
                let method = side.chain_method();
                eprintln!("{}: {}", case.name, method.note());
                group.sample_size(10);
                group.throughput(Throughput::Elements(1));
                group.bench_function(&case.name, |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            let ms = side.time_chain_set(&case, method, i as usize).expect("chain set");
                            total += Duration::from_secs_f64(ms / 1e3);
                        }
                        total
                    })
                });
                group.sample_size(100);
            }
        }
    }
    group.finish();
}

criterion_group!(benches, suite_benches);
criterion_main!(benches);
