//! Shared helpers of the benchmarks.

pub mod layers;
pub mod peak;
