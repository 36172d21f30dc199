//! Times loading a folder of N 28x28 grey PNG files through `detector::data::files`
//! (`collect_files` then `load_files`), to show that it is linear in the number of files.
//!
//! ```text
//! cargo run --release -p detector --example load_files -- [N ...] [--pairwise N ...]
//! ```
//!
//! Default N: 1,000, 10,000 and 50,000. For each N the files are written to a temporary
//! folder (the images of the shipped sample's test split, in turn), then loaded three times;
//! the median is printed (the files are in the page cache: this times decoding and
//! conversion, not the disk). `--pairwise` also times, for the N after it, the loader this
//! replaced: one `Dataset` per file, concatenated pairwise (`Dataset::concat`), quadratic.

use std::path::{Path, PathBuf};
use std::time::Instant;

use detector::data::files::{collect_files, load_files};
use detector::data::{load_fashion_mnist, read_png, Dataset, Fit, Split};

fn png_file(plane: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    let mut writer = enc.write_header().expect("PNG header");
    writer.write_image_data(plane).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

/// A fresh folder of `n` PNG files `00000.png` ...
fn write_folder(n: usize, sample: &Dataset) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-load-files-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let files: Vec<Vec<u8>> = (0..sample.len())
        .map(|i| png_file(sample.image(i)))
        .collect();
    for k in 0..n {
        std::fs::write(dir.join(format!("{k:05}.png")), &files[k % files.len()]).expect("write");
    }
    dir
}

fn median_seconds(mut run: impl FnMut() -> usize, n: usize) -> f64 {
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(run(), n);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

fn library(dir: &Path) -> usize {
    let list = collect_files(&[dir]).expect("collect");
    let loaded = load_files(&list.files, 1, 28, Fit::Stretch).expect("load");
    loaded.images.len()
}

/// The replaced loader: a data set per file, concatenated one after the other.
fn pairwise(dir: &Path) -> usize {
    let list = collect_files(&[dir]).expect("collect");
    let mut all: Option<Dataset> = None;
    for path in &list.files {
        let img = read_png(path, 1).expect("PNG");
        let d = Dataset::new(img.into_u8_pixels().expect("u8"), vec![0], 1, 28, 28).expect("one");
        all = Some(match all {
            None => d,
            Some(a) => a.concat(&d).expect("same size"),
        });
    }
    all.map_or(0, |d| d.len())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--pairwise");
    let parse = |words: &[String]| -> Vec<usize> {
        words
            .iter()
            .map(|w| w.parse().expect("a number of files"))
            .collect()
    };
    let (mut sizes, old) = match split {
        Some(i) => (parse(&args[..i]), parse(&args[i + 1..])),
        None => (parse(&args), Vec::new()),
    };
    if sizes.is_empty() && split.is_none() {
        sizes = vec![1_000, 10_000, 50_000];
    }
    let sample_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample");
    let sample = load_fashion_mnist(&sample_dir, Split::Test).expect("the shipped sample");
    println!("| loader | files | seconds | us per file |");
    println!("|---|---:|---:|---:|");
    let runs = sizes
        .iter()
        .map(|&n| ("load_files", n))
        .chain(old.iter().map(|&n| ("pairwise concat", n)));
    for (loader, n) in runs {
        let dir = write_folder(n, &sample);
        let secs = if loader == "load_files" {
            median_seconds(|| library(&dir), n)
        } else {
            median_seconds(|| pairwise(&dir), n)
        };
        println!(
            "| {loader} | {n} | {secs:.3} | {:.1} |",
            secs * 1e6 / n as f64
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
