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
pub mod selfcheck;

/// Whether stdout takes colors.
fn color() -> bool {
    console::Term::stdout().is_term() && std::env::var_os("NO_COLOR").is_none()
}
