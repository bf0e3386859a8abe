//! `cargo xtask doctor`.

use anyhow::Result;
use xtask::doctor::Level;
use xtask::exit;
use xtask::flags::DoctorFlags;

/// Print every check; [`exit::ERROR`] when a required one failed.
pub fn run(flags: DoctorFlags) -> Result<i32> {
    let checks = xtask::doctor::run(flags.tree.sources.as_deref());
    for c in &checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| !c.ok && c.level == Level::Required).count();
    if failed > 0 {
        println!("{failed} required check(s) failed");
        Ok(exit::ERROR)
    } else {
        println!("ready");
        Ok(exit::OK)
    }
}
