//! An attempt's generated code against its parent's, without timing anything:
//! each judged case is loaded on both builds and its programs compared
//! ([`bench_harness::code::ProgramCode::same_program`]) and counted
//! (xlated instructions). An attempt whose every program is its parent's is
//! rejected at once, and `--objective insns` is decided from the counts.

use bench_harness::program::Bfcli;
use bench_harness::suite::Case;
use bench_harness::suite_run::Side;
use std::path::Path;

/// One case's programs on the parent and on the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCode {
    /// Case name.
    pub case: String,
    /// Both loaded and their code is the same program.
    pub same: bool,
    /// Attempt minus parent xlated instructions, when both loaded.
    pub insns_delta: Option<i64>,
    /// Why a side could not be loaded.
    pub error: Option<String>,
}

/// The programs of `cases` on the `parent` and `attempt` bfclis (local paths).
/// A case that does not load on a side is reported as such, not as an error;
/// Ctrl-C and a refused bpf() are errors.
pub fn compare(parent: &Path, attempt: &Path, cases: &[&Case]) -> anyhow::Result<Vec<CaseCode>> {
    bench_harness::program::check_bpf_access()?;
    bench_harness::bpffs::sweep_stale();
    let (a, b) = (Side::new(Bfcli::new(parent)?)?, Side::new(Bfcli::new(attempt)?)?);
    let mut out = vec![];
    for case in cases {
        bench_harness::interrupt::check()?;
        let loaded = a.load(case).and_then(|pa| {
            let pa = pa.into_program();
            let pb = b.load(case)?.into_program();
            let same = pa.code()?.same_program(&pb.code()?);
            let delta = i64::from(pb.metrics().xlated_insns) - i64::from(pa.metrics().xlated_insns);
            Ok((same, delta))
        });
        out.push(match loaded {
            Ok((same, delta)) => CaseCode { case: case.name.clone(), same, insns_delta: Some(delta), error: None },
            Err(e @ bench_harness::HarnessError::Interrupted) => return Err(e.into()),
            Err(e) => CaseCode { case: case.name.clone(), same: false, insns_delta: None, error: Some(e.to_string()) },
        });
    }
    Ok(out)
}

/// Every case loaded on both sides and is the same program.
pub fn unchanged(code: &[CaseCode]) -> bool {
    !code.is_empty() && code.iter().all(|c| c.same)
}
