//! Dense `f32`/`f64` tensors and the kernels a small convolutional autoencoder needs:
//! GEMM, 2-D convolution and transposed convolution with their gradients, and elementwise
//! maps and reductions, with run-time selected SIMD paths ([`Isa`]) and `rayon` parallelism.
//! Convolutions take NCHW or NHWC images ([`Layout`]); a network whose activations stay NHWC
//! skips the reordering at every layer.
//!
//! Every kernel has a naive f64 loop reference in [`mod@reference`] that the tests compare it with.
//! Results never depend on the number of threads: reductions are split into fixed chunks whose
//! partial results are combined in a fixed order.

pub mod conv;
pub mod element;
pub mod error;
pub mod flops;
pub mod gemm;
pub mod isa;
pub mod layout;
pub mod pool;
pub mod reference;
pub mod rng;
pub mod simd;
pub mod tensor;
mod transpose;

pub use conv::{Conv2dSpec, ConvTranspose2dSpec};
pub use element::{Binary, Element, Unary};
pub use error::{Result, TensorError};
pub use gemm::{gemm, matmul, Transpose};
pub use isa::Isa;
pub use layout::Layout;
pub use rng::Rng;
pub use tensor::Tensor;

/// Frees what the kernels keep between calls to be fast: the idle buffers of every thread's
/// pools ([`pool::trim`]) and the packed weight panels ([`conv::clear_packed_weights`]).
///
/// For an owner that is done with its model, such as a detector being dropped: nothing in use
/// is touched, and the next calls allocate and pack afresh (once).
pub fn trim() {
    pool::trim();
    conv::clear_packed_weights();
}
