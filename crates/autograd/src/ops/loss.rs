//! Losses built from the primitives: they have no backward rule of their own, since their
//! derivatives (of every order) follow from the primitives they are made of.

use core_tensor::Element;

use super::{Differentiable, ElementwiseOps, ReduceOps};
use crate::Result;

/// The `eps` of PyTorch 2.x's `cosine_similarity`.
pub const COSINE_EPS: f64 = 1e-8;

/// Losses on anything [`Differentiable`] (import with [`crate::prelude`]).
pub trait LossOps<T: Element>: Differentiable<T> {
    /// `mean((self - target)^2)` over every value (same shapes), a rank-0 tensor.
    fn mse_loss(&self, target: &Self) -> Result<Self> {
        self.sub(target)?.square()?.mean()
    }

    /// `a.b / (max(|a|, eps) max(|b|, eps))` over the flattened tensors (same shapes), with
    /// `eps = 1e-8`: PyTorch 2.x's `cosine_similarity` of `a.flatten()` and `b.flatten()`.
    fn cosine_similarity(&self, other: &Self) -> Result<Self> {
        let eps = T::from_f64(COSINE_EPS);
        let na = self.norm()?.clamp_min(eps)?;
        let nb = other.norm()?.clamp_min(eps)?;
        self.dot(other)?.div(&na.mul(&nb)?)
    }
}

impl<T: Element, V: Differentiable<T>> LossOps<T> for V {}

#[cfg(test)]
mod tests {
    use core_tensor::Tensor;

    use crate::check::{assert_grads, random};
    use crate::prelude::*;

    #[test]
    fn mse_and_cosine_values() {
        let tape = Tape::<f64>::new();
        let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 2.0], &[3]).unwrap());
        let b = tape.constant(Tensor::from_vec(vec![0.0, 2.0, 0.0], &[3]).unwrap());
        assert_eq!(a.mse_loss(&b).unwrap().to_scalar().unwrap(), 5.0 / 3.0);
        // a.b = 4, |a| = 3, |b| = 2.
        let c = a.cosine_similarity(&b).unwrap().to_scalar().unwrap();
        assert!((c - 4.0 / 6.0).abs() < 1e-15);
        // A zero vector: the norm is clamped to eps and the cosine is 0, not NaN.
        let z = tape.param(Tensor::zeros(&[3]));
        let cz = z.cosine_similarity(&a).unwrap();
        assert_eq!(cz.to_scalar().unwrap(), 0.0);
        let g = crate::grad_tensors(cz, &[z]).unwrap();
        assert!(g[0].data().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn gradients_first_and_second_order() {
        let a = random(&[2, 5], 1, -1.0, 1.0);
        let b = random(&[2, 5], 2, -1.0, 1.0);
        assert_grads(|v| v[0].mse_loss(&v[1]), &[a.clone(), b.clone()]);
        assert_grads(|v| v[0].cosine_similarity(&v[1]), &[a, b]);
    }
}
