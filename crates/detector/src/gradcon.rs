//! GradCon's losses and score on a tape: the forward pass, the training loss with its
//! second-order term, and the batched per-example score.

use autograd::prelude::*;
use autograd::{grad, per_example, PerExample, Scaling};
use core_tensor::{Layout, Tensor};

use crate::model::{layers, LayerKind, GRAD_LAYER_PARAMS};
use crate::Result;

/// `cosine_similarity`'s eps (PyTorch 2.x): norms are clamped below at this value.
pub const COS_EPS: f64 = 1e-8;

/// The layout the layers run in. The convolution kernels work on each pixel's channels
/// together, so NHWC activations pass from layer to layer with no reordering; the images are
/// reordered once on the way in and once on the way out.
pub const LAYERS_LAYOUT: Layout = Layout::Nhwc;

/// The autoencoder's reconstruction of `x` (`[B, C, 28, 28]`, as is the result), with `params`
/// in the order of [`crate::model::GradConModel::params`].
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
        let (w, b) = (&params[2 * i], &params[2 * i + 1]);
        h = match layer.kind {
            LayerKind::Conv => h.conv2d(w, Some(b), layer.conv_spec(LAYERS_LAYOUT))?,
            LayerKind::ConvTranspose => {
                h.conv_transpose2d(w, Some(b), layer.conv_transpose_spec(LAYERS_LAYOUT))?
            }
        };
        h = if i == 7 { h.sigmoid()? } else { h.relu()? };
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
            let decoder: Vec<_> = GRAD_LAYER_PARAMS.iter().map(|&i| params[i]).collect();
            let g = grad(mse, &decoder, create_graph)?;
            let mut cos_sum = g[0].cosine_similarity(&refs[0])?;
            for l in 1..4 {
                cos_sum = cos_sum.add(&g[l].cosine_similarity(&refs[l])?)?;
            }
            let grad_loss = cos_sum.scale(-0.25)?;
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

/// Per-image scores: `gradcon = -L(x) + beta * grad`, `recon = -L(x)`, and the gradient term
/// `grad = (1/4) sum_l cos(dL(x)/dW_l, r_l)`; higher means more normal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub gradcon: Vec<f64>,
    pub recon: Vec<f64>,
    pub grad: Vec<f64>,
}

impl Scores {
    pub fn len(&self) -> usize {
        self.gradcon.len()
    }
    pub fn is_empty(&self) -> bool {
        self.gradcon.is_empty()
    }
    pub fn extend(&mut self, other: Scores) {
        self.gradcon.extend(other.gradcon);
        self.recon.extend(other.recon);
        self.grad.extend(other.grad);
    }
}

/// Scores a batch `x` (`[B, C, 28, 28]`) from one batched forward and backward pass.
///
/// Each image's own gradient `dL(x_n)/dW_l` (its loss a mean over its own pixels, as if in a
/// batch of one) comes from [`fn@per_example`] as the dot product with `r_l` and the squared norm,
/// never materialised per image for the dot product. The cosine clamps both norms at
/// [`COS_EPS`], as PyTorch 2.x does.
pub fn score_batch(
    params: &[Tensor<f32>],
    refs: &[Tensor<f32>],
    x: &Tensor<f32>,
    beta: f64,
) -> Result<Scores> {
    let tape = autograd::Tape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.param(p.clone())).collect();
    // Image and reconstruction in the layers' layout: each image's values are a contiguous run
    // either way, and its loss a mean over them.
    let x = x.relayout(Layout::Nchw, LAYERS_LAYOUT)?;
    let xv = tape.constant(x.clone());
    let recon = reconstruct(&vars, xv)?;
    let mse = recon.mse_loss(&xv)?;
    let decoder: Vec<_> = GRAD_LAYER_PARAMS.iter().map(|&i| vars[i]).collect();
    let per = per_example(
        mse,
        &decoder,
        PerExample::DotAndSqNorm(refs),
        Scaling::BatchOfOne,
    )?;
    let ref_norms: Vec<f64> = refs
        .iter()
        .map(|r| (r.sum_sq() as f64).sqrt().max(COS_EPS))
        .collect();
    let n = x.shape()[0];
    let per_image = x.len() / n.max(1);
    let (xs, rs) = (x.data(), recon.value());
    let mut out = Scores::default();
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
            / 4.0;
        out.gradcon.push(-l + beta * cos);
        out.recon.push(-l);
        out.grad.push(cos);
    }
    Ok(out)
}
