//! Adam, exactly as PyTorch's single-tensor implementation defines it.

use core_tensor::Tensor;

/// Adam's hyper-parameters (PyTorch's defaults but the learning rate, which GradCon sets to 1e-3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam state: first and second moments per parameter, and the step count.
///
/// One step `t <- t + 1` does, per value (PyTorch's `_single_tensor_adam`, no weight decay):
///
/// ```text
/// m <- m + (1 - b1) (g - m)            (lerp)
/// v <- b2 v + (1 - b2) g^2
/// p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub config: AdamConfig,
    pub step: u64,
    pub m: Vec<Tensor<f32>>,
    pub v: Vec<Tensor<f32>>,
}

impl Adam {
    /// Fresh state (zero moments, step 0) for parameters of these shapes.
    pub fn new(config: AdamConfig, shapes: &[&[usize]]) -> Self {
        Self {
            config,
            step: 0,
            m: shapes.iter().map(|s| Tensor::zeros(s)).collect(),
            v: shapes.iter().map(|s| Tensor::zeros(s)).collect(),
        }
    }

    /// Applies one update to `params` from `grads` (same order and shapes as at creation).
    ///
    /// # Panics
    /// If the number or sizes of the tensors differ from the state's (a programming error).
    pub fn update(&mut self, params: &mut [Tensor<f32>], grads: &[Tensor<f32>]) {
        assert_eq!(params.len(), self.m.len(), "Adam: parameter count changed");
        assert_eq!(grads.len(), self.m.len(), "Adam: gradient count differs");
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let step_size = (c.lr / (1.0 - c.beta1.powi(t))) as f32;
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt() as f32;
        let (w1, b2, w2, eps) = (
            (1.0 - c.beta1) as f32,
            c.beta2 as f32,
            (1.0 - c.beta2) as f32,
            c.eps as f32,
        );
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            assert_eq!(p.len(), g.len(), "Adam: gradient size differs");
            let (p, g, m, v) = (p.data_mut(), g.data(), m.data_mut(), v.data_mut());
            for i in 0..p.len() {
                m[i] += w1 * (g[i] - m[i]);
                v[i] = v[i] * b2 + w2 * g[i] * g[i];
                let denom = v[i].sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * (m[i] / denom);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_steps_match_pytorch() {
        // torch.optim.Adam([p], lr=1e-3) on p = [1.0, -2.0] with grads [0.5, -3.0] then [0.1, 0.2]:
        //   p = torch.tensor([1.0, -2.0], requires_grad=True); opt = torch.optim.Adam([p], lr=1e-3)
        //   for g in ([0.5, -3.0], [0.1, 0.2]): p.grad = torch.tensor(g); opt.step(); print(p)
        // -> [0.999, -1.999], then [0.99819696, -1.9983809]
        let mut p = vec![Tensor::from_vec(vec![1.0f32, -2.0], &[2]).unwrap()];
        let mut adam = Adam::new(AdamConfig::default(), &[&[2]]);
        adam.update(&mut p, &[Tensor::from_vec(vec![0.5, -3.0], &[2]).unwrap()]);
        assert!((p[0].data()[0] - 0.999).abs() < 1e-6);
        assert!((p[0].data()[1] + 1.999).abs() < 1e-6);
        adam.update(&mut p, &[Tensor::from_vec(vec![0.1, 0.2], &[2]).unwrap()]);
        assert_eq!(adam.step, 2);
        assert!((p[0].data()[0] - 0.998_196_96).abs() < 1e-6, "{:?}", p[0]);
        assert!((p[0].data()[1] + 1.998_380_9).abs() < 1e-6, "{:?}", p[0]);
    }
}
