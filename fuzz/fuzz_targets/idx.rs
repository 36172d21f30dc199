//! IDX images and labels, plain or gzipped: any input gives a value or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::idx(data);
});
