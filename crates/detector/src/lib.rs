//! GradCon anomaly detection (Kwon et al., ECCV 2020) built on the `autograd` engine: the
//! model, its training with the second-order gradient-alignment loss, batched scoring through
//! per-example gradients, the one-class protocol, data readers, checkpoints and the CLI.

pub mod app;
pub mod auroc;
pub mod busy;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod error;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod gradcon;
pub mod model;
pub mod optim;
pub mod protocol;
pub mod saturation;
pub mod split;
pub mod train;
pub mod weights;

pub use error::{Error, Result};
