//! Reductions (sum, mean, per-channel sum, dot product, Euclidean norm) and the broadcasts that
//! are their adjoints.

use std::rc::Rc;

use core_tensor::{Element, Layout, Tensor, TensorError};

use super::{check_scalar, Differentiable, ElementwiseOps, Op, Rule, ShapeOps};
use crate::tape::NodeId;
use crate::Result;

/// Reductions to a scalar or to one value per channel, and their adjoint broadcasts.
#[derive(Debug, Clone)]
pub enum ReduceOp<I> {
    /// `sum_i x_i` (rank 0).
    Sum(I),
    /// `(1/n) sum_i x_i` (rank 0).
    Mean(I),
    /// `y[c] = sum_{n,h,w} x[n, c, h, w]` (`x` in the given layout).
    SumPerChannel(I, Layout),
    /// `y[n, c, h, w] = b[c]` for the given shape and layout: the adjoint of `SumPerChannel`.
    ExpandPerChannel {
        b: I,
        shape: Vec<usize>,
        layout: Layout,
    },
    /// `sum_i a_i b_i` over the flattened tensors (rank 0).
    Dot(I, I),
    /// `|x| = sqrt(sum_i x_i^2)` over the flattened tensor (rank 0).
    Norm(I),
    /// A tensor of the given shape filled with the one value of `s`: the adjoint of `Sum`.
    Broadcast { s: I, shape: Vec<usize> },
}

use ReduceOp as R;

impl<I> ReduceOp<I> {
    pub(crate) fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ReduceOp<J> {
        match self {
            R::Sum(x) => R::Sum(f(x)),
            R::Mean(x) => R::Mean(f(x)),
            R::SumPerChannel(x, layout) => R::SumPerChannel(f(x), layout),
            R::ExpandPerChannel { b, shape, layout } => R::ExpandPerChannel {
                b: f(b),
                shape,
                layout,
            },
            R::Dot(a, b) => {
                let a = f(a);
                R::Dot(a, f(b))
            }
            R::Norm(x) => R::Norm(f(x)),
            R::Broadcast { s, shape } => R::Broadcast { s: f(s), shape },
        }
    }

    pub(crate) fn inputs(&self) -> Vec<&I> {
        match self {
            R::Sum(x) | R::Mean(x) | R::SumPerChannel(x, _) | R::Norm(x) => vec![x],
            R::ExpandPerChannel { b, .. } => vec![b],
            R::Broadcast { s, .. } => vec![s],
            R::Dot(a, b) => vec![a, b],
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            R::Sum(_) => "sum",
            R::Mean(_) => "mean",
            R::SumPerChannel(..) => "sum_per_channel",
            R::ExpandPerChannel { .. } => "expand_per_channel",
            R::Dot(..) => "dot",
            R::Norm(_) => "norm",
            R::Broadcast { .. } => "broadcast",
        }
    }
}

pub(crate) fn forward<T: Element>(op: &ReduceOp<Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    Ok(match op {
        R::Sum(x) => Tensor::scalar(x.sum()),
        R::Mean(x) => {
            if x.is_empty() {
                return Err(TensorError::InvalidShape {
                    op: "mean",
                    shape: x.shape().to_vec(),
                    expected: "at least one value".into(),
                }
                .into());
            }
            Tensor::scalar(x.sum() / T::from_f64(x.len() as f64))
        }
        R::SumPerChannel(x, layout) => x.sum_per_channel(*layout)?,
        R::ExpandPerChannel { b, shape, layout } => {
            let mut y = Tensor::zeros(shape);
            y.add_per_channel(b, *layout)?;
            y
        }
        R::Dot(a, b) => Tensor::scalar(a.dot(b)?),
        R::Norm(x) => Tensor::scalar(x.sum_sq().sqrt()),
        R::Broadcast { s, shape } => {
            check_scalar("broadcast", s)?;
            Tensor::full(shape, s.to_scalar()?)
        }
    })
}

/// Below this a norm counts as zero in its derivative `x / |x|` (the gradient at 0 is taken as 0).
const NORM_FLOOR: f64 = 1e-30;

/// Vector-Jacobian products of the reductions.
pub(crate) fn backward<T: Element, V: Differentiable<T>>(
    op: &ReduceOp<NodeId>,
    r: &mut Rule<'_, V>,
) -> Result<()> {
    let gy = r.gy.clone();
    match *op {
        R::Sum(x) => {
            let shape = r.input(x).shape();
            r.send(x, gy.broadcast(&shape)?);
        }
        R::Mean(x) => {
            let shape = r.input(x).shape();
            let n = shape.iter().product::<usize>() as f64;
            r.send(x, gy.scale(T::from_f64(1.0 / n))?.broadcast(&shape)?);
        }
        R::SumPerChannel(x, layout) => {
            let shape = r.input(x).shape();
            r.send(x, gy.expand_per_channel(&shape, layout)?);
        }
        R::ExpandPerChannel { b, layout, .. } => r.send(b, gy.sum_per_channel(layout)?),
        R::Dot(a, b) => {
            if r.needs(a) {
                r.send(a, r.input(b).scale_by(&gy)?);
            }
            if r.needs(b) {
                r.send(b, r.input(a).scale_by(&gy)?);
            }
        }
        R::Norm(x) => {
            // d|x|/dx = x / |x|; at x = 0 both x and the clamped ratio's numerator vanish.
            let ratio = gy.div(&r.out.clamp_min(T::from_f64(NORM_FLOOR))?)?;
            r.send(x, r.input(x).scale_by(&ratio)?);
        }
        R::Broadcast { s, .. } => {
            let shape = r.input(s).shape();
            r.send(s, gy.sum()?.reshape(&shape)?);
        }
    }
    Ok(())
}

fn reduce<T: Element, V: Differentiable<T>>(op: ReduceOp<V>) -> Result<V> {
    V::apply(Op::Reduce(op))
}

/// Reductions on anything [`Differentiable`] (import with [`crate::prelude`]).
pub trait ReduceOps<T: Element>: Differentiable<T> {
    /// `sum_i x_i`, a rank-0 tensor.
    fn sum(&self) -> Result<Self> {
        reduce(R::Sum(self.clone()))
    }
    /// `(1/n) sum_i x_i`, a rank-0 tensor.
    fn mean(&self) -> Result<Self> {
        reduce(R::Mean(self.clone()))
    }
    /// `y[c] = sum_{n,h,w} x[n, c, h, w]` (images in `layout` to `[C]`).
    fn sum_per_channel(&self, layout: Layout) -> Result<Self> {
        reduce(R::SumPerChannel(self.clone(), layout))
    }
    /// `y[n, c, h, w] = self[c]` for a `shape` in `layout`.
    fn expand_per_channel(&self, shape: &[usize], layout: Layout) -> Result<Self> {
        reduce(R::ExpandPerChannel {
            b: self.clone(),
            shape: shape.to_vec(),
            layout,
        })
    }
    /// `sum_i a_i b_i` over the flattened tensors (same shapes), a rank-0 tensor.
    fn dot(&self, other: &Self) -> Result<Self> {
        reduce(R::Dot(self.clone(), other.clone()))
    }
    /// `|x| = sqrt(sum_i x_i^2)`, a rank-0 tensor; its gradient at `x = 0` is taken as 0.
    fn norm(&self) -> Result<Self> {
        reduce(R::Norm(self.clone()))
    }
    /// A tensor of `shape` filled with the one value of `self`.
    fn broadcast(&self, shape: &[usize]) -> Result<Self> {
        reduce(R::Broadcast {
            s: self.clone(),
            shape: shape.to_vec(),
        })
    }
}

impl<T: Element, V: Differentiable<T>> ReduceOps<T> for V {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{assert_grads, random};
    use crate::Tape;

    #[test]
    fn forward_values() {
        let tape = Tape::<f64>::new();
        let x = tape
            .constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3, 1]).unwrap());
        assert_eq!(x.sum().unwrap().to_scalar().unwrap(), 21.0);
        assert_eq!(x.mean().unwrap().to_scalar().unwrap(), 3.5);
        assert_eq!(
            x.sum_per_channel(Layout::Nchw).unwrap().value().data(),
            &[6.0, 15.0]
        );
        // The same values as one image of 1 x 3 pixels with 2 channels.
        let xn = tape
            .constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 1, 3, 2]).unwrap());
        assert_eq!(
            xn.sum_per_channel(Layout::Nhwc).unwrap().value().data(),
            &[9.0, 12.0]
        );
        assert_eq!(x.dot(&x).unwrap().to_scalar().unwrap(), 91.0);
        assert_eq!(x.norm().unwrap().to_scalar().unwrap(), 91f64.sqrt());
        let b = tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
        assert_eq!(
            b.expand_per_channel(&[2, 2, 1, 1], Layout::Nchw)
                .unwrap()
                .value()
                .data(),
            &[1.0, 2.0, 1.0, 2.0]
        );
        assert_eq!(
            b.expand_per_channel(&[1, 2, 1, 2], Layout::Nhwc)
                .unwrap()
                .value()
                .data(),
            &[1.0, 2.0, 1.0, 2.0]
        );
        let s = tape.constant(Tensor::scalar(2.5));
        assert_eq!(s.broadcast(&[3]).unwrap().value().data(), &[2.5; 3]);
        assert!(tape.constant(Tensor::zeros(&[0])).mean().is_err());
        assert!(b.broadcast(&[2]).is_err());
    }

    #[test]
    fn norm_gradient_at_zero_is_zero() {
        let tape = Tape::<f64>::new();
        let x = tape.param(Tensor::zeros(&[3]));
        let g = crate::grad_tensors(x.norm().unwrap(), &[x]).unwrap();
        assert_eq!(g[0].data(), &[0.0; 3]);
    }

    #[test]
    fn gradients_first_and_second_order() {
        let x = random(&[2, 3, 2, 2], 1, -1.0, 1.0);
        let y = random(&[2, 3, 2, 2], 2, -1.0, 1.0);
        let c = random(&[3], 3, -1.0, 1.0);
        let s = Tensor::scalar(0.3);
        assert_grads(|v| v[0].sum(), std::slice::from_ref(&x));
        assert_grads(|v| v[0].mean(), std::slice::from_ref(&x));
        for layout in [Layout::Nchw, Layout::Nhwc] {
            assert_grads(|v| v[0].sum_per_channel(layout), std::slice::from_ref(&x));
        }
        assert_grads(
            |v| v[0].expand_per_channel(&[2, 3, 2, 2], Layout::Nchw),
            std::slice::from_ref(&c),
        );
        assert_grads(
            |v| v[0].expand_per_channel(&[2, 2, 2, 3], Layout::Nhwc),
            &[c],
        );
        assert_grads(|v| v[0].dot(&v[1]), &[x.clone(), y]);
        assert_grads(|v| v[0].norm(), &[x]);
        assert_grads(|v| v[0].broadcast(&[2, 2]), &[s]);
    }
}
