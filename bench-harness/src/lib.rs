//! bench-harness: loads bpfilter-generated BPF programs and measures them.
//!
//! * [`suite`]: the benchmark cases (same names as bpfilter's own suite);
//! * [`packet`]: the test packets, built with `etherparse`;
//! * [`program`]: programs from a build's bfcli (pinned in a private
//!   [`bpffs`]) or from the harness (the empty-program floor);
//! * [`code`]: a loaded program's xlated code, and whether two loads are
//!   the same program; [`listing`]: its listing in bpftool's syntax
//!   (labels, named helpers and maps, optional x86-64 code) and the diff of two;
//! * [`runner`]: `BPF_PROG_TEST_RUN`, calibration and samples;
//! * [`suite_run`]: the suite on one build; [`results`]: the JSON it writes
//!   (tables, Markdown, CSV and HTML are xtask's output layer);
//! * [`engine`]: the comparison of two builds (interleaved adaptive rounds),
//!   its verdict ([`engine::verdict`]) and its JSON ([`engine::Comparison`]);
//! * [`stats`]: robust summaries, and [`stats::paired`] the paired
//!   statistics, whose coverage [`coverage`] simulates through the engine's
//!   own loop; [`power`]: the smallest slowdown the engine resolves here.

pub mod bpffs;
pub mod chainset;
pub mod code;
pub mod coverage;
pub mod engine;
pub mod error;
pub mod flavor;
pub mod interrupt;
pub mod listing;
pub mod packet;
pub mod power;
pub mod program;
pub mod results;
pub mod runner;
pub mod stats;
pub mod suite;
pub mod suite_run;

pub use error::{HarnessError, Result};
