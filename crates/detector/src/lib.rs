//! GradCon anomaly detection (Kwon et al., ECCV 2020) built on the `autograd` engine.
//!
//! Load a trained model, read an image, score it:
//!
//! ```
//! # #[cfg(feature = "png")] fn main() -> Result<(), detector::Error> {
//! # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data")).unwrap();
//! use detector::{data::read_png, Detector};
//!
//! let detector = Detector::load("models/fashion-mnist-0.gcm")?;
//! let image = read_png("examples/tshirt.png", detector.channels())?;
//! let score = detector.score(&image)?;
//! println!("anomaly score {:.4} (higher is more anomalous)", score.anomaly_score);
//! assert_eq!(score.anomalous, Some(false)); // a typical T-shirt, at the model's threshold
//! # Ok(()) }
//! # #[cfg(not(feature = "png"))] fn main() {}
//! ```
//!
//! The crate by job:
//!
//! - [`Detector`] (in `detector`): a trained model that loads (`.gcm`, a training checkpoint's
//!   selected model, `.safetensors`), saves, and scores one image or a batch.
//! - [`model`]: the autoencoder's layer table, its parameters, the reference gradients, and
//!   GradCon's losses and score ([`model::gradcon`]).
//! - [`train`]: [`Trainer`], the epoch loop with validation selection, restarts on saturation
//!   and checkpoints, Adam, progress through an [`train::Observer`].
//! - [`eval`]: the one-class protocol, its splits and the AUROC.
//! - [`data`]: [`Image`], the in-memory [`data::Dataset`], readers of IDX, CIFAR-10, PNG and
//!   JPEG files, files and folders of them ([`data::files`]), fitting and the Lanczos resize.
//! - [`io`]: the checkpoint container, the model file, safetensors, atomic writes.
//!
//! # Features
//!
//! - `png` (default): the PNG reader ([`data::read_png`]), with the `png` crate.
//! - `jpeg` (default): the JPEG reader ([`data::read_jpeg`]), with the pure-Rust `zune-jpeg`.
//! - `gzip` (default): gzipped IDX files, with `flate2`.
//!
//! Without them the library depends on the engine crates, rayon, byteorder, crc32fast,
//! safetensors and serde alone.

pub mod data;
mod detector;
pub mod error;
pub mod eval;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod io;
pub mod model;
pub mod parallel;
pub mod train;

pub use data::{Image, Pixels};
pub use detector::{
    Detector, Provenance, ScoreSettings, DEFAULT_BETA, DEFAULT_SCORE_BATCH, MAX_THREADS,
    NOT_A_MODEL,
};
pub use error::{Error, Result};
pub use model::gradcon::Score;
pub use train::{Cancel, TrainConfig, Trained, Trainer};
