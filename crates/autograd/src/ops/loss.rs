//! Losses built from the primitives: they have no backward rule of their own, since their
//! derivatives (of every order) follow from the primitives they are made of.

use core_tensor::{Element, TensorError};

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

    /// `sum_n mean_i (self[n, i] - target[n, i])^2`: each example's own mean squared error
    /// (the mean over its values, the leading dimension counting the examples), summed over
    /// the batch; a rank-0 tensor.
    ///
    /// Its gradient with respect to example `n`'s values is the gradient of that example's
    /// loss alone, `2 (self[n] - target[n]) / P` for `P` values per example, computed with the
    /// same float operations whatever the batch holds (no `1/N`): per-example gradients taken
    /// from it with [`crate::Scaling::Contribution`] are those of a batch of one, bit for bit,
    /// where [`LossOps::mse_loss`] with [`crate::Scaling::BatchOfOne`] rounds differently for
    /// every batch size `N`.
    fn per_example_mse_sum(&self, target: &Self) -> Result<Self> {
        let shape = self.shape();
        let values = shape.iter().product::<usize>();
        if shape.is_empty() || values == 0 {
            return Err(TensorError::InvalidShape {
                op: "per_example_mse_sum",
                shape,
                expected: "a leading batch dimension and at least one value".into(),
            }
            .into());
        }
        let per_example = (values / shape[0]) as f64;
        self.sub(target)?
            .square()?
            .sum()?
            .scale(T::from_f64(1.0 / per_example))
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
        let x = random(&[3, 2, 2], 3, -1.0, 1.0);
        let t = random(&[3, 2, 2], 4, -1.0, 1.0);
        assert_grads(|v| v[0].per_example_mse_sum(&v[1]), &[x, t]);
    }

    /// The sum of each example's mean: `N mse` for equal-sized examples, and the gradient of
    /// one example's values that of its loss alone, bit for bit.
    #[test]
    fn per_example_mse_sum_is_the_batch_of_ones_loss() {
        let x = random(&[3, 5], 5, 0.0, 1.0).cast::<f32>();
        let t = random(&[3, 5], 6, 0.0, 1.0).cast::<f32>();
        let tape = Tape::<f32>::new();
        let (xv, tv) = (tape.param(x.clone()), tape.constant(t.clone()));
        let l = xv.per_example_mse_sum(&tv).unwrap();
        let mse = xv.mse_loss(&tv).unwrap().to_scalar().unwrap();
        assert!((l.to_scalar().unwrap() - 3.0 * mse).abs() < 1e-6);
        let g = crate::grad_tensors(l, &[xv]).unwrap().remove(0);
        for n in 0..3 {
            let one = |a: &Tensor<f32>| {
                Tensor::from_vec(a.data()[n * 5..(n + 1) * 5].to_vec(), &[1, 5]).unwrap()
            };
            let alone = Tape::<f32>::new();
            let xn = alone.param(one(&x));
            let ln = xn.mse_loss(&alone.constant(one(&t))).unwrap();
            let gn = crate::grad_tensors(ln, &[xn]).unwrap().remove(0);
            assert_eq!(gn.as_bytes(), one(&g).as_bytes(), "example {n}");
        }
        let scalar = tape.constant(Tensor::scalar(1.0f32));
        assert!(scalar.per_example_mse_sum(&scalar).is_err());
    }
}
