//! The command line's parsing and checks: a usage error or a checked command, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gradcon_cli::fuzz_options(data);
});
