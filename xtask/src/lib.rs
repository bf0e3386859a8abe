//! bfperf's library behind `cargo xtask`: building bpfilter trees, checking
//! out commits, comparing and tracking benchmark results, and the optimize
//! loop. The command line is `flags` (parsing) and the binary's `commands/`
//! (one module per subcommand).

pub mod adhoc;
pub mod agent;
pub mod bench;
pub mod build;
pub mod compare;
pub mod demo;
pub mod doctor;
pub mod exit;
pub mod flags;
pub mod history;
pub mod hook;
pub mod host;
pub mod lock;
pub mod machine;
pub mod optimize;
pub mod output;
pub mod planted;
pub mod progress;
pub mod remote;
pub mod revisions;
pub mod sandbox;
pub mod selfcheck;
pub mod session;
pub mod show;
pub mod sources;
pub mod text;
pub mod validation;
pub mod workspace;

/// Where the comparison's table and Markdown used to live (now in the output layer).
pub use output::report;
pub mod worktree;
