//! Measuring the statistics themselves, on this host's kernel:
//!
//! * **power**: programs generated here with a known extra cost (an empty
//!   program padded with `k` dependent ALU instructions) are compared with
//!   the unpadded one, many times; the smallest true slowdown detected in at
//!   least 9 of 10 comparisons is what a comparison can resolve on this host.
//! * the **A/A false-verdict rate** is measured by the caller with the real
//!   engine (`interleave::run` with the same build on both sides).

use crate::compare::{self, Change};
use crate::error::{HarnessError, Result};
use crate::flavor::{Flavor, Verdict};
use crate::interleave::CompareConfig;
use crate::packet::PacketKind;
use crate::program::Program;
use crate::runner::{self, RunInput};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An XDP program returning `verdict` after `padding` dependent ALU
/// instructions (`r1 = r1 * 7; r1 ^= K; ...`), which neither the verifier nor
/// the JIT removes.
pub fn padded_program(padding: u32, verdict: Verdict) -> Result<Program> {
    let flavor = Flavor::Xdp;
    let alu = |op: u32, imm: i32| libbpf_sys::bpf_insn {
        code: (libbpf_sys::BPF_ALU64 | op | libbpf_sys::BPF_K) as u8,
        _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(1, 0),
        imm,
        ..Default::default()
    };
    let mut insns = vec![alu(libbpf_sys::BPF_MOV, 1)];
    for i in 0..padding {
        insns.push(if i % 2 == 0 { alu(libbpf_sys::BPF_MUL, 7) } else { alu(libbpf_sys::BPF_XOR, 0x5a5a5a5) });
    }
    insns.push(libbpf_sys::bpf_insn {
        code: (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8,
        imm: flavor.retval(verdict) as i32,
        ..Default::default()
    });
    insns.push(libbpf_sys::bpf_insn { code: (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8, ..Default::default() });
    Program::load_insns(flavor, &insns)
}

/// Detection rate of one true slowdown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerPoint {
    /// Extra instructions in the slower program.
    pub extra_insns: u32,
    /// The true slowdown, in %, measured with many rounds.
    pub true_delta_pct: f64,
    /// Comparisons that said `slower`.
    pub detected: usize,
    /// Comparisons that said `faster` (wrong direction).
    pub wrong: usize,
    /// Comparisons run.
    pub reps: usize,
}

/// Paired ABBA rounds of two programs; returns (base, reference) samples.
fn rounds(a: &Program, b: &Program, input: &RunInput, repeat: u32, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut xs, mut ys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        crate::interrupt::check()?;
        if i % 2 == 0 {
            xs.push(runner::sample(a, input, repeat)?);
            ys.push(runner::sample(b, input, repeat)?);
        } else {
            ys.push(runner::sample(b, input, repeat)?);
            xs.push(runner::sample(a, input, repeat)?);
        }
    }
    Ok((xs, ys))
}

/// For each padding in `extras`, run `reps` comparisons against the base
/// program with the engine's adaptive rounds (`min_rounds`, then batches
/// until the interval is narrower than `target_ci_pct` or `max_rounds`).
pub fn power(
    base_padding: u32,
    extras: &[u32],
    reps: usize,
    config: &CompareConfig,
    mut on_point: impl FnMut(&PowerPoint),
) -> Result<Vec<PowerPoint>> {
    crate::interrupt::install();
    let input = RunInput::new(Flavor::Xdp, PacketKind::LocalIp4Icmp);
    let base = padded_program(base_padding, Verdict::Drop)?;
    if runner::test_run(&base, &input, 1)?.retval != Flavor::Xdp.retval(Verdict::Drop) {
        return Err(HarnessError::TestRun {
            flavor: Flavor::Xdp,
            reason: "padded program returned the wrong verdict".into(),
        });
    }
    let repeat = runner::calibrate(&base, &input, Duration::from_secs_f64(config.sample_ms / 1000.0))?;
    let mut points = vec![];
    for &extra in extras {
        let slower = padded_program(base_padding + extra, Verdict::Drop)?;
        // The truth: many rounds, far more than a comparison gets.
        let (xs, ys) = rounds(&base, &slower, &input, repeat, 120)?;
        let truth = compare::paired_ratio(&xs, &ys, config.level);
        let mut point =
            PowerPoint { extra_insns: extra, true_delta_pct: truth.delta_pct(), detected: 0, wrong: 0, reps };
        for _ in 0..reps {
            // As the engine does for one case: a first pass, then more rounds
            // until the interval is narrow enough or the round cap is hit.
            let (mut xs, mut ys) = rounds(&base, &slower, &input, repeat, config.min_rounds)?;
            let mut est = compare::paired_ratio(&xs, &ys, config.level);
            while (est.hi - est.lo) / est.ratio * 100.0 > config.target_ci_pct && xs.len() < config.max_rounds {
                let (more_x, more_y) = rounds(&base, &slower, &input, repeat, 4)?;
                xs.extend(more_x);
                ys.extend(more_y);
                est = compare::paired_ratio(&xs, &ys, config.level);
            }
            match compare::classify(&est, config.threshold_pct) {
                Change::Slower => point.detected += 1,
                Change::Faster => point.wrong += 1,
                Change::NoChange => {}
            }
        }
        on_point(&point);
        points.push(point);
    }
    Ok(points)
}

/// The smallest true slowdown detected at least 9 times out of 10.
pub fn smallest_detected(points: &[PowerPoint]) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.reps > 0 && p.detected * 10 >= p.reps * 9)
        .map(|p| p.true_delta_pct)
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_detected_needs_nine_in_ten() {
        let p = |d: f64, detected| PowerPoint { extra_insns: 0, true_delta_pct: d, detected, wrong: 0, reps: 10 };
        assert_eq!(smallest_detected(&[p(0.5, 3), p(1.5, 9), p(3.0, 10)]), Some(1.5));
        assert_eq!(smallest_detected(&[p(0.5, 8)]), None);
    }
}
