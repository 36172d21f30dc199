//! The `gradcon` command: see `gradcon --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use gradcon_cli::{args, commands};

fn main() -> ExitCode {
    let cli = match args::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(), // code 2, as every usage error (0 for --help and --version)
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradcon: error: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
