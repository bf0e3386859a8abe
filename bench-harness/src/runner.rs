//! `BPF_PROG_TEST_RUN`: run a loaded program on a packet, check its verdict,
//! calibrate the repeat count and take timed samples.
//!
//! A sample is the CPU time this thread spent in one test-run call divided by
//! its repeat count. CPU time (CLOCK_THREAD_CPUTIME_ID) rather than the
//! kernel's `duration` because `duration` is an integer number of ns per run
//! (a 1 ns step is 3 % of a 30 ns program), and rather than wall time because
//! time spent preempted by other tasks is not the program's cost.

use crate::error::{HarnessError, Result};
use crate::flavor::{Flavor, Verdict, NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_LOCAL_IN};
use crate::packet::PacketKind;
use crate::program::Program;
use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Size of the kernel's `struct nf_hook_state`, the netfilter test-run context.
const NF_CTX_LEN: usize = 48;

/// The input of a test run: the packet, and for netfilter the hook context.
#[derive(Debug, Clone)]
pub struct RunInput {
    data: Vec<u8>,
    ctx: Option<[u8; NF_CTX_LEN]>,
}

impl RunInput {
    /// The input for running a `flavor` program on `packet`.
    pub fn new(flavor: Flavor, packet: PacketKind) -> Self {
        let ctx = (flavor == Flavor::Netfilter).then(|| {
            // Only `hook` and `pf` are read by the kernel; pointers stay zero.
            let mut ctx = [0u8; NF_CTX_LEN];
            ctx[0] = NF_INET_LOCAL_IN;
            ctx[1] = if packet.is_ipv6() { NFPROTO_IPV6 } else { NFPROTO_IPV4 };
            ctx
        });
        RunInput { data: packet.build(), ctx }
    }
}

/// What one test-run call reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOutcome {
    /// The program's return value.
    pub retval: u32,
    /// The kernel's own average, in whole ns per run.
    pub kernel_ns: u32,
    /// This thread's CPU time for the call, in ns.
    pub cpu_ns: u64,
}

fn thread_cpu_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("CLOCK_THREAD_CPUTIME_ID exists on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Run `program` `repeat` times on `input` in one BPF_PROG_TEST_RUN call.
pub fn test_run(program: &Program, input: &RunInput, repeat: u32) -> Result<RunOutcome> {
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: input.data.as_ptr().cast(),
        data_size_in: input.data.len() as u32,
        repeat: repeat as i32,
        ..Default::default()
    };
    if let Some(ctx) = &input.ctx {
        opts.ctx_in = ctx.as_ptr().cast();
        opts.ctx_size_in = ctx.len() as u32;
    }
    let start = thread_cpu_ns();
    // SAFETY: data and ctx outlive the call; the kernel only reads them
    // (data_out/ctx_out are null).
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(program.raw_fd(), &mut opts) };
    let cpu_ns = thread_cpu_ns() - start;
    if ret < 0 {
        let errno = -ret;
        let reason = std::io::Error::from_raw_os_error(errno).to_string();
        return Err(if errno == nix::errno::Errno::EPERM as i32 {
            HarnessError::BpfNotPermitted(reason)
        } else {
            HarnessError::TestRun { flavor: program.flavor(), reason }
        });
    }
    Ok(RunOutcome { retval: opts.retval, kernel_ns: opts.duration, cpu_ns })
}

/// Run once and check the return value against `expected`.
pub fn check_verdict(program: &Program, input: &RunInput, expected: Verdict) -> Result<u32> {
    let outcome = test_run(program, input, 1)?;
    let want = program.flavor().retval(expected);
    if outcome.retval != want {
        return Err(HarnessError::WrongVerdict { expected: want, verdict: expected, got: outcome.retval });
    }
    Ok(outcome.retval)
}

/// How samples are taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    /// Target duration of one sample (one test-run call), in ms.
    pub sample_ms: f64,
    /// Samples per runtime case.
    pub samples: usize,
    /// Untimed calls before sampling (caches, branch predictors, JIT pages).
    pub warmup: usize,
    /// Samples of each chain-load case (fewer for very slow loads).
    pub load_samples: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig { sample_ms: 10.0, samples: 30, warmup: 2, load_samples: 5 }
    }
}

/// Largest repeat count the harness asks for (the kernel takes any u32, but a
/// call this long would stall the machine and the Ctrl-C check).
const MAX_REPEAT: u32 = 50_000_000;

/// Find the repeat count for which one call takes about `target`.
pub fn calibrate(program: &Program, input: &RunInput, target: Duration) -> Result<u32> {
    let target_ns = target.as_nanos() as f64;
    let mut repeat: u32 = 1_000;
    loop {
        crate::interrupt::check()?;
        let outcome = test_run(program, input, repeat)?;
        let spent = outcome.cpu_ns.max(1) as f64;
        // Trust the rate once a call is long enough for timer noise not to matter.
        if spent >= target_ns / 10.0 || repeat >= MAX_REPEAT {
            let scaled = (repeat as f64 * target_ns / spent).round();
            return Ok(scaled.clamp(1.0, MAX_REPEAT as f64) as u32);
        }
        repeat = repeat.saturating_mul(10).min(MAX_REPEAT);
    }
}

/// One timed sample: ns per packet over one call of `repeat` runs.
pub fn sample(program: &Program, input: &RunInput, repeat: u32) -> Result<f64> {
    let outcome = test_run(program, input, repeat)?;
    Ok(outcome.cpu_ns as f64 / f64::from(repeat.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netfilter_input_has_the_hook_context() {
        let input = RunInput::new(Flavor::Netfilter, PacketKind::LocalIp6Tcp);
        let ctx = input.ctx.expect("netfilter needs a context");
        assert_eq!((ctx[0], ctx[1]), (NF_INET_LOCAL_IN, NFPROTO_IPV6));
        assert!(ctx[2..].iter().all(|&b| b == 0));
        let v4 = RunInput::new(Flavor::Netfilter, PacketKind::LocalIp4Tcp);
        assert_eq!(v4.ctx.unwrap()[1], NFPROTO_IPV4);
        assert!(RunInput::new(Flavor::Xdp, PacketKind::LocalIp6Tcp).ctx.is_none());
    }
}
