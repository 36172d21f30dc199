//! The JPEG reader (zune-jpeg and the conversion to the model's channels, then every fit
//! mode) on arbitrary bytes: a value or an error, never a panic. A panic inside zune-jpeg is
//! the reader's to contain (it becomes an error); any other panic is reported.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::contain_decoder_panics();
    detector::fuzz_entry::jpeg(data);
});
