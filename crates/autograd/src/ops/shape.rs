//! Shape operations: the same values under another shape.

use std::rc::Rc;

use core_tensor::{Element, Tensor};

use super::{Differentiable, Op, Rule};
use crate::tape::NodeId;
use crate::Result;

/// Operations that only change how values are indexed.
#[derive(Debug, Clone)]
pub enum ShapeOp<I> {
    /// The same values (row-major) under `shape`, of equal size.
    Reshape { x: I, shape: Vec<usize> },
}

impl<I> ShapeOp<I> {
    pub(crate) fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ShapeOp<J> {
        match self {
            ShapeOp::Reshape { x, shape } => ShapeOp::Reshape { x: f(x), shape },
        }
    }

    pub(crate) fn inputs(&self) -> Vec<&I> {
        match self {
            ShapeOp::Reshape { x, .. } => vec![x],
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            ShapeOp::Reshape { .. } => "reshape",
        }
    }
}

pub(crate) fn forward<T: Element>(op: &ShapeOp<Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    match op {
        ShapeOp::Reshape { x, shape } => Ok(Tensor::clone(x).reshape(shape)?),
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
    }
}
