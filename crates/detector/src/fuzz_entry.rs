//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`): each feeds arbitrary bytes to a reader and, when the reader
//! accepts them, checks that what it returned is consistent (re-encoding round-trips). A panic
//! here is a bug; an error is the expected answer to bad input.

use crate::data::{cifar, idx};
use crate::io::checkpoint::Checkpoint;
use crate::io::safetensors::StateDict;

/// IDX images and labels readers (gzip detection included).
pub fn idx(data: &[u8]) {
    if let Ok(img) = idx::idx_images_from_bytes("fuzz", data) {
        assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
        let again = idx::encode_idx_images(img.count, img.rows, img.cols, &img.pixels)
            .expect("accepted images re-encode");
        assert_eq!(idx::idx_images_from_bytes("fuzz", &again).ok(), Some(img));
    }
    if let Ok(labels) = idx::idx_labels_from_bytes("fuzz", data) {
        let again = idx::encode_idx_labels(&labels).expect("accepted labels re-encode");
        assert_eq!(
            idx::idx_labels_from_bytes("fuzz", &again).ok(),
            Some(labels)
        );
    }
}

/// CIFAR-10 batch reader, and the 32 -> 28 resize of what it accepts.
pub fn cifar(data: &[u8]) {
    if let Ok(d) = cifar::cifar_batch_from_bytes("fuzz", data) {
        assert_eq!(cifar::encode_cifar_batch(&d).ok().as_deref(), Some(data));
        let small = d.take(&[0]).and_then(|one| one.resized(28, 28));
        assert_eq!(small.map(|s| s.images().len()).ok(), Some(3 * 28 * 28));
    }
}

/// PNG reader, to 1 and to 3 channels.
#[cfg(feature = "png")]
pub fn png(data: &[u8]) {
    for channels in [1, 3] {
        if let Ok(img) = crate::data::png::png_from_bytes("fuzz", data, channels) {
            assert_eq!(img.channels(), channels);
            let n = img.u8_pixels().map(<[u8]>::len);
            assert_eq!(n, Some(channels * img.height() * img.width()));
        }
    }
}

/// JPEG reader, to 1 and to 3 channels; and the fit modes on what it accepts.
#[cfg(feature = "jpeg")]
pub fn jpeg(data: &[u8]) {
    for channels in [1, 3] {
        if let Ok(img) = crate::data::jpeg::jpeg_from_bytes("fuzz", data, channels) {
            assert_eq!(img.channels(), channels);
            let pixels = img.u8_pixels().expect("8-bit pixels");
            assert_eq!(pixels.len(), channels * img.height() * img.width());
            for fit in crate::data::Fit::ALL {
                let small = fit.apply(pixels, channels, img.height(), img.width(), 28);
                // Padding may be refused for a long, thin image; nothing else may fail.
                match small {
                    Ok(v) => assert_eq!(v.len(), channels * 28 * 28),
                    Err(_) => assert_eq!(fit, crate::data::Fit::Pad),
                }
            }
        }
    }
}

/// Checkpoint reader; accepted input must re-encode to the same bytes. The input is also
/// read with a valid checksum appended, so the fuzzer reaches the parser behind the checksum.
pub fn checkpoint(data: &[u8]) {
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    for bytes in [data, &sealed] {
        if let Ok(ck) = Checkpoint::from_bytes("fuzz", bytes) {
            assert_eq!(ck.to_bytes(), bytes);
        }
    }
}

/// Safetensors import of GradCon weights; accepted weights must round-trip.
pub fn safetensors(data: &[u8]) {
    if let Ok(w) = StateDict::from_safetensors_bytes("fuzz", data) {
        let bytes = w
            .to_safetensors_bytes()
            .expect("accepted weights re-encode");
        let back = StateDict::from_safetensors_bytes("fuzz", &bytes).expect("round trip");
        assert_eq!(back.model.num_params(), w.model.num_params());
    }
}

/// The model loader: `.gcm`, checkpoint or safetensors bytes, with the finiteness check. An
/// accepted model must re-encode and load back equal, and score an image.
pub fn model(data: &[u8]) {
    if let Ok(d) = crate::Detector::from_bytes("fuzz", data) {
        let back = crate::Detector::from_bytes("fuzz", &d.to_bytes()).expect("round trip");
        assert_eq!(back, d);
        let img = crate::Image::from_u8(d.channels(), 4, 4, vec![9; d.channels() * 16])
            .expect("a valid image");
        assert!(d.score(&img).is_ok());
    }
}

/// For the fuzz targets of readers that contain their decoder crate's panics (PNG, JPEG): a
/// panic hook that lets those through to the reader's containment, which makes them errors,
/// and hands every other panic to the hook installed before (libFuzzer's, which reports it).
/// Installed once per process.
pub fn contain_decoder_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::data::inside_codec() {
                report(info)
            }
        }));
    });
}
