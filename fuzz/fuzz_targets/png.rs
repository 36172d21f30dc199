//! The png reader on arbitrary bytes: a value or an error, never a panic. A panic inside the
//! png crate is the reader's to contain (it becomes an error); any other panic is reported.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::contain_decoder_panics();
    detector::fuzz_entry::png(data);
});
