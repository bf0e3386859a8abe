//! One module per subcommand: each runs from its parsed flags and returns
//! the exit code (xtask::exit). The work is in the library; what a command
//! prints is here.

pub mod bench;
pub mod compare;
pub mod demo;
pub mod doctor;
pub mod history;
pub mod hook;
pub mod optimize;
pub mod optimize_dashboard;
pub mod selfcheck;
pub mod show;

use xtask::flags::Command;

/// Dispatch to the command's module.
pub fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Bench(flags) => bench::run(flags),
        Command::BenchCompare(flags) => compare::run(flags),
        Command::Show(flags) => show::run(flags),
        Command::BenchHistory(flags) => history::run(flags),
        Command::BenchSelfcheck(flags) => selfcheck::run(flags),
        Command::Optimize(flags) => optimize::run(*flags),
        Command::OptimizeDashboard(flags) => optimize_dashboard::run(flags),
        Command::Doctor(flags) => doctor::run(flags),
        Command::InstallHook(flags) => hook::run(flags),
        Command::Demo(flags) => demo::run(flags),
        Command::Harness => Ok(xtask::remote::harness::serve()),
        Command::OptimizeShow(args) => optimize::show(args),
        Command::SandboxExec(_) => unreachable!("main runs it before the interrupt handler"),
    }
}
