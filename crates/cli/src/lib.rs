//! The `gradcon` command line as a library: argument parsing and checks ([`args`]) and what
//! each subcommand does ([`commands`]), and the HTML report of `--report DIR` ([`report`]). The binary (`src/main.rs`) and the option-parsing fuzz
//! target use it.

pub mod args;
pub mod commands;
mod measure;
mod progress;
pub mod report;

/// The option-parsing fuzz target's entry point: `data` split at NUL bytes is a command line
/// after the program name; parsing and every check must give a value or an error, never a
/// panic.
#[doc(hidden)]
pub fn fuzz_options(data: &[u8]) {
    let words = data
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned());
    if let Ok(cli) = args::parse(std::iter::once("gradcon".to_string()).chain(words)) {
        let _ = cli.validate();
    }
}
