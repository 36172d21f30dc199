//! GradCon anomaly detection built on the `autograd` engine.
