//! The JPEG reader (zune-jpeg and the conversion to the model's channels, then every fit
//! mode) on arbitrary bytes: a value or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::jpeg(data);
});
