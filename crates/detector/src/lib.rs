//! GradCon anomaly detection built on the `autograd` engine.

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod weights;

pub use error::{Error, Result};
