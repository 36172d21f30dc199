//! Replays every file of `fuzz/corpus/<target>/` through the fuzz targets' entry points
//! (`detector::fuzz_entry`): none may panic. Crashing inputs found by fuzzing are added to the
//! corpus, so this test keeps them fixed without a fuzzer.
//!
//! The seed files are written by the ignored test below:
//! `cargo test -p detector --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};

use core_tensor::{Rng, Tensor};
use detector::data::cifar::encode_cifar_batch;
use detector::data::idx::{encode_idx_images, encode_idx_labels, gzip};
use detector::data::Dataset;
use detector::fuzz_entry;
use detector::io::checkpoint::Checkpoint;

type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("idx", fuzz_entry::idx),
    ("cifar", fuzz_entry::cifar),
    ("png", fuzz_entry::png),
    #[cfg(feature = "jpeg")]
    ("jpeg", fuzz_entry::jpeg),
    ("checkpoint", fuzz_entry::checkpoint),
    ("safetensors", fuzz_entry::safetensors),
    ("model", fuzz_entry::model),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn corpus_replays_without_panics() {
    for &(target, entry) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: empty corpus", dir.display());
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| entry(&bytes));
            assert!(r.is_ok(), "{target}: {} panics", f.display());
        }
        eprintln!("{target}: {} inputs replayed", files.len());
    }
}

fn png_bytes(w: u32, h: u32, c: png::ColorType, d: png::BitDepth, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(c);
        enc.set_depth(d);
        if c == png::ColorType::Indexed {
            enc.set_palette(vec![0, 0, 0, 255, 128, 0]);
            enc.set_trns(vec![255, 100]);
        }
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
    }
    out
}

/// Writes the seed files (small valid inputs of each format, and a few broken ones).
#[test]
#[ignore = "writes fuzz/corpus seeds"]
fn write_seed_corpus() {
    let mut rng = Rng::seed_from_u64(1);
    let mut bytes = |n: usize| -> Vec<u8> { (0..n).map(|_| rng.below(256) as u8).collect() };
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = Vec::new();

    let img = encode_idx_images(3, 4, 5, &bytes(60)).unwrap();
    let lab = encode_idx_labels(&[0, 9, 4]).unwrap();
    seeds.push(("idx", "images", img.clone()));
    seeds.push(("idx", "images.gz", gzip(&img)));
    seeds.push(("idx", "labels", lab.clone()));
    seeds.push(("idx", "labels.gz", gzip(&lab)));
    seeds.push(("idx", "images-truncated.gz", gzip(&img[..30])));

    let d = Dataset::new(bytes(2 * 3072), vec![3, 7], 3, 32, 32).unwrap();
    let batch = encode_cifar_batch(&d).unwrap();
    seeds.push(("cifar", "two-records", batch.clone()));
    seeds.push(("cifar", "one-record", batch[..3073].to_vec()));
    seeds.push(("cifar", "short", batch[..100].to_vec()));

    use png::{BitDepth as D, ColorType as C};
    seeds.push((
        "png",
        "grey8",
        png_bytes(4, 3, C::Grayscale, D::Eight, &bytes(12)),
    ));
    seeds.push((
        "png",
        "grey1",
        png_bytes(8, 2, C::Grayscale, D::One, &bytes(2)),
    ));
    seeds.push((
        "png",
        "ga8",
        png_bytes(3, 2, C::GrayscaleAlpha, D::Eight, &bytes(12)),
    ));
    seeds.push(("png", "rgb8", png_bytes(2, 2, C::Rgb, D::Eight, &bytes(12))));
    seeds.push((
        "png",
        "rgba16",
        png_bytes(2, 2, C::Rgba, D::Sixteen, &bytes(32)),
    ));
    seeds.push((
        "png",
        "grey16",
        png_bytes(3, 1, C::Grayscale, D::Sixteen, &bytes(6)),
    ));
    seeds.push((
        "png",
        "palette",
        png_bytes(4, 1, C::Indexed, D::Eight, &[0, 1, 0, 1]),
    ));

    let mut ck = Checkpoint::new();
    ck.put_tensor(
        "w",
        Tensor::from_vec(vec![1.0f32, -2.0, 0.5, 3.0], &[2, 2]).unwrap(),
    );
    ck.put_u64("step", 3);
    ck.put_f64("loss", 0.25);
    ck.put_str("config", "{\"alpha\":0.03}");
    ck.put_u64_array("rng", &[1, 2, 3, 4]);
    let ck = ck.to_bytes();
    seeds.push(("checkpoint", "small", ck.clone()));
    seeds.push(("checkpoint", "truncated", ck[..ck.len() / 2].to_vec()));

    // A small state dict in the authors' names (not a complete model: the full one is 900 kB).
    fn t(shape: Vec<usize>, data: &[u8]) -> safetensors::tensor::TensorView<'_> {
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, data).unwrap()
    }
    let w = bytes(32 * 16 * 4);
    let b = bytes(32 * 4);
    let st = safetensors::serialize(
        [
            ("module.down.0.weight", t(vec![32, 1, 4, 4], &w)),
            ("module.down.0.bias", t(vec![32], &b)),
        ],
        None,
    )
    .unwrap();
    seeds.push(("safetensors", "partial-state-dict", st));
    let count = 7i64.to_le_bytes();
    let st = safetensors::serialize(
        [(
            "ref_grad_count",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &count).unwrap(),
        )],
        None,
    )
    .unwrap();
    seeds.push(("safetensors", "count-only", st));

    // Last, so that the seeds above keep their random bytes.
    #[cfg(feature = "jpeg")]
    seeds.extend(jpeg_seeds(&mut bytes));

    for (target, name, data) in seeds {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

/// JPEG seeds: each colour type the encoder writes (grey, YCbCr, CMYK, YCCK), progressive,
/// subsampled, with restart markers, odd sizes, and a truncated file.
#[cfg(feature = "jpeg")]
fn jpeg_seeds(
    bytes: &mut impl FnMut(usize) -> Vec<u8>,
) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use jpeg_encoder::{ColorType as J, Encoder, SamplingFactor};
    let encode =
        |colour: J, w: u16, h: u16, data: &[u8], setup: &dyn Fn(&mut Encoder<&mut Vec<u8>>)| {
            let mut out = Vec::new();
            let mut enc = Encoder::new(&mut out, 80);
            setup(&mut enc);
            enc.encode(data, w, h, colour).unwrap();
            out
        };
    let plain = |_: &mut Encoder<&mut Vec<u8>>| {};
    let grey = encode(J::Luma, 9, 7, &bytes(63), &plain);
    vec![
        ("jpeg", "grey", grey.clone()),
        ("jpeg", "grey-truncated", grey[..grey.len() / 2].to_vec()),
        ("jpeg", "rgb", encode(J::Rgb, 8, 8, &bytes(192), &plain)),
        ("jpeg", "cmyk", encode(J::Cmyk, 5, 3, &bytes(60), &plain)),
        (
            "jpeg",
            "ycck",
            encode(J::CmykAsYcck, 4, 4, &bytes(64), &plain),
        ),
        (
            "jpeg",
            "progressive",
            encode(J::Rgb, 17, 9, &bytes(459), &|e| e.set_progressive(true)),
        ),
        (
            "jpeg",
            "subsampled-restarts",
            encode(J::Rgb, 19, 21, &bytes(1197), &|e| {
                e.set_sampling_factor(SamplingFactor::F_2_2);
                e.set_restart_interval(1);
            }),
        ),
    ]
}
