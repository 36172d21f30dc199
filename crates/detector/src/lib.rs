//! GradCon anomaly detection built on the `autograd` engine.

pub mod auroc;
pub mod model;
pub mod optim;
pub mod saturation;
pub mod split;
