//! The `gradcon` command: see `gradcon --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

mod args;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse(); // exits with code 2 on a usage error
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradcon: error: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
