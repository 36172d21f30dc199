//! Writes the small trained model shipped in `data/models/` and the example images in
//! `data/examples/` that the documentation, the C test and the README use.
//!
//! The model: class 0 (T-shirt/top) of the shipped Fashion-MNIST sample, trained on that
//! class's protocol split (seed 0, 10% held out for validation) as `gradcon demo` trains it
//! (30 epochs, up to 5 restarts), the lowest-validation-loss epoch kept. The images: the
//! first normal (a T-shirt) and the first anomalous test image of that class's protocol split
//! (which were not trained on), and the first test image of class 7 (a sneaker), as 8-bit grey
//! PNG files.
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
    let first = |normal: bool| {
        split
            .test
            .iter()
            .zip(&split.test_is_normal)
            .find(|(_, &n)| n == normal)
            .map(|(&i, _)| i)
            .expect("both kinds in the test split")
    };
    write_png(&root.join("examples/tshirt.png"), &pool.images, first(true));
    let sneaker = split
        .test
        .iter()
        .copied()
        .find(|&i| pool.images.labels()[i] == 7)
        .expect("a sneaker in the test split");
    write_png(&root.join("examples/sneaker.png"), &pool.images, sneaker);
    Ok(())
}
