//! `cargo xtask optimize-dashboard`.

use anyhow::Result;
use std::time::Duration;
use xtask::flags::OptimizeDashboardFlags;
use xtask::optimize::dashboard::{Config, Server};
use xtask::worktree::Repo;
use xtask::{exit, workspace};

/// Serve the runs of one checkout until Ctrl-C, then interrupt the runs started here.
pub fn run(flags: OptimizeDashboardFlags) -> Result<i32> {
    let sources = xtask::session::sources(&flags.tree)?;
    let repo = Repo::open(sources.root())?;
    let cache = workspace::cache_dir(flags.common.cache_dir.as_deref())?;
    // This very binary, even once a rebuild has replaced the file (its path then reads "(deleted)").
    let program = std::path::PathBuf::from("/proc/self/exe");
    anyhow::ensure!(program.exists(), "no /proc/self/exe to start runs with: is /proc mounted?");
    let config = Config { sources: repo.root().to_owned(), cache, program, runs: flags.runs };
    if let Some(url) = &config.runs.api_base_url {
        // Where a key would go is checked before anything runs (loopback for plain http).
        xtask::agent::http::check_url(url)?;
    }
    let server = Server::start(flags.addr, config)?;
    // The token goes to the terminal only, never to a page: like `optimize --serve`'s.
    eprintln!("optimize-dashboard: {} (token: {})", server.url(), server.token());
    while !bench_harness::interrupt::requested() {
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("optimize-dashboard: interrupted; stopping the runs started here");
    server.stop_runs(Duration::from_secs(60));
    Ok(exit::INTERRUPTED)
}
