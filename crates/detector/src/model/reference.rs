//! GradCon's reference gradients: the running average `r_l` of the training loss's gradient
//! with respect to each gradient layer's weight, and the number of updates it averages.

use core_tensor::Tensor;

use super::{gradient_params, layers, Autoencoder, NUM_GRADIENT_LAYERS};

/// The reference gradients `r_l` of the four gradient layers (decoder weights) and how many
/// updates they average.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceGradients {
    /// `r_l`, each of its gradient layer's weight shape, in the order of
    /// [`super::gradient_layers`].
    pub grads: Vec<Tensor<f32>>,
    /// Number of updates averaged so far (`k` in `r <- (r k + g) / (k + 1)`); 0 means no
    /// history, and the gradient term of the score is then zero.
    pub count: u64,
}

impl ReferenceGradients {
    /// No history: zero tensors of the gradient layers' shapes for `channels`, count 0.
    pub fn zeros(channels: usize) -> Self {
        Self {
            grads: Autoencoder::grad_layer_shapes(channels)
                .iter()
                .map(|s| Tensor::zeros(s))
                .collect(),
            count: 0,
        }
    }

    /// The first average: the gradient layers' entries of `grads` (all parameters' gradients,
    /// in parameter order), count 1.
    pub fn first(grads: &[Tensor<f32>]) -> Self {
        Self {
            grads: gradient_params()
                .iter()
                .map(|&i| grads[i].clone())
                .collect(),
            count: 1,
        }
    }

    /// `r <- (r k + dJ/dW) / (k + 1)` for each gradient layer, then `k <- k + 1`; `grads` holds
    /// every parameter's gradient, in parameter order.
    pub fn update(&mut self, grads: &[Tensor<f32>]) {
        let k = self.count as f32;
        for (r, &i) in self.grads.iter_mut().zip(&gradient_params()) {
            for (rv, &g) in r.data_mut().iter_mut().zip(grads[i].data()) {
                *rv = (*rv * k + g) / (k + 1.0);
            }
        }
        self.count += 1;
    }

    /// The names these tensors are stored under: `ref_grad.0` .. `ref_grad.3`.
    pub fn names() -> [String; NUM_GRADIENT_LAYERS] {
        std::array::from_fn(|l| format!("ref_grad.{l}"))
    }

    /// The name of the gradient layer weight each reference belongs to (`up.0.weight`, ...).
    pub fn layer_names(channels: usize) -> [String; NUM_GRADIENT_LAYERS] {
        let table = layers(channels);
        super::gradient_layers().map(|i| table[i].weight_name())
    }

    /// Whether every value is finite; the name of the first tensor that is not, otherwise.
    pub fn first_non_finite(&self) -> Option<String> {
        Self::names()
            .into_iter()
            .zip(&self.grads)
            .find(|(_, g)| g.data().iter().any(|v| !v.is_finite()))
            .map(|(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_average_is_the_mean_of_the_updates() {
        let shapes = Autoencoder::param_shapes(1);
        let grads = |v: f32| -> Vec<Tensor<f32>> {
            shapes
                .iter()
                .map(|s| Tensor::from_vec(vec![v; s.iter().product()], s).unwrap())
                .collect()
        };
        let mut r = ReferenceGradients::first(&grads(1.0));
        r.update(&grads(2.0));
        r.update(&grads(6.0));
        assert_eq!(r.count, 3);
        assert!(r.grads.iter().all(|g| g.data().iter().all(|&v| v == 3.0)));
        assert_eq!(
            r.grads
                .iter()
                .map(|g| g.shape().to_vec())
                .collect::<Vec<_>>(),
            Autoencoder::grad_layer_shapes(1)
        );
    }
}
