//! Writes the small trained model shipped in `data/models/` and the example images in
//! `data/examples/` that the documentation, the C test and the README use.
//!
//! The model: class 0 (T-shirt/top) of the shipped Fashion-MNIST sample, trained on that
//! class's protocol split (seed 0, 10% held out for validation) as `gradcon demo` trains it
//! (30 epochs, up to 5 restarts), the lowest-validation-loss epoch kept, its threshold
//! calibrated on the validation images at 5% false positives. The images, from that class's
//! protocol test split (not trained on), as 8-bit grey PNG files: the T-shirt whose anomaly
//! score is the median of the split's T-shirts (a typical normal image), and the sneaker
//! (class 7) whose anomaly score is the median of the split's sneakers.
//!
//! ```text
//! cargo run --release -p detector --example make_model
//! ```

use std::path::Path;

use detector::data::Dataset;
use detector::eval::protocol::{DatasetKind, Pool};
use detector::train::Silent;
use detector::{TrainConfig, Trainer};

fn write_png(path: &Path, data: &Dataset, i: usize) {
    let file = std::fs::File::create(path).expect("create the PNG file");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("PNG header");
    w.write_image_data(data.image(i)).expect("PNG data");
}

fn main() -> detector::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let pool = Pool::load(
        DatasetKind::FashionMnist,
        &root.join("fashion-mnist-sample"),
    )?;
    let config = TrainConfig {
        epochs: 30,
        restarts: 5,
        ..TrainConfig::default()
    };
    let split = pool.split(0, config.val_fraction, config.seed);
    let train = pool.images.take(&split.train)?;
    let val = pool.images.take(&split.val)?;
    let trained = Trainer::new(config)?.fit(&train, &val, &mut Silent)?;
    trained
        .detector
        .save(root.join("models/fashion-mnist-0.gcm"))?;
    println!(
        "model: epoch {} of {}, {} restarts",
        trained.selected_epoch,
        trained.epochs_run,
        trained.restarts()
    );
    let median_of = |class: u8| -> detector::Result<usize> {
        let idx: Vec<usize> = split
            .test
            .iter()
            .copied()
            .filter(|&i| pool.images.labels()[i] == class)
            .collect();
        let scores = trained.detector.score_dataset(&pool.images, &idx)?;
        let mut order: Vec<usize> = (0..idx.len()).collect();
        order.sort_by(|&a, &b| scores[a].anomaly_score.total_cmp(&scores[b].anomaly_score));
        let m = order[order.len() / 2];
        println!(
            "class {class}: image {} of {}, anomaly score {:.4} (anomalous: {:?})",
            idx[m],
            idx.len(),
            scores[m].anomaly_score,
            scores[m].anomalous
        );
        Ok(idx[m])
    };
    write_png(
        &root.join("examples/tshirt.png"),
        &pool.images,
        median_of(0)?,
    );
    write_png(
        &root.join("examples/sneaker.png"),
        &pool.images,
        median_of(7)?,
    );
    Ok(())
}
