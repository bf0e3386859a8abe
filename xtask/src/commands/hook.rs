//! `cargo xtask install-hook`.

use anyhow::Result;
use xtask::exit;
use xtask::flags::HookFlags;

/// Install or remove the pre-push hook.
pub fn run(flags: HookFlags) -> Result<i32> {
    let sources = xtask::session::sources(&flags.tree)?;
    if flags.uninstall {
        let path = xtask::hook::uninstall(sources.root())?;
        println!("removed {}", path.display());
    } else {
        let bfperf = xtask::workspace::root()?;
        let path = xtask::hook::install(sources.root(), &bfperf)?;
        println!("installed {} (bypass once with git push --no-verify)", path.display());
    }
    Ok(exit::OK)
}
