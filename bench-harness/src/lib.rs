//! bench-harness: loads bpfilter-generated BPF programs and measures them.
//!
//! * [`suite`]: the benchmark cases (same names as bpfilter's own suite);
//! * [`packet`]: the test packets, built with `etherparse`;
//! * [`program`]: programs from a build's bfcli (pinned in a private
//!   [`bpffs`]) or from the harness (the empty-program floor);
//! * [`runner`]: `BPF_PROG_TEST_RUN`, calibration and samples;
//! * [`bench`]: the suite on one build; [`results`]: the JSON it writes;
//! * [`stats`]: robust summaries; [`compare`]: the statistics, whose coverage
//!   [`coverage`] simulates through the engine's own loop ([`interleave`]).

pub mod bench;
pub mod bpffs;
pub mod compare;
pub mod coverage;
pub mod error;
pub mod flavor;
pub mod interleave;
pub mod interrupt;
pub mod packet;
pub mod program;
pub mod report;
pub mod results;
pub mod runner;
pub mod selfcheck;
pub mod stats;
pub mod suite;

pub use error::{HarnessError, Result};
