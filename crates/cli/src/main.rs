//! The `gradcon` command: see `gradcon --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use gradcon_cli::{args, commands};

fn main() -> ExitCode {
    // A panic inside an image decoder is turned into an error naming the file; its message
    // would only alarm. Every other panic is reported as usual.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !detector::data::inside_codec() {
            report(info)
        }
    }));
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
