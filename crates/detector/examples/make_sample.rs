//! Writes the small Fashion-MNIST sample shipped in `data/fashion-mnist-sample/`.
//!
//! Selection rule: from the official files, in file order, the first 200 training images of
//! each class and the first 100 test images of each class, kept in their file order. Output:
//! gzipped IDX files with the standard names (gzip without file name or time stamp, so the
//! output depends on the input alone).
//!
//! ```text
//! cargo run --release -p detector --example make_sample -- FASHION_MNIST_DIR OUT_DIR
//! ```

use std::path::Path;

use detector::data::idx::{encode_idx_images, encode_idx_labels, gzip};
use detector::data::{load_fashion_mnist, Dataset, Split, NUM_CLASSES};

/// The first `per_class` images of every class, in file order.
fn first_per_class(d: &Dataset, per_class: usize) -> detector::Result<Dataset> {
    let mut taken = [0usize; NUM_CLASSES];
    let mut keep = Vec::new();
    for (i, &l) in d.labels().iter().enumerate() {
        let t = &mut taken[usize::from(l)];
        if *t < per_class {
            *t += 1;
            keep.push(i);
        }
    }
    d.take(&keep)
}

fn write(out: &Path, prefix: &str, d: &Dataset) -> detector::Result<()> {
    let images = encode_idx_images(d.len(), d.height(), d.width(), d.images())?;
    let labels = encode_idx_labels(d.labels())?;
    for (kind, bytes) in [("images-idx3", images), ("labels-idx1", labels)] {
        let p = out.join(format!("{prefix}-{kind}-ubyte.gz"));
        std::fs::write(&p, gzip(&bytes)).map_err(|e| detector::Error::io(&p, "write", e))?;
    }
    Ok(())
}

fn main() -> detector::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, out] = &args[..] else {
        eprintln!("usage: make_sample FASHION_MNIST_DIR OUT_DIR");
        std::process::exit(2);
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out).map_err(|e| detector::Error::io(out, "create", e))?;
    for (split, prefix, per_class) in [(Split::Train, "train", 200), (Split::Test, "t10k", 100)] {
        let sample = first_per_class(&load_fashion_mnist(Path::new(src), split)?, per_class)?;
        write(out, prefix, &sample)?;
        println!(
            "{prefix}: {} images, per class {:?}",
            sample.len(),
            sample.class_counts(10)
        );
    }
    Ok(())
}
