//! Measuring the statistics themselves, on this host's kernel:
//!
//! * **power**: programs generated here with a known extra cost (an empty
//!   program padded with `k` dependent ALU instructions) are compared with
//!   the unpadded one, many times, by the engine's own adaptive rounds with
//!   fresh copies ([`engine::adaptive`], [`Copies`]); the smallest true
//!   slowdown detected in at least 9 of 10 comparisons is what a comparison
//!   can resolve on this host.
//! * the **A/A false-verdict rate** is measured by the caller with the real
//!   engine (`engine::run` with the same build on both sides).

use crate::engine::{self, Change, CompareConfig, Copies, RoundSource};
use crate::error::{HarnessError, Result};
use crate::flavor::{Flavor, Verdict};
use crate::packet::PacketKind;
use crate::program::Program;
use crate::runner::{self, RunInput};
use crate::stats::paired::RatioEstimate;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

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

/// Two generated programs as the engine's [`RoundSource`]: `config.instances`
/// loaded copies per side, used and replaced by fresh copies exactly as
/// [`engine::run`] does for a case of the suite.
struct Padded<'a> {
    paddings: (u32, u32),
    copies: Copies,
    input: &'a RunInput,
    repeat: u32,
    deadline: Instant,
}

impl<'a> Padded<'a> {
    fn load(paddings: (u32, u32), input: &'a RunInput, repeat: u32, config: &CompareConfig) -> Result<Self> {
        let (mut base, mut reference) = (vec![], vec![]);
        for _ in 0..config.instances.max(1) {
            base.push(padded_program(paddings.0, Verdict::Drop)?);
            reference.push(padded_program(paddings.1, Verdict::Drop)?);
        }
        // As the engine does after loading a case: untimed calls on every copy.
        for _ in 0..config.warmup {
            for p in base.iter().chain(&reference) {
                runner::sample(p, input, repeat)?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs_f64(config.time_budget_s);
        Ok(Padded { paddings, copies: Copies::new(base, reference), input, repeat, deadline })
    }
}

impl RoundSource for Padded<'_> {
    fn round(&mut self, _case: usize, done: usize) -> Result<Option<(f64, f64)>> {
        crate::interrupt::check()?;
        let (p0, p1) = self.paddings;
        let (base, reference) = self
            .copies
            .for_round(done, || Ok((padded_program(p0, Verdict::Drop)?, padded_program(p1, Verdict::Drop)?)))?;
        let (input, repeat) = (self.input, self.repeat);
        engine::abba(done, || runner::sample(base, input, repeat), || runner::sample(reference, input, repeat))
            .map(Some)
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// One comparison of the two paddings by the engine's adaptive rounds
/// ([`engine::adaptive`]): the estimate and verdict of the case.
fn compare_once(
    paddings: (u32, u32),
    input: &RunInput,
    repeat: u32,
    config: &CompareConfig,
) -> Result<(RatioEstimate, Change)> {
    let mut source = Padded::load(paddings, input, repeat, config)?;
    let case = engine::adaptive(1, config, &mut source)?.remove(0);
    match (case.estimate, case.change) {
        (Some(est), Some(change)) => Ok((est, change)),
        _ => Err(HarnessError::TestRun { flavor: Flavor::Xdp, reason: "no round was measured".into() }),
    }
}

/// For each padding in `extras`, run `reps` comparisons against the base
/// program with the engine's own adaptive rounds ([`engine::adaptive`]:
/// `min_rounds`, then batches until the interval is narrower than
/// `target_ci_pct` or `max_rounds`), with fresh copies as in a real
/// comparison. The true slowdown is measured first, by the same engine
/// held at 120 rounds.
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
    drop(base);
    let truth_config = CompareConfig { min_rounds: TRUTH_ROUNDS, max_rounds: TRUTH_ROUNDS, ..*config };
    let mut points = vec![];
    for &extra in extras {
        let paddings = (base_padding, base_padding + extra);
        // The truth: many rounds, far more than a comparison gets.
        let (truth, _) = compare_once(paddings, &input, repeat, &truth_config)?;
        let mut point =
            PowerPoint { extra_insns: extra, true_delta_pct: truth.delta_pct(), detected: 0, wrong: 0, reps };
        for _ in 0..reps {
            match compare_once(paddings, &input, repeat, config)?.1 {
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

/// Rounds of the measurement of a padding's true slowdown.
const TRUTH_ROUNDS: usize = 120;

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
