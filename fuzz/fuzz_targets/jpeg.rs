//! The JPEG reader (zune-jpeg and the conversion to the model's channels, then every fit
//! mode) on arbitrary bytes: a value or an error, never a panic. A panic inside zune-jpeg is
//! the reader's to contain (it becomes an error); any other panic is reported.
//!
//! The pixel limit is lowered to 2^16 values, so that inputs declaring large images are
//! refused before decoding, as the reader refuses any image over the limit: the decoder's
//! code paths are the same for small images, and the target runs about ten times faster.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static LIMITS: std::sync::Once = std::sync::Once::new();
    LIMITS.call_once(|| {
        detector::io::fs::Limits {
            max_file_bytes: 1 << 20,
            max_pixels: 1 << 16,
        }
        .install()
        .expect("valid limits");
    });
    detector::fuzz_entry::contain_decoder_panics();
    detector::fuzz_entry::jpeg(data);
});
