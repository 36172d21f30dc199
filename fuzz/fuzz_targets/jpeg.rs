//! The JPEG reader (zune-jpeg and the conversion to the model's channels, then every fit
//! mode) on arbitrary bytes: a value or an error, never a panic. A panic inside zune-jpeg is
//! the reader's to contain (it becomes an error); any other panic is reported.
//!
//! The pixel limit is lowered to 2^12 values, so that inputs declaring large images are
//! refused before decoding, as the reader refuses any image over the limit: the decoder's
//! code paths (several MCUs in both directions, every subsampling, progressive scans) are the
//! same for small images. Most of the time of an accepted input goes to resampling long, thin
//! images to 28 x 28 for every fit mode; at 2^16 values the target ran at about 600 inputs a
//! second once its corpus had grown, at 2^12 several times faster.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static LIMITS: std::sync::Once = std::sync::Once::new();
    LIMITS.call_once(|| {
        detector::io::fs::Limits {
            max_file_bytes: 1 << 20,
            max_pixels: 1 << 12,
        }
        .install()
        .expect("valid limits");
    });
    detector::fuzz_entry::contain_decoder_panics();
    detector::fuzz_entry::jpeg(data);
});
