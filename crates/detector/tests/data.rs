//! Readers (IDX, CIFAR-10, PNG), the Dataset helpers, the data folder resolution and the
//! folder loaders, on data the tests write themselves.

use std::path::{Path, PathBuf};

use core_tensor::Rng;
use detector::data::cifar::{cifar_batch_from_bytes, encode_cifar_batch, CIFAR_RECORD_BYTES};
use detector::data::idx::{
    encode_idx_images, encode_idx_labels, gzip, idx_images_from_bytes, idx_labels_from_bytes,
};
use detector::data::{
    load_cifar10, load_fashion_mnist, load_mnist, png_from_bytes, resize_lanczos_planes,
    resolve_data_dir_from, Dataset, Split,
};
use detector::Error;

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.below(256) as u8).collect()
}

/// The problem text of a format error naming `file`.
fn problem<T: std::fmt::Debug>(r: Result<T, Error>, file: &str) -> String {
    match r {
        Err(Error::Format { file: f, problem }) => {
            assert_eq!(f, file);
            problem
        }
        other => panic!("expected a format error for {file}, got {other:?}"),
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("gradcon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- IDX

#[test]
fn idx_round_trip_plain_and_gzipped() {
    let pixels = random_bytes(5 * 3 * 4, 1);
    let file = encode_idx_images(5, 3, 4, &pixels).unwrap();
    assert_eq!(&file[..4], &[0, 0, 8, 3]);
    for bytes in [file.clone(), gzip(&file)] {
        let img = idx_images_from_bytes("x", &bytes).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (5, 3, 4));
        assert_eq!(img.pixels, pixels);
    }
    let labels = vec![0, 9, 3];
    let lf = encode_idx_labels(&labels).unwrap();
    assert_eq!(&lf[..4], &[0, 0, 8, 1]);
    assert_eq!(idx_labels_from_bytes("l", &gzip(&lf)).unwrap(), labels);
    assert_eq!(idx_labels_from_bytes("l", &lf).unwrap(), labels);
}

#[test]
fn idx_refuses_bad_files() {
    let file = encode_idx_images(2, 2, 2, &[1; 8]).unwrap();
    let labels = encode_idx_labels(&[1, 2]).unwrap();
    // Labels given as images and the reverse: the magic is named.
    let p = problem(idx_images_from_bytes("l.idx", &labels), "l.idx");
    assert!(
        p.contains("wrong magic 0x00000801, expected 0x00000803"),
        "{p}"
    );
    let p = problem(idx_labels_from_bytes("i.idx", &gzip(&file)), "i.idx");
    assert!(p.contains("wrong magic 0x00000803"), "{p}");
    // Truncated header, truncated data, trailing data; plain and gzipped.
    for wrap in [|b: &[u8]| b.to_vec(), |b: &[u8]| gzip(b)] {
        let p = problem(idx_images_from_bytes("t", &wrap(&file[..10])), "t");
        assert!(
            p.contains("truncated: the IDX u8 images header needs 16 bytes"),
            "{p}"
        );
        let p = problem(
            idx_images_from_bytes("t", &wrap(&file[..file.len() - 1])),
            "t",
        );
        assert!(p.contains("need 8 bytes of data, 7 present"), "{p}");
        let mut long = file.clone();
        long.push(0);
        let p = problem(idx_images_from_bytes("t", &wrap(&long)), "t");
        assert!(p.contains("but more follow"), "{p}");
    }
    // Absurd dimensions in a 16-byte file: refused before any allocation.
    let mut absurd = file[..16].to_vec();
    absurd[4..16].fill(0xff);
    let p = problem(idx_images_from_bytes("a", &absurd), "a");
    assert!(p.contains("claim more than"), "{p}");
    // Plausible dimensions that the (gzipped) file does not hold.
    let mut big = file[..16].to_vec();
    big[4..8].copy_from_slice(&60_000u32.to_be_bytes());
    big[8..16].copy_from_slice(&[0, 0, 0, 28, 0, 0, 0, 28]);
    let p = problem(idx_images_from_bytes("b", &gzip(&big)), "b");
    assert!(
        p.contains("need 47040000 bytes of data, 0 present after decompression"),
        "{p}"
    );
    // Empty images, a broken gzip stream.
    let p = problem(
        idx_images_from_bytes("e", &encode_idx_images(0, 0, 5, &[]).unwrap()),
        "e",
    );
    assert!(p.contains("empty"), "{p}");
    let mut gz = gzip(&file);
    let n = gz.len();
    gz[n / 2] ^= 0x55;
    gz[n - 6] ^= 0x55; // the CRC-32 in the trailer
                       // Which check fires depends on where the damage lands; some check must.
    problem(idx_images_from_bytes("g", &gz), "g");
}

// ---------------------------------------------------------------- CIFAR-10

fn cifar_like(n: usize, seed: u64) -> Dataset {
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(random_bytes(n * 3072, seed), labels, 3, 32, 32).unwrap()
}

#[test]
fn cifar_round_trip_and_refusals() {
    let d = cifar_like(7, 2);
    let bytes = encode_cifar_batch(&d).unwrap();
    assert_eq!(bytes.len(), 7 * CIFAR_RECORD_BYTES);
    assert_eq!(bytes[CIFAR_RECORD_BYTES], 1, "label byte of record 1");
    assert_eq!(cifar_batch_from_bytes("c", &bytes).unwrap(), d);
    for len in [0, 1, 3072, 3074, bytes.len() - 1] {
        let p = problem(cifar_batch_from_bytes("c.bin", &bytes[..len]), "c.bin");
        assert!(p.contains("3073-byte"), "{p}");
    }
    let mut bad = bytes.clone();
    bad[2 * CIFAR_RECORD_BYTES] = 10;
    let p = problem(cifar_batch_from_bytes("c.bin", &bad), "c.bin");
    assert!(p.contains("record 2 (offset 6146) has label 10"), "{p}");
}

// ---------------------------------------------------------------- PNG

fn encode_png(
    w: u32,
    h: u32,
    colour: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(colour);
        enc.set_depth(depth);
        if let Some(p) = palette {
            enc.set_palette(p.to_vec());
        }
        if let Some(t) = trns {
            enc.set_trns(t.to_vec());
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
    }
    out
}

use png::{BitDepth as D, ColorType as C};

#[test]
fn png_conversion_rules() {
    // 8-bit grey: as is; replicated for 3 channels.
    let g = encode_png(3, 1, C::Grayscale, D::Eight, &[0, 100, 255], None, None);
    assert_eq!(
        png_from_bytes("g", &g, 1).unwrap().u8_pixels().unwrap(),
        [0, 100, 255]
    );
    assert_eq!(
        png_from_bytes("g", &g, 3).unwrap().u8_pixels().unwrap(),
        [0, 100, 255, 0, 100, 255, 0, 100, 255]
    );
    // 16-bit grey: round(v * 255 / 65535); 128 -> 0.498 -> 0, 129 -> 0.502 -> 1.
    let vals: [u16; 5] = [0, 128, 129, 257 * 77, 65535];
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let g16 = encode_png(5, 1, C::Grayscale, D::Sixteen, &data, None, None);
    assert_eq!(
        png_from_bytes("g16", &g16, 1).unwrap().u8_pixels().unwrap(),
        [0, 0, 1, 77, 255]
    );
    // 1-bit grey: 0 -> 0, 1 -> 255.
    let g1 = encode_png(8, 1, C::Grayscale, D::One, &[0b1010_0001], None, None);
    assert_eq!(
        png_from_bytes("g1", &g1, 1).unwrap().u8_pixels().unwrap(),
        [255, 0, 255, 0, 0, 0, 0, 255]
    );
    // Grey + alpha: composited on black, round(v * a / 255).
    let ga = encode_png(
        3,
        1,
        C::GrayscaleAlpha,
        D::Eight,
        &[200, 255, 200, 0, 200, 128],
        None,
        None,
    );
    assert_eq!(
        png_from_bytes("ga", &ga, 1).unwrap().u8_pixels().unwrap(),
        [200, 0, 100]
    );
    // RGB to grey: PIL's convert("L") values for these colours (taken from Pillow 13).
    let colours: [[u8; 3]; 9] = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [10, 200, 90],
        [128, 128, 128],
        [1, 2, 3],
        [255, 255, 255],
        [37, 251, 3],
        [200, 13, 177],
    ];
    let pil_l = [76, 150, 29, 131, 128, 2, 255, 159, 88];
    let rgb = encode_png(9, 1, C::Rgb, D::Eight, colours.as_flattened(), None, None);
    assert_eq!(
        png_from_bytes("rgb", &rgb, 1).unwrap().u8_pixels().unwrap(),
        pil_l
    );
    let planar = png_from_bytes("rgb", &rgb, 3).unwrap();
    assert_eq!(planar.u8_pixels().unwrap()[..9], colours.map(|c| c[0]));
    assert_eq!(planar.u8_pixels().unwrap()[18..], colours.map(|c| c[2]));
    // RGBA 16-bit: round(255 * v/65535 * a/65535).
    let rgba16: Vec<u8> = [65535u16, 32768, 0, 65535, 65535, 65535, 65535, 32768]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let img = png_from_bytes(
        "rgba16",
        &encode_png(2, 1, C::Rgba, D::Sixteen, &rgba16, None, None),
        3,
    )
    .unwrap();
    assert_eq!(img.u8_pixels().unwrap(), [255, 128, 128, 128, 0, 128]);
    // Palette with transparency: entry 1 is half transparent.
    let pal = [10, 20, 30, 200, 100, 50];
    let p = encode_png(
        2,
        1,
        C::Indexed,
        D::Eight,
        &[0, 1],
        Some(&pal),
        Some(&[255, 128]),
    );
    let img = png_from_bytes("pal", &p, 3).unwrap();
    assert_eq!(img.u8_pixels().unwrap(), [10, 100, 20, 50, 30, 25]);
    // 16-bit grey with a tRNS colour key: the keyed pixel becomes black.
    let key: [u16; 2] = [1000, 60000];
    let data: Vec<u8> = key.iter().flat_map(|v| v.to_be_bytes()).collect();
    let k = encode_png(
        2,
        1,
        C::Grayscale,
        D::Sixteen,
        &data,
        None,
        Some(&1000u16.to_be_bytes()),
    );
    assert_eq!(
        png_from_bytes("key", &k, 1).unwrap().u8_pixels().unwrap(),
        [0, 233]
    );
}

#[test]
fn png_refusals() {
    let g = encode_png(4, 4, C::Grayscale, D::Eight, &[7; 16], None, None);
    assert!(png_from_bytes("g", &g, 2).is_err());
    for cut in [0, 8, 20, 40, g.len() - 13] {
        let p = problem(png_from_bytes("t.png", &g[..cut], 1), "t.png");
        assert!(!p.is_empty());
    }
    let p = problem(
        png_from_bytes("x.png", b"GIF89a not a png at all", 1),
        "x.png",
    );
    assert!(p.contains("PNG"), "{p}");
    // A header claiming 4096 x 4096 16-bit RGBA in a tiny file.
    let mut big = encode_png(1, 1, C::Rgba, D::Sixteen, &[0; 8], None, None);
    big[16..24].copy_from_slice(&[0, 0, 16, 0, 0, 0, 16, 0]);
    let crc = crc32fast::hash(&big[12..29]);
    big[29..33].copy_from_slice(&crc.to_be_bytes());
    let p = problem(png_from_bytes("big.png", &big, 3), "big.png");
    assert!(p.contains("cannot be held by a file of"), "{p}");
    big[16..24].copy_from_slice(&[0, 1, 0, 0, 0, 1, 0, 0]);
    let crc = crc32fast::hash(&big[12..29]);
    big[29..33].copy_from_slice(&crc.to_be_bytes());
    let p = problem(png_from_bytes("big.png", &big, 3), "big.png");
    assert!(p.contains("exceed the limit"), "{p}");
}

// ---------------------------------------------------------------- Dataset

#[test]
fn dataset_helpers() {
    let d = Dataset::new((0..24).collect(), vec![2, 0, 2, 1, 2, 0], 1, 2, 2).unwrap();
    assert_eq!(d.class_counts(3), [2, 1, 3]);
    assert_eq!(d.indices_of_class(2), [0, 2, 4]);
    let twos = d.select_class(2);
    assert_eq!(twos.images(), [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]);
    let t = d.take(&[5, 5, 0]).unwrap();
    assert_eq!(t.labels(), [0, 0, 2]);
    assert_eq!(t.image(0), [20, 21, 22, 23]);
    assert!(d.take(&[6]).is_err());
    let b = d.batch_tensor(&[1, 3]).unwrap();
    assert_eq!(b.shape(), &[2, 1, 2, 2]);
    let want: Vec<f32> = [4, 5, 6, 7, 12, 13, 14, 15]
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    assert_eq!(b.data(), want.as_slice());
    assert!(d.batch_tensor(&[0, 9]).is_err());
    assert_eq!(d.concat(&twos).unwrap().len(), 9);
    let rgb = Dataset::new(vec![0; 12], vec![0], 3, 2, 2).unwrap();
    assert!(d.concat(&rgb).is_err());
    assert!(Dataset::new(vec![0; 5], vec![0], 1, 2, 2).is_err());
    assert!(Dataset::new(vec![], vec![0], 0, 2, 2).is_err());
    let p = problem(d.check_labels("lab", 2), "lab");
    assert!(p.contains("label 2 of item 0 is out of range 0..2"), "{p}");
    let big = cifar_like(2, 4);
    let small = big.resized(28, 28).unwrap();
    assert_eq!(
        (small.channels(), small.height(), small.width()),
        (3, 28, 28)
    );
    assert_eq!(
        small.image(1),
        resize_lanczos_planes(big.image(1), 3, 32, 32, 28, 28).unwrap()
    );
}

// ---------------------------------------------------------------- folders

#[test]
fn data_dir_resolution() {
    let tmp = TempDir::new("resolve");
    let flag = tmp.0.as_path();
    let env = Some(std::ffi::OsString::from("/nonexistent/env/dir"));
    assert_eq!(
        resolve_data_dir_from(Some(flag), env.clone()).unwrap(),
        flag
    );
    let e = resolve_data_dir_from(None, env).unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/env/dir (from GRADCON_DATA) is not a folder"),
        "{e}"
    );
    let e = resolve_data_dir_from(None, None).unwrap_err().to_string();
    assert!(
        e.contains("--data-dir") && e.contains("GRADCON_DATA"),
        "{e}"
    );
    assert!(matches!(
        resolve_data_dir_from(None, Some("".into())),
        Err(Error::DataDirUnset)
    ));
}

fn write_idx(dir: &Path, prefix: &str, d: &Dataset, gz: bool) {
    let img = encode_idx_images(d.len(), d.height(), d.width(), d.images()).unwrap();
    let lab = encode_idx_labels(d.labels()).unwrap();
    let (img, lab, ext) = if gz {
        (gzip(&img), gzip(&lab), ".gz")
    } else {
        (img, lab, "")
    };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lab).unwrap();
}

#[test]
fn idx_folder_loaders() {
    let tmp = TempDir::new("idx-folders");
    let mnist = tmp.0.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let train = Dataset::new(random_bytes(6 * 784, 5), vec![0, 1, 2, 3, 4, 9], 1, 28, 28).unwrap();
    let test = Dataset::new(random_bytes(2 * 784, 6), vec![7, 7], 1, 28, 28).unwrap();
    write_idx(&mnist, "train", &train, true);
    write_idx(&mnist, "t10k", &test, false);
    // The data root and the data set's own folder both work.
    assert_eq!(load_mnist(&tmp.0, Split::Train).unwrap(), train);
    assert_eq!(load_mnist(&mnist, Split::Test).unwrap(), test);
    let e = load_fashion_mnist(&tmp.0, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Fashion-MNIST in"), "{e}");
    // Count mismatch and label out of range name the labels file.
    let more = Dataset::new(vec![0; 3 * 784], vec![1, 1, 1], 1, 28, 28).unwrap();
    std::fs::write(
        mnist.join("t10k-labels-idx1-ubyte"),
        encode_idx_labels(more.labels()).unwrap(),
    )
    .unwrap();
    let e = load_mnist(&tmp.0, Split::Test).unwrap_err().to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte: 3 labels for 2 images"),
        "{e}"
    );
    std::fs::write(
        mnist.join("t10k-labels-idx1-ubyte"),
        encode_idx_labels(&[3, 10]).unwrap(),
    )
    .unwrap();
    let e = load_mnist(&tmp.0, Split::Test).unwrap_err().to_string();
    assert!(
        e.contains("label 10 of item 1 is out of range 0..10"),
        "{e}"
    );
}

#[test]
fn cifar_folder_loader_resizes_to_28() {
    let tmp = TempDir::new("cifar-folder");
    let dir = tmp.0.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let batches: Vec<Dataset> = (1..=5).map(|i| cifar_like(2, 10 + i)).collect();
    for (i, b) in batches.iter().enumerate() {
        let name = format!("data_batch_{}.bin", i + 1);
        std::fs::write(dir.join(name), encode_cifar_batch(b).unwrap()).unwrap();
    }
    let test = cifar_like(3, 20);
    std::fs::write(
        dir.join("test_batch.bin"),
        encode_cifar_batch(&test).unwrap(),
    )
    .unwrap();
    let train = load_cifar10(&tmp.0, Split::Train).unwrap();
    assert_eq!((train.len(), train.channels(), train.height()), (10, 3, 28));
    assert_eq!(train.image(9), batches[4].resized(28, 28).unwrap().image(1));
    assert_eq!(
        load_cifar10(&dir, Split::Test).unwrap(),
        test.resized(28, 28).unwrap()
    );
    std::fs::write(dir.join("data_batch_3.bin"), [0u8; 100]).unwrap();
    let e = load_cifar10(&tmp.0, Split::Train).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin: 100 bytes"), "{e}");
}

// ---------------------------------------------------------------- real data

/// The full data sets, when `GRADCON_DATA` names them; skipped loudly otherwise.
#[test]
fn full_datasets_when_available() {
    let Some(root) = std::env::var_os("GRADCON_DATA").filter(|v| !v.is_empty()) else {
        eprintln!("SKIPPED full_datasets_when_available: GRADCON_DATA is not set");
        return;
    };
    let root = PathBuf::from(root);
    if root.join("mnist").is_dir() {
        let train = load_mnist(&root, Split::Train).unwrap();
        assert_eq!(
            (train.len(), train.height(), train.width()),
            (60_000, 28, 28)
        );
        assert_eq!(train.class_counts(10)[0], 5923);
        let test = load_mnist(&root, Split::Test).unwrap();
        assert_eq!(test.class_counts(10)[1], 1135);
    } else {
        eprintln!("SKIPPED MNIST: no mnist/ in GRADCON_DATA");
    }
    if root.join("fashion-mnist").is_dir() {
        let train = load_fashion_mnist(&root, Split::Train).unwrap();
        assert_eq!(train.class_counts(10), [6000; 10]);
        let test = load_fashion_mnist(&root, Split::Test).unwrap();
        assert_eq!(test.class_counts(10), [1000; 10]);
    } else {
        eprintln!("SKIPPED Fashion-MNIST: no fashion-mnist/ in GRADCON_DATA");
    }
}

/// An input on which the `png` crate itself panics (found by fuzzing): a clear error instead.
#[test]
fn png_decoder_panic_becomes_an_error_naming_the_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/png/crash-4964dde83e5968cc3ad06bb1a9b781e3f5e437ea");
    let bytes = std::fs::read(&path).unwrap();
    let err = detector::data::png_from_bytes("fuzzed.png", &bytes, 1).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("fuzzed.png") && msg.contains("bad PNG"),
        "{msg}"
    );
}
