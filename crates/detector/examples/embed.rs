//! The smallest scoring program: load a model, score one raw 8-bit image, print the score.
//! It needs none of the library's codecs, so it builds with `--no-default-features`:
//!
//! ```text
//! cargo build --release -p detector --no-default-features --example embed
//! target/release/examples/embed MODEL.gcm IMAGE.raw CHANNELS HEIGHT WIDTH
//! ```
//!
//! `IMAGE.raw` holds `CHANNELS x HEIGHT x WIDTH` bytes, plane after plane.

use detector::{Detector, Image};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, image, c, h, w] = args.as_slice() else {
        return Err("usage: embed MODEL IMAGE.raw CHANNELS HEIGHT WIDTH".into());
    };
    let detector = Detector::load(model)?;
    let pixels = std::fs::read(image)?;
    let image = Image::from_u8(c.parse()?, h.parse()?, w.parse()?, pixels)?;
    let score = detector.score(&image)?;
    println!("{} {} {}", score.gradcon, score.recon, score.grad);
    Ok(())
}
