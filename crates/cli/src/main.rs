//! The `gradcon` command: see `gradcon --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

mod args;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // `--lr -1` is a value to refuse with a clear message, not an unknown flag `-1`.
    let command = args::Cli::command()
        .allow_negative_numbers(true)
        .mut_subcommands(|s| s.allow_negative_numbers(true));
    let cli = match args::Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(), // code 2, as every usage error
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradcon: error: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
