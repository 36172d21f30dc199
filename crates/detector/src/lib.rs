//! GradCon anomaly detection built on the `autograd` engine.

pub mod checkpoint;
pub mod data;
pub mod error;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod weights;

pub use error::{Error, Result};
