//! GradCon anomaly detection built on the `autograd` engine.

pub mod auroc;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod model;
pub mod optim;
pub mod saturation;
pub mod split;
pub mod weights;

pub use error::{Error, Result};
