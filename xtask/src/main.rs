//! `cargo xtask`: bfperf's command line. Parses (xtask::flags), installs the
//! interrupt handler, runs the command (`commands/`, one module each) and maps
//! its outcome to the exit code (xtask::exit, doc/exit-codes.md).

mod commands;

use xtask::flags::{Cli, Command};
use xtask::{exit, text};

fn main() {
    let cli: Cli = exit::parse();
    if let Some(common) = cli.command.common() {
        xtask::progress::init(common.quiet);
        xtask::output::init_color(common.color);
    }
    let result = match cli.command {
        // Before any thread starts (the interrupt handler's): a threaded process cannot unshare its mounts.
        Command::SandboxExec(args) => Ok(xtask::sandbox::exec_main(args)),
        command => {
            bench_harness::interrupt::install();
            commands::run(command)
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
