//! Per-example gradients of convolution parameters from one batched backward pass.
//!
//! For a scalar loss `L = sum_n l_n` (or a mean `(1/N) sum_n l_n`) over a batch whose leading
//! dimension is `N`, where example `n`'s term depends only on example `n`, the weight gradient of
//! a convolution is a sum over the batch: `dL/dW = sum_n G_n` with
//! - `conv2d`: `G_n = conv2d_weight_grad(x_n, gy_n)`,
//! - `conv_transpose2d`: `G_n = conv2d_weight_grad(gy_n, x_n)`,
//! - bias: `G_n[c] = sum_{h,w} gy_n[c, h, w]`,
//!
//! where `x` is the layer's input and `gy = dL/dy` its output gradient, both from the one
//! batched pass. The sum over `n` has already happened once gradients reach the weight, so the
//! per-example terms are taken here, from `x` and `gy`, not from [`crate::grad`].
//!
//! **Scaling.** `G_n` is example `n`'s *contribution* to the batch gradient. For a batch-mean
//! loss, the gradient example `n` would have alone (as a batch of one, its loss the mean over
//! its own values) is `N G_n`: pass [`Scaling::BatchOfOne`] to get that (dot products are then
//! multiplied by `N`, squared norms by `N^2`). The `1/N` of the mean and that `N` round
//! differently for every `N`, so an example's result moves in its last bits with the batch
//! size. For the same bits whatever the batch, differentiate a sum of per-example losses
//! (such as [`crate::prelude::LossOps::per_example_mse_sum`]) with [`Scaling::Contribution`]:
//! every kernel on the way computes an example's values from that example alone.
//!
//! **Cost and memory** (`|W|` the parameter's size, `|y|` the layer output's size), on top of
//! one backward pass from the loss down to the earliest requested layer (no encoder work, no
//! input gradient of that earliest layer):
//! - [`PerExample::Full`]: `N` per-example weight gradients, together as many multiply-adds as
//!   one batched weight gradient; memory `N |W|` for the result.
//! - [`PerExample::Dot`]: `<G_n, R> = <gy_n, conv(x_n; R)>` (for `conv2d`, `conv2d(x_n, R)`;
//!   for `conv_transpose2d`, `conv_transpose2d(x_n, R)`, no bias): one extra forward of the layer
//!   with weights `R`, then `N` dot products; memory `|y|`. No per-example gradient is formed.
//! - [`PerExample::SqNorm`]: `|G_n|^2`. For a weight with one use, from
//!   `conv2d_weight_grad_sq_norms`: each `G_n` formed in a per-thread buffer and reduced at
//!   once (the multiply-adds of one batched weight gradient, memory `|W|` per thread), or, for
//!   layers with few output positions and many weights, from the Gram matrices of the
//!   example's positions (fewer multiply-adds still). Otherwise (a bias, several uses) all
//!   `N` gradients are formed, as for `Full`, and reduced.
//! - [`PerExample::DotAndSqNorm`]: both of the above; where a weight's norms form each `G_n`
//!   in a buffer, the dot products are taken from it too, and the extra forward is skipped.

use core_tensor::conv::{self as kernels};
use std::rc::Rc;

use core_tensor::{Conv2dSpec, Element, Layout, Tensor};

use crate::backward::eager_grads;
use crate::ops::{check_scalar, ConvOp, Op};
use crate::tape::{NodeId, Tape, Var};
use crate::{Error, Result};

/// What to compute for every example.
#[derive(Debug, Clone, Copy)]
pub enum PerExample<'a, T: Element> {
    /// Each example's gradient: a tensor `[N, ...parameter shape]` per parameter.
    Full,
    /// `<G_n, R>` with one `R` (of the parameter's shape) per parameter.
    Dot(&'a [Tensor<T>]),
    /// `|G_n|^2`.
    SqNorm,
    /// `<G_n, R>` and `|G_n|^2` together.
    DotAndSqNorm(&'a [Tensor<T>]),
}

/// Whether to return each example's contribution to the batch gradient or its own gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// `G_n`, with `sum_n G_n = dL/dW`.
    Contribution,
    /// `N G_n`: example `n`'s own gradient when `L` is a mean over the batch of per-example
    /// means (as for a batch-mean MSE), up to rounding that depends on `N`.
    BatchOfOne,
}

/// Per-example results for one parameter (the fields the request asked for are `Some`).
#[derive(Debug, Clone, PartialEq)]
pub struct PerExampleGrads<T: Element> {
    /// `[N, ...parameter shape]`.
    pub full: Option<Tensor<T>>,
    /// `<G_n, R>`, length `N`.
    pub dot: Option<Vec<T>>,
    /// `|G_n|^2`, length `N`.
    pub sq_norm: Option<Vec<T>>,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Weight,
    Bias,
}

/// Per-example gradients of the scalar `output` with respect to `params`, each of which must
/// be used only as a weight or bias of `conv2d` / `conv_transpose2d` operations (see the module
/// documentation for the maths, the scaling and the cost).
pub fn per_example<'t, T: Element>(
    output: Var<'t, T>,
    params: &[Var<'t, T>],
    what: PerExample<'_, T>,
    scaling: Scaling,
) -> Result<Vec<PerExampleGrads<T>>> {
    const OP: &str = "per_example";
    check_scalar(OP, &output.value())?;
    let tape = output.tape();
    let refs = match what {
        PerExample::Dot(r) | PerExample::DotAndSqNorm(r) => Some(r),
        _ => None,
    };
    if let Some(r) = refs {
        if r.len() != params.len() {
            return Err(Error::Unsupported {
                op: OP,
                reason: format!(
                    "{} reference tensors for {} parameters",
                    r.len(),
                    params.len()
                ),
            });
        }
    }
    // Each parameter's uses: (node, convolution, role), checked to be convolutions only.
    let mut uses: Vec<Vec<(NodeId, ConvOp<NodeId>, Role)>> = vec![Vec::new(); params.len()];
    for (k, p) in params.iter().enumerate() {
        output.same_tape(p, OP)?;
        if let Some(r) = refs {
            if r[k].shape() != p.value().shape() {
                return Err(Error::Unsupported {
                    op: OP,
                    reason: format!(
                        "reference {k} has shape {:?}, parameter {:?}",
                        r[k].shape(),
                        p.value().shape()
                    ),
                });
            }
        }
        for id in 0..=output.id() {
            let Some(op) = tape.op(id) else { continue };
            if !op.inputs().contains(&&p.id()) {
                continue;
            }
            // Supported: the weight or the bias of a convolution (not its input, not both).
            let role = match &op {
                Op::Conv(
                    ConvOp::Conv2d { x, w, bias, .. } | ConvOp::ConvTranspose2d { x, w, bias, .. },
                ) if *x != p.id() => match (*w == p.id(), *bias == Some(p.id())) {
                    (true, false) => Some(Role::Weight),
                    (false, true) => Some(Role::Bias),
                    _ => None,
                },
                _ => None,
            };
            match (role, op) {
                (Some(role), Op::Conv(c)) => uses[k].push((id, c, role)),
                (_, op) => {
                    return Err(Error::Unsupported {
                        op: OP,
                        reason: format!(
                            "parameter {k} is used by `{}` (node {id}); only convolution weights \
                             and biases are supported",
                            op.name()
                        ),
                    })
                }
            }
        }
    }
    let conv_nodes: Vec<NodeId> = uses.iter().flatten().map(|u| u.0).collect();
    let gys = eager_grads(output, &conv_nodes)?;
    let gy_of = |node: NodeId| -> Option<Rc<Tensor<T>>> {
        conv_nodes
            .iter()
            .position(|&c| c == node)
            .and_then(|i| gys[i].as_ref().map(|g| g.0.clone()))
    };
    let batch = |id: NodeId| tape.value(id).shape()[0];
    let n = match conv_nodes.first() {
        Some(&c) => batch(c),
        None => 0,
    };
    if let Some(&bad) = conv_nodes.iter().find(|&&c| batch(c) != n) {
        return Err(Error::Unsupported {
            op: OP,
            reason: format!("batch sizes differ: {n} and {} (node {bad})", batch(bad)),
        });
    }
    let factor = match scaling {
        Scaling::Contribution => T::ONE,
        Scaling::BatchOfOne => T::from_f64(n as f64),
    };
    let want_full = matches!(what, PerExample::Full);
    let want_norm = matches!(what, PerExample::SqNorm | PerExample::DotAndSqNorm(_));

    let mut results = Vec::with_capacity(params.len());
    for (k, p) in params.iter().enumerate() {
        let shape = p.value().shape().to_vec();
        let size: usize = shape.iter().product();
        // A weight with one use and no full gradients asked for: the norms straight from the
        // kernel, no `[n, ...shape]` tensor; and the dot products with them, where the kernel
        // forms each example's gradient anyway.
        let (mut full, mut sq_norm, mut dot) = (None, None, None);
        let single = match &uses[k][..] {
            [(node, conv, Role::Weight)] if !want_full && want_norm => Some((node, conv)),
            _ => None,
        };
        if let Some((node, conv)) = single {
            let (norms, dots) = match gy_of(*node) {
                None => (vec![T::ZERO; n], refs.map(|_| vec![T::ZERO; n])),
                Some(gy) => {
                    let (input, out_grad, spec) = weight_grad_operands(tape, conv, gy);
                    let k_hw = [shape[2], shape[3]];
                    match refs {
                        Some(r) => kernels::conv2d_weight_grad_sq_norms_and_dots(
                            &input, &out_grad, k_hw, spec, &r[k],
                        )?,
                        None => (
                            kernels::conv2d_weight_grad_sq_norms(&input, &out_grad, k_hw, spec)?,
                            None,
                        ),
                    }
                }
            };
            let f2 = factor * factor;
            sq_norm = Some(norms.into_iter().map(|v| v * f2).collect());
            dot = dots.map(|d| d.into_iter().map(|v| v * factor).collect());
        }
        // Otherwise the dot products from one forward of each use's layer with weights R,
        // dotted per example.
        if let (Some(r), None) = (refs, &dot) {
            let mut dots = vec![T::ZERO; n];
            for (node, conv, role) in &uses[k] {
                let Some(gy) = gy_of(*node) else { continue };
                let z = match (role, conv) {
                    (Role::Weight, ConvOp::Conv2d { x, spec, .. }) => {
                        kernels::conv2d(&tape.value(*x), &r[k], None, *spec)?
                    }
                    (Role::Weight, ConvOp::ConvTranspose2d { x, spec, .. }) => {
                        kernels::conv_transpose2d(&tape.value(*x), &r[k], None, *spec)?
                    }
                    (Role::Bias, _) => {
                        let mut z = Tensor::zeros(gy.shape());
                        z.add_per_channel(&r[k], layout_of(conv))?;
                        z
                    }
                    (_, ConvOp::Conv2dWeightGrad { .. }) => unreachable!("checked above"),
                };
                let isa = core_tensor::Isa::detect();
                let per = gy.len() / n.max(1);
                for (d, (g, z)) in dots.iter_mut().zip(
                    gy.data()
                        .chunks(per.max(1))
                        .zip(z.data().chunks(per.max(1))),
                ) {
                    *d += T::dot_slice(isa, g, z) * factor;
                }
            }
            dot = Some(dots);
        }
        // Full gradients and norms: each example's gradient, summed over the parameter's uses.
        if single.is_none() && (want_full || want_norm) {
            // Every example's gradient at once, `[n, ...shape]`, from the batched per-example
            // kernel (parallel over the batch), summed over the parameter's uses.
            let mut all: Option<Tensor<T>> = None;
            for (node, conv, role) in &uses[k] {
                let Some(gy) = gy_of(*node) else { continue };
                let term = match role {
                    Role::Weight => {
                        let (input, out_grad, spec) = weight_grad_operands(tape, conv, gy);
                        kernels::conv2d_weight_grad_per_example(
                            &input,
                            &out_grad,
                            [shape[2], shape[3]],
                            spec,
                        )?
                    }
                    Role::Bias => {
                        let mut sums = Vec::with_capacity(n * size);
                        for i in 0..n {
                            let one = example(&gy, i).sum_per_channel(layout_of(conv))?;
                            sums.extend_from_slice(one.data());
                        }
                        Tensor::from_vec(sums, &[n * size])?
                    }
                };
                let mut term = term.reshape(&[n * size])?;
                match all.as_mut() {
                    Some(sum) => sum.axpy(factor, &term)?,
                    // The first (usually only) use: scaled in place, no extra buffer.
                    None => {
                        if factor != T::ONE {
                            term.data_mut().iter_mut().for_each(|v| *v *= factor);
                        }
                        all = Some(term);
                    }
                }
            }
            let all = all.unwrap_or_else(|| Tensor::zeros(&[n * size]));
            if want_norm {
                let isa = core_tensor::Isa::detect();
                sq_norm = Some(
                    all.data()
                        .chunks(size.max(1))
                        .map(|g| T::dot_slice(isa, g, g))
                        .collect::<Vec<T>>(),
                );
            }
            if want_full {
                let mut full_shape = vec![n];
                full_shape.extend_from_slice(&shape);
                full = Some(all.reshape(&full_shape)?);
            }
        }
        results.push(PerExampleGrads { full, dot, sq_norm });
    }
    Ok(results)
}

/// A weight's gradient as the weight gradient of a forward convolution:
/// `(input, output gradient, spec)`. A transposed convolution is the adjoint of the forward
/// convolution from its output to its input, so its output gradient takes the input's place.
fn weight_grad_operands<T: Element>(
    tape: &Tape<T>,
    conv: &ConvOp<NodeId>,
    gy: Rc<Tensor<T>>,
) -> (Rc<Tensor<T>>, Rc<Tensor<T>>, Conv2dSpec) {
    match conv {
        ConvOp::Conv2d { x, spec, .. } => (tape.value(*x), gy, *spec),
        ConvOp::ConvTranspose2d { x, spec, .. } => (gy, tape.value(*x), spec.forward()),
        ConvOp::Conv2dWeightGrad { .. } => unreachable!("only convolutions are collected"),
    }
}

/// The layout of a convolution's images.
fn layout_of<I>(conv: &ConvOp<I>) -> Layout {
    match conv {
        ConvOp::Conv2d { spec, .. } | ConvOp::Conv2dWeightGrad { spec, .. } => spec.layout,
        ConvOp::ConvTranspose2d { spec, .. } => spec.layout,
    }
}

/// Example `i` of a batch `[N, ...]` as a batch of one `[1, ...]` (a copy).
fn example<T: Element>(t: &Tensor<T>, i: usize) -> Tensor<T> {
    let per = t.len() / t.shape()[0];
    let mut shape = t.shape().to_vec();
    shape[0] = 1;
    Tensor::from_vec(t.data()[i * per..(i + 1) * per].to_vec(), &shape).expect("one example")
}
