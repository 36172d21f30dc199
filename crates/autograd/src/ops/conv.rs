//! Convolutions: `conv2d`, `conv_transpose2d` and `conv2d_weight_grad`, on NCHW or NHWC images
//! as their spec says (the rules below keep the layout: every image they make is in it).
//!
//! The three are closed under differentiation, so every backward rule is one of them:
//! - `y = conv2d(x, w) + b`: `dx = conv_transpose2d(gy, w)` (output padding derived from x's
//!   size), `dw = conv2d_weight_grad(x, gy)`, `db = sum_per_channel(gy)`.
//! - `y = conv_transpose2d(x, w) + b`, the adjoint of `conv2d(., w)`: `dx = conv2d(gy, w)`,
//!   `dw = conv2d_weight_grad(gy, x)` (roles swapped; `[in, out, kh, kw]` is exactly the layout
//!   of a convolution from `gy`'s channels to `x`'s), `db = sum_per_channel(gy)`.
//! - `G = conv2d_weight_grad(x, gy)` is bilinear: `<G, H> = <gy, conv2d(x, H)>
//!   = <x, conv_transpose2d(gy, H)>`, so `dx = conv_transpose2d(gy, gG)`, `dgy = conv2d(x, gG)`.

use std::rc::Rc;

use core_tensor::conv::{self as kernels};
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Element, Layout, Tensor, TensorError};

use super::{Differentiable, Op, ReduceOps, Rule};
use crate::tape::NodeId;
use crate::Result;

/// The convolution family.
#[derive(Debug, Clone)]
pub enum ConvOp<I> {
    /// `x [n, c, h, w]`, `w [o, c, kh, kw]`, optional `bias [o]`.
    Conv2d {
        x: I,
        w: I,
        bias: Option<I>,
        spec: Conv2dSpec,
    },
    /// `x [n, i, h, w]`, `w [i, o, kh, kw]`, optional `bias [o]` (PyTorch's ConvTranspose2d).
    ConvTranspose2d {
        x: I,
        w: I,
        bias: Option<I>,
        spec: ConvTranspose2dSpec,
    },
    /// `dw[o, c, p, q] = sum_{n,i,j} x[n, c, i s - pad + p, j s - pad + q] gy[n, o, i, j]`.
    Conv2dWeightGrad {
        x: I,
        gy: I,
        kernel_hw: [usize; 2],
        spec: Conv2dSpec,
    },
}

use ConvOp as C;

impl<I> ConvOp<I> {
    pub(crate) fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ConvOp<J> {
        match self {
            C::Conv2d { x, w, bias, spec } => {
                let (x, w) = (f(x), f(w));
                C::Conv2d {
                    x,
                    w,
                    bias: bias.map(f),
                    spec,
                }
            }
            C::ConvTranspose2d { x, w, bias, spec } => {
                let (x, w) = (f(x), f(w));
                C::ConvTranspose2d {
                    x,
                    w,
                    bias: bias.map(f),
                    spec,
                }
            }
            C::Conv2dWeightGrad {
                x,
                gy,
                kernel_hw,
                spec,
            } => {
                let x = f(x);
                C::Conv2dWeightGrad {
                    x,
                    gy: f(gy),
                    kernel_hw,
                    spec,
                }
            }
        }
    }

    pub(crate) fn inputs(&self) -> Vec<&I> {
        match self {
            C::Conv2d { x, w, bias, .. } | C::ConvTranspose2d { x, w, bias, .. } => {
                let mut v = vec![x, w];
                v.extend(bias.as_ref());
                v
            }
            C::Conv2dWeightGrad { x, gy, .. } => vec![x, gy],
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            C::Conv2d { .. } => "conv2d",
            C::ConvTranspose2d { .. } => "conv_transpose2d",
            C::Conv2dWeightGrad { .. } => "conv2d_weight_grad",
        }
    }
}

pub(crate) fn forward<T: Element>(op: &ConvOp<Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    Ok(match op {
        C::Conv2d { x, w, bias, spec } => kernels::conv2d(x, w, bias.as_deref(), *spec)?,
        C::ConvTranspose2d { x, w, bias, spec } => {
            kernels::conv_transpose2d(x, w, bias.as_deref(), *spec)?
        }
        C::Conv2dWeightGrad {
            x,
            gy,
            kernel_hw,
            spec,
        } => kernels::conv2d_weight_grad(x, gy, *kernel_hw, *spec)?,
    })
}

/// Kernel height and width of a weight `[o, c, kh, kw]`.
fn kernel_hw(shape: &[usize]) -> [usize; 2] {
    [shape[2], shape[3]]
}

/// Height and width of a 4-D image batch in `layout`.
fn image_hw(shape: &[usize], layout: Layout) -> [usize; 2] {
    let [_, _, h, w] = layout.to_nchw([shape[0], shape[1], shape[2], shape[3]]);
    [h, w]
}

/// The transposed-convolution spec mapping a `conv2d` output of size `out_hw` back to its input
/// size `input_hw`: `output_padding = input + 2 pad - ((out - 1) stride + k)`, which lies in
/// `[0, stride)` for every valid convolution.
///
/// Computed in signed arithmetic: `core_tensor::conv::transpose_spec_for` clamps
/// `(out - 1) stride + k - 2 pad` at zero before subtracting, which gives a wrong output padding
/// when the padding exceeds that span (for example input 1, kernel 3, stride 3, padding 2).
fn transpose_spec(
    out_hw: [usize; 2],
    kernel_hw: [usize; 2],
    input_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<ConvTranspose2dSpec> {
    let mut output_padding = [0; 2];
    for a in 0..2 {
        let full = (out_hw[a].max(1) - 1) * spec.stride[a] + kernel_hw[a];
        let op = (input_hw[a] + 2 * spec.padding[a]) as isize - full as isize;
        if op < 0 || op >= spec.stride[a] as isize {
            return Err(TensorError::InvalidGeometry {
                op: "conv2d_input_grad",
                input: out_hw.to_vec(),
                weight: kernel_hw.to_vec(),
                reason: format!(
                    "no output padding maps size {} back to {} on axis {a}",
                    out_hw[a], input_hw[a]
                ),
            }
            .into());
        }
        output_padding[a] = op as usize;
    }
    Ok(ConvTranspose2dSpec {
        stride: spec.stride,
        padding: spec.padding,
        output_padding,
        layout: spec.layout,
    })
}

/// Vector-Jacobian products of the convolutions (see the module documentation).
pub(crate) fn backward<T: Element, V: Differentiable<T>>(
    op: &ConvOp<NodeId>,
    r: &mut Rule<'_, V>,
) -> Result<()> {
    let gy = r.gy.clone();
    match *op {
        C::Conv2d { x, w, bias, spec } => {
            let wv = r.input(w);
            if r.needs(x) {
                let t = transpose_spec(
                    image_hw(&gy.shape(), spec.layout),
                    kernel_hw(&wv.shape()),
                    image_hw(&r.input(x).shape(), spec.layout),
                    spec,
                )?;
                r.send(x, gy.conv_transpose2d(&wv, None, t)?);
            }
            if r.needs(w) {
                let k = kernel_hw(&wv.shape());
                r.send(w, r.input(x).conv2d_weight_grad(&gy, k, spec)?);
            }
            if let Some(b) = bias.filter(|&b| r.needs(b)) {
                r.send(b, gy.sum_per_channel(spec.layout)?);
            }
        }
        C::ConvTranspose2d { x, w, bias, spec } => {
            let wv = r.input(w);
            if r.needs(x) {
                r.send(x, gy.conv2d(&wv, None, spec.forward())?);
            }
            if r.needs(w) {
                let k = kernel_hw(&wv.shape());
                r.send(w, gy.conv2d_weight_grad(&r.input(x), k, spec.forward())?);
            }
            if let Some(b) = bias.filter(|&b| r.needs(b)) {
                r.send(b, gy.sum_per_channel(spec.layout)?);
            }
        }
        C::Conv2dWeightGrad { x, gy: g, spec, .. } => {
            // Here `gy` (the rule's incoming gradient) has the weight's shape [o, c, kh, kw].
            let (xv, gv) = (r.input(x), r.input(g));
            if r.needs(x) {
                let t = transpose_spec(
                    image_hw(&gv.shape(), spec.layout),
                    kernel_hw(&gy.shape()),
                    image_hw(&xv.shape(), spec.layout),
                    spec,
                )?;
                r.send(x, gv.conv_transpose2d(&gy, None, t)?);
            }
            if r.needs(g) {
                r.send(g, xv.conv2d(&gy, None, spec)?);
            }
        }
    }
    Ok(())
}

fn conv<T: Element, V: Differentiable<T>>(op: ConvOp<V>) -> Result<V> {
    V::apply(Op::Conv(op))
}

/// Convolutions on anything [`Differentiable`] (import with [`crate::prelude`]).
pub trait ConvOps<T: Element>: Differentiable<T> {
    /// `y[n,o,i,j] = b[o] + sum_{c,p,q} x[n,c, i s - pad + p, j s - pad + q] w[o,c,p,q]`.
    ///
    /// `self` is `[n, c, h, w]`, `w` is `[o, c, kh, kw]`, `bias` is `[o]`.
    fn conv2d(&self, w: &Self, bias: Option<&Self>, spec: Conv2dSpec) -> Result<Self> {
        conv(C::Conv2d {
            x: self.clone(),
            w: w.clone(),
            bias: bias.cloned(),
            spec,
        })
    }
    /// The adjoint of `conv2d(., w)` plus a bias (PyTorch's ConvTranspose2d).
    ///
    /// `self` is `[n, i, h, w]`, `w` is `[i, o, kh, kw]`, `bias` is `[o]`; the output is
    /// `[n, o, (h - 1) s - 2 pad + kh + output_padding, ...]`.
    fn conv_transpose2d(
        &self,
        w: &Self,
        bias: Option<&Self>,
        spec: ConvTranspose2dSpec,
    ) -> Result<Self> {
        conv(C::ConvTranspose2d {
            x: self.clone(),
            w: w.clone(),
            bias: bias.cloned(),
            spec,
        })
    }
    /// `dw[o,c,p,q] = sum_{n,i,j} x[n,c, i s - pad + p, j s - pad + q] gy[n,o,i,j]` with `self`
    /// as `x`: the weight gradient of `conv2d`, differentiable in both arguments.
    fn conv2d_weight_grad(
        &self,
        gy: &Self,
        kernel_hw: [usize; 2],
        spec: Conv2dSpec,
    ) -> Result<Self> {
        conv(C::Conv2dWeightGrad {
            x: self.clone(),
            gy: gy.clone(),
            kernel_hw,
            spec,
        })
    }
}

impl<T: Element, V: Differentiable<T>> ConvOps<T> for V {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{assert_grads, random};
    use crate::prelude::*;

    #[test]
    fn weight_grad_of_conv_matches_the_kernel() {
        let tape = Tape::<f64>::new();
        let spec = Conv2dSpec::new(2, 1);
        let x = tape.param(random(&[2, 3, 5, 6], 1, -1.0, 1.0));
        let w = tape.param(random(&[4, 3, 3, 2], 2, -1.0, 1.0));
        let gy = random(&[2, 4, 3, 4], 3, -1.0, 1.0);
        let y = x.conv2d(&w, None, spec).unwrap();
        let l = y.dot(&tape.constant(gy.clone())).unwrap();
        let g = crate::grad_tensors(l, &[w]).unwrap();
        let expected = kernels::conv2d_weight_grad(&x.value(), &gy, [3, 2], spec).unwrap();
        assert!(g[0].max_abs_diff(&expected).unwrap() < 1e-12);
    }

    #[test]
    fn gradients_first_and_second_order() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            // x: 2 images of 3 channels, 5 x 4; gy: 2 channels, 3 x 3.
            let x = random(&layout.shape([2, 3, 5, 4]), 1, -1.0, 1.0);
            let w = random(&[2, 3, 3, 2], 2, -1.0, 1.0);
            let b = random(&[2], 3, -1.0, 1.0);
            let spec = Conv2dSpec::new(2, 1).in_layout(layout);
            assert_grads(
                |v| v[0].conv2d(&v[1], Some(&v[2]), spec),
                &[x.clone(), w.clone(), b.clone()],
            );
            // ConvT with weight [3, 2, 3, 2]: 3 input channels to 2 outputs.
            let wt = random(&[3, 2, 3, 2], 4, -1.0, 1.0);
            let tspec = ConvTranspose2dSpec::new(2, 1, 1).in_layout(layout);
            assert_grads(
                |v| v[0].conv_transpose2d(&v[1], Some(&v[2]), tspec),
                &[x.clone(), wt, b],
            );
            let gy = random(&layout.shape([2, 2, 3, 3]), 5, -1.0, 1.0);
            assert_grads(|v| v[0].conv2d_weight_grad(&v[1], [3, 2], spec), &[x, gy]);
        }
    }
}
