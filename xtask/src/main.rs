//! `cargo xtask`: bfperf's command line. Parses (xtask::flags), installs the
//! interrupt handler, runs the command (`commands/`, one module each) and maps
//! its outcome to the exit code (xtask::exit, doc/exit-codes.md).

mod commands;

use xtask::flags::{Cli, Command};
use xtask::{exit, text};

fn main() {
    let cli: Cli = exit::parse();
    let result = match cli.command {
        // Before any thread starts (the interrupt handler's): a threaded process cannot unshare its mounts.
        Command::SandboxExec(args) => Ok(xtask::sandbox::exec_main(args)),
        command => {
            bench_harness::interrupt::install();
            run(command)
        }
    };
    std::process::exit(match result {
        Ok(code) => code,
        Err(e) => match exit::finished(&e) {
            // The command ran again inside a systemd slice (--slice); that run printed everything.
            Some(code) => code,
            None => {
                // Errors quote remote hosts, bfcli and the model: no terminal escapes.
                eprintln!("error: {}", text::block(&format!("{e:#}")));
                exit::of_error()
            }
        },
    })
}

/// Dispatch to the command's module.
fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Bench(flags) => commands::bench::run(flags),
        Command::BenchCompare(flags) => commands::compare::run(flags),
        Command::BenchHistory(flags) => commands::history::run(flags),
        Command::BenchSelfcheck(flags) => commands::selfcheck::run(flags),
        Command::Optimize(flags) => commands::optimize::run(flags),
        Command::Doctor(flags) => commands::doctor::run(flags),
        Command::InstallHook(flags) => commands::hook::run(flags),
        Command::Demo(flags) => commands::demo::run(flags),
        Command::Harness => Ok(xtask::remote::harness::serve()),
        Command::SandboxExec(_) => unreachable!("run by main before the interrupt handler"),
    }
}
