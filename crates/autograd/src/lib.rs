//! Tape-based reverse-mode automatic differentiation whose backward pass is itself
//! differentiable, for gradients of gradients (HIPS autograd, PyTorch's `create_graph`).
//!
//! - A [`Tape`] records every operation in execution order; a [`Var`] is a copyable handle to
//!   one recorded value. There is no global state: tapes on different threads are independent.
//! - The operations form one closed enum ([`ops::Op`]), one file per family (elementwise,
//!   reduce, shape, conv, loss), each with its forward computation, backward rule and tests.
//! - Every backward rule is written with the same differentiable operations as forward passes,
//!   generically over [`Differentiable`]: [`grad`] with `create_graph = true` records the
//!   backward pass, so its results can be differentiated again to any order; with `false` the
//!   same rules run on plain tensors and nothing is recorded.
//! - [`fn@per_example`] gives, from one batched backward pass, each example's share of the
//!   gradient of a convolution's weights (in full, dotted with a tensor, or its squared norm).
//! - [`check::gradcheck`] and [`check::gradgradcheck`] test first and second derivatives
//!   against finite differences.
//!
//! ```
//! use autograd::prelude::*;
//! use core_tensor::Tensor;
//! // d/dw of the squared norm of dL/dx, with L = sum((w x)^2): a second-order gradient.
//! let tape = Tape::<f64>::new();
//! let w = tape.param(Tensor::scalar(2.0));
//! let x = tape.param(Tensor::scalar(3.0));
//! let l = w.mul(&x)?.square()?;                       // L = w^2 x^2
//! let gx = autograd::grad(l, &[x], true)?[0];         // dL/dx = 2 w^2 x
//! let penalty = gx.square()?;                         // 4 w^4 x^2
//! let gw = autograd::grad_tensors(penalty, &[w])?;    // 16 w^3 x^2 = 1152
//! assert_eq!(gw[0].to_scalar().unwrap(), 1152.0);
//! # Ok::<(), autograd::Error>(())
//! ```

pub mod backward;
pub mod check;
pub mod error;
pub mod ops;
pub mod per_example;
pub mod tape;

pub use backward::{grad, grad_tensors};
pub use error::{Error, Result};
pub use ops::{Differentiable, Op};
pub use per_example::{per_example, PerExample, PerExampleGrads, Scaling};
pub use tape::{NodeId, Tape, Var};

/// The tape, the variable handle and every operation trait.
pub mod prelude {
    pub use crate::ops::{ConvOps, Differentiable, ElementwiseOps, LossOps, ReduceOps, ShapeOps};
    pub use crate::{Tape, Var};
}
