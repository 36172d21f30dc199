//! Shape operations: the same values under another shape or in another order.

use std::rc::Rc;

use core_tensor::{Element, Layout, Tensor};

use super::{Differentiable, Op, Rule};
use crate::tape::NodeId;
use crate::Result;

/// Operations that only change how values are indexed.
#[derive(Debug, Clone)]
pub enum ShapeOp<I> {
    /// The same values (row-major) under `shape`, of equal size.
    Reshape { x: I, shape: Vec<usize> },
    /// The same images in layout `to` (`x` in layout `from`): a permutation of the values.
    Relayout { x: I, from: Layout, to: Layout },
}

impl<I> ShapeOp<I> {
    pub(crate) fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ShapeOp<J> {
        match self {
            ShapeOp::Reshape { x, shape } => ShapeOp::Reshape { x: f(x), shape },
            ShapeOp::Relayout { x, from, to } => ShapeOp::Relayout { x: f(x), from, to },
        }
    }

    pub(crate) fn inputs(&self) -> Vec<&I> {
        match self {
            ShapeOp::Reshape { x, .. } | ShapeOp::Relayout { x, .. } => vec![x],
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            ShapeOp::Reshape { .. } => "reshape",
            ShapeOp::Relayout { .. } => "relayout",
        }
    }
}

pub(crate) fn forward<T: Element>(op: &ShapeOp<Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    match op {
        ShapeOp::Reshape { x, shape } => Ok(Tensor::clone(x).reshape(shape)?),
        ShapeOp::Relayout { x, from, to } => Ok(x.relayout(*from, *to)?),
    }
}

/// Vector-Jacobian products of the shape operations.
pub(crate) fn backward<T: Element, V: Differentiable<T>>(
    op: &ShapeOp<NodeId>,
    r: &mut Rule<'_, V>,
) -> Result<()> {
    match *op {
        ShapeOp::Reshape { x, .. } => {
            let shape = r.input(x).shape();
            let g = r.gy.reshape(&shape)?;
            r.send(x, g);
        }
        // A permutation's adjoint is its inverse.
        ShapeOp::Relayout { x, from, to } => {
            let g = r.gy.relayout(to, from)?;
            r.send(x, g);
        }
    }
    Ok(())
}

/// Shape operations on anything [`Differentiable`] (import with [`crate::prelude`]).
pub trait ShapeOps<T: Element>: Differentiable<T> {
    /// The same values (row-major) under `shape`, which must hold as many.
    fn reshape(&self, shape: &[usize]) -> Result<Self> {
        Self::apply(Op::Shape(ShapeOp::Reshape {
            x: self.clone(),
            shape: shape.to_vec(),
        }))
    }
    /// The same images in layout `to`, `self` being in layout `from`.
    fn relayout(&self, from: Layout, to: Layout) -> Result<Self> {
        Self::apply(Op::Shape(ShapeOp::Relayout {
            x: self.clone(),
            from,
            to,
        }))
    }
    /// The values as a rank-1 tensor.
    fn flatten(&self) -> Result<Self> {
        let n = self.value().len();
        self.reshape(&[n])
    }
}

impl<T: Element, V: Differentiable<T>> ShapeOps<T> for V {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{assert_grads, random};
    use crate::prelude::*;

    #[test]
    fn reshape_keeps_values_and_checks_size() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(random(&[2, 3], 1, -1.0, 1.0));
        let y = x.reshape(&[3, 2]).unwrap();
        assert_eq!(y.value().data(), x.value().data());
        assert_eq!(x.flatten().unwrap().value().shape(), &[6]);
        assert!(x.reshape(&[4]).is_err());
    }

    #[test]
    fn gradients_first_and_second_order() {
        let x = random(&[2, 3], 1, -1.0, 1.0);
        // Square after reshaping so that the second derivative is not zero.
        assert_grads(
            |v| v[0].reshape(&[3, 2])?.square(),
            std::slice::from_ref(&x),
        );
        assert_grads(|v| v[0].flatten(), &[x]);
        let images = random(&[2, 3, 2, 4], 2, -1.0, 1.0);
        for (from, to) in [(Layout::Nchw, Layout::Nhwc), (Layout::Nhwc, Layout::Nchw)] {
            assert_grads(
                |v| v[0].relayout(from, to)?.square(),
                std::slice::from_ref(&images),
            );
        }
    }

    #[test]
    fn relayout_permutes_and_round_trips() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(random(&[2, 3, 2, 4], 1, -1.0, 1.0));
        let y = x.relayout(Layout::Nchw, Layout::Nhwc).unwrap();
        assert_eq!(y.value().shape(), &[2, 2, 4, 3]);
        assert_eq!(y.value().data()[1], x.value().data()[8]);
        assert_eq!(y.value().data()[3], x.value().data()[1]);
        let back = y.relayout(Layout::Nhwc, Layout::Nchw).unwrap();
        assert_eq!(back.value().data(), x.value().data());
        assert!(tape
            .constant(random(&[2, 3], 1, -1.0, 1.0))
            .relayout(Layout::Nchw, Layout::Nhwc)
            .is_err());
    }
}
