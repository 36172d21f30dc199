//! The safetensors reader on arbitrary bytes: a value or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::safetensors(data);
});
