//! GradCon's losses and score on a tape: the forward pass, the training loss with its
//! second-order term, and the batched per-example score.

use autograd::prelude::*;
use autograd::{grad, per_example, PerExample, Scaling};
use core_tensor::{Layout, Tensor};

use crate::model::{gradient_params, layers, weight_index, Activation, LayerKind};
use crate::Result;

/// `cosine_similarity`'s eps (PyTorch 2.x): norms are clamped below at this value.
pub const COS_EPS: f64 = 1e-8;

/// The layout the layers run in. The convolution kernels work on each pixel's channels
/// together, so NHWC activations pass from layer to layer with no reordering; the images are
/// reordered once on the way in and once on the way out.
pub const LAYERS_LAYOUT: Layout = Layout::Nhwc;

/// The autoencoder's reconstruction of `x` (`[B, C, 28, 28]`, as is the result), with `params`
/// in the order of [`crate::model::Autoencoder::params`].
pub fn forward<'t>(params: &[Var<'t, f32>], x: Var<'t, f32>) -> Result<Var<'t, f32>> {
    let x = x.relayout(Layout::Nchw, LAYERS_LAYOUT)?;
    Ok(reconstruct(params, x)?.relayout(LAYERS_LAYOUT, Layout::Nchw)?)
}

/// The reconstruction of `x`, both in [`LAYERS_LAYOUT`].
///
/// The losses compare the two in that layout (a mean over every value does not depend on the
/// order), so no reordering lies on the paths that are differentiated.
fn reconstruct<'t>(params: &[Var<'t, f32>], x: Var<'t, f32>) -> Result<Var<'t, f32>> {
    let c = x.value().dims_in("gradcon", LAYERS_LAYOUT)?[1];
    let mut h = x;
    for (i, layer) in layers(c).iter().enumerate() {
        let (w, b) = (&params[weight_index(i)], &params[weight_index(i) + 1]);
        h = match layer.kind {
            LayerKind::Conv => h.conv2d(w, Some(b), layer.conv_spec(LAYERS_LAYOUT))?,
            LayerKind::ConvTranspose => {
                h.conv_transpose2d(w, Some(b), layer.conv_transpose_spec(LAYERS_LAYOUT))?
            }
        };
        h = match layer.activation {
            Activation::Relu => h.relu()?,
            Activation::Sigmoid => h.sigmoid()?,
        };
    }
    Ok(h)
}

/// The parts of GradCon's training loss for one batch.
#[derive(Debug, Clone, Copy)]
pub struct Loss<'t> {
    /// `J = mse + alpha * L_grad`.
    pub total: Var<'t, f32>,
    /// `mean((x' - x)^2)` over the batch.
    pub mse: Var<'t, f32>,
    /// `L_grad = -(1/4) sum_l cos(dmse/dW_l, r_l)`; `None` without reference gradients.
    pub grad_loss: Option<Var<'t, f32>>,
    /// The reconstruction `x'` in [`LAYERS_LAYOUT`] (see [`Loss::reconstruction`]).
    pub recon_layers: Var<'t, f32>,
}

/// `J = mse + alpha * (-(1/4) sum_l cos(vec(dmse/dW_l), vec(r_l)))` (PAPER.md, Training).
///
/// With `refs == None` (no history yet) or `alpha == 0`, `J = mse`. With `create_graph` the
/// decoder-weight gradients stay on the tape, so `J` can be differentiated (training); without
/// it they are constants (validation, where only the value is needed).
pub fn loss<'t>(
    params: &[Var<'t, f32>],
    x: Var<'t, f32>,
    refs: Option<&[Var<'t, f32>]>,
    alpha: f64,
    create_graph: bool,
) -> Result<Loss<'t>> {
    let x = x.relayout(Layout::Nchw, LAYERS_LAYOUT)?;
    let recon = reconstruct(params, x)?;
    let mse = recon.mse_loss(&x)?;
    let (total, grad_loss) = match refs {
        Some(refs) if alpha != 0.0 => {
            let decoder: Vec<_> = gradient_params().iter().map(|&i| params[i]).collect();
            let g = grad(mse, &decoder, create_graph)?;
            let mut cos_sum = g[0].cosine_similarity(&refs[0])?;
            for l in 1..g.len() {
                cos_sum = cos_sum.add(&g[l].cosine_similarity(&refs[l])?)?;
            }
            let grad_loss = cos_sum.scale(-1.0 / g.len() as f32)?;
            (mse.add(&grad_loss.scale(alpha as f32)?)?, Some(grad_loss))
        }
        _ => (mse, None),
    };
    Ok(Loss {
        total,
        mse,
        grad_loss,
        recon_layers: recon,
    })
}

impl Loss<'_> {
    /// The reconstruction `x'` as `[B, C, 28, 28]` (reordered on request: training steps do
    /// not need it).
    pub fn reconstruction(&self) -> Result<Tensor<f32>> {
        Ok(self
            .recon_layers
            .value()
            .relayout(LAYERS_LAYOUT, Layout::Nchw)?)
    }
}

/// One image's scores.
///
/// `gradcon = recon + beta * grad` (higher means more normal), with `recon = -L(x)` (minus
/// the image's mean squared reconstruction error) and the gradient term
/// `grad = (1/4) sum_l cos(dL(x)/dW_l, r_l)`. `anomaly_score = -gradcon` (higher means more
/// anomalous, as in PyOD's decision function), and `anomalous` is the decision
/// `anomaly_score > threshold` when the detector has a threshold for its `beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Score {
    /// `-gradcon`: higher means more anomalous.
    pub anomaly_score: f64,
    /// Whether the image is anomalous at the detector's threshold (`None`: no threshold, or
    /// one calibrated for another `beta`).
    pub anomalous: Option<bool>,
    /// The GradCon score, `recon + beta * grad`.
    pub gradcon: f64,
    /// The reconstruction term `-L(x)`.
    pub recon: f64,
    /// The gradient term: the mean cosine between the image's decoder-weight gradients and the
    /// reference gradients.
    pub grad: f64,
}

impl Score {
    /// The score of an image with reconstruction term `recon` and gradient term `grad`.
    pub fn new(recon: f64, grad: f64, beta: f64) -> Self {
        let gradcon = recon + beta * grad;
        Self {
            anomaly_score: -gradcon,
            anomalous: None,
            gradcon,
            recon,
            grad,
        }
    }

    /// The score with the decision at `threshold` (`None` leaves it undecided).
    pub fn decided(mut self, threshold: Option<f64>) -> Self {
        self.anomalous = threshold.map(|t| self.anomaly_score > t);
        self
    }
}

/// Scores a batch `x` (`[B, C, 28, 28]`) from one batched forward and backward pass.
///
/// Each image's own gradient `dL(x_n)/dW_l` (its loss a mean over its own pixels, as if in a
/// batch of one) comes from [`fn@per_example`] as the dot product with `r_l` and the squared norm,
/// never materialised per image for the dot product. The cosine clamps both norms at
/// [`COS_EPS`], as PyTorch 2.x does.
///
/// An image's score is the same to the bit whatever else the batch holds, wherever the image
/// sits in it and on any number of threads: the pass differentiates the sum of the images'
/// own losses ([`LossOps::per_example_mse_sum`]), so no `1/B` enters an image's gradient, and
/// every kernel computes an image's values from that image alone (for each `Isa` path; the
/// paths differ from each other in the last bits). A batch of one gives the bits the
/// batch-mean loss gives it.
pub fn score_batch(
    params: &[Tensor<f32>],
    refs: &[Tensor<f32>],
    x: &Tensor<f32>,
    beta: f64,
) -> Result<Vec<Score>> {
    let tape = autograd::Tape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.param(p.clone())).collect();
    // Image and reconstruction in the layers' layout: each image's values are a contiguous run
    // either way, and its loss a mean over them.
    let x = x.relayout(Layout::Nchw, LAYERS_LAYOUT)?;
    let xv = tape.constant(x.clone());
    let recon = reconstruct(&vars, xv)?;
    let losses = recon.per_example_mse_sum(&xv)?;
    let decoder: Vec<_> = gradient_params().iter().map(|&i| vars[i]).collect();
    let per = per_example(
        losses,
        &decoder,
        PerExample::DotAndSqNorm(refs),
        Scaling::Contribution,
    )?;
    let ref_norms: Vec<f64> = refs
        .iter()
        .map(|r| (r.sum_sq() as f64).sqrt().max(COS_EPS))
        .collect();
    let n = x.shape()[0];
    let per_image = x.len() / n.max(1);
    let (xs, rs) = (x.data(), recon.value());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let span = i * per_image..(i + 1) * per_image;
        let l = xs[span.clone()]
            .iter()
            .zip(&rs.data()[span])
            .map(|(&a, &b)| (b as f64 - a as f64).powi(2))
            .sum::<f64>()
            / per_image as f64;
        let cos = per
            .iter()
            .zip(&ref_norms)
            .map(|(g, rn)| {
                let dot = g.dot.as_ref().expect("dot requested")[i] as f64;
                let sq = g.sq_norm.as_ref().expect("norm requested")[i] as f64;
                dot / (sq.sqrt().max(COS_EPS) * rn)
            })
            .sum::<f64>()
            / per.len() as f64;
        out.push(Score::new(-l, cos, beta));
    }
    Ok(out)
}
