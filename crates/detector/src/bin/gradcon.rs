//! The `gradcon` command: see `gradcon --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = detector::cli::Cli::parse(); // exits with code 2 on a usage error
    match detector::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradcon: error: {e}");
            ExitCode::from(1)
        }
    }
}
