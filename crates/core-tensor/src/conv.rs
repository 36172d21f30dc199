//! 2-D convolution and transposed convolution, with the kernels their gradients need.
//!
//! Three kernels close the family under differentiation:
//! - [`conv2d`]: `y[n,o,i,j] = b[o] + sum_{c,p,q} x[n,c, i*s-pad+p, j*s-pad+q] w[o,c,p,q]`
//! - [`conv_transpose2d`]: its adjoint in `x` (PyTorch semantics, weight `[in, out, kh, kw]`)
//! - [`conv2d_weight_grad`]: `dw[o,c,p,q] = sum_{n,i,j} x[n,c, i*s-pad+p, j*s-pad+q] gy[n,o,i,j]`
//!
//! The input gradient of `conv2d` is a `conv_transpose2d` of the output gradient; the input
//! gradient of `conv_transpose2d` is a `conv2d`; both weight gradients are `conv2d_weight_grad`
//! (for the transposed convolution with the roles of input and output gradient swapped).
//!
//! Images are NCHW as written above, or NHWC when the spec says so ([`Layout`]): every kernel
//! works on NHWC copies internally, so an NHWC network saves the reordering at every layer.

use rayon::prelude::*;

use crate::gemm::kernels::Kernel;
use crate::{Element, Isa, Layout, Result, Tensor, TensorError};

mod direct;
mod geometry;
mod narrow;
mod packed;

use geometry::Geometry;

/// Drops the packed weight panels the forward and adjoint kernels keep between calls (see
/// [`crate::trim`]).
pub fn clear_packed_weights() {
    packed::clear();
}

/// Bytes of packed weight panels kept between calls (at most 4 MiB).
pub fn packed_weight_bytes() -> usize {
    packed::cached_bytes()
}

/// Stride and zero padding of a convolution, per spatial axis `[height, width]`, and the layout
/// of its input and output images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub layout: Layout,
}

/// Stride, padding and output padding of a transposed convolution, per axis `[height, width]`.
///
/// `output_padding` adds rows/columns at the bottom/right of the output so that the transposed
/// convolution can invert every input size of the forward convolution; it must be below the stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dSpec {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub output_padding: [usize; 2],
    pub layout: Layout,
}

impl Conv2dSpec {
    /// The same stride and padding on both axes, NCHW images.
    pub fn new(stride: usize, padding: usize) -> Self {
        Self {
            stride: [stride; 2],
            padding: [padding; 2],
            layout: Layout::Nchw,
        }
    }

    /// The same convolution on images in layout `layout`.
    pub fn in_layout(self, layout: Layout) -> Self {
        Self { layout, ..self }
    }

    /// Output size `(h + 2 pad - k) / s + 1` per axis, or why there is none.
    pub fn output_hw(
        &self,
        input_hw: [usize; 2],
        kernel_hw: [usize; 2],
    ) -> std::result::Result<[usize; 2], String> {
        let mut out = [0; 2];
        for a in 0..2 {
            let (h, k, s, p) = (input_hw[a], kernel_hw[a], self.stride[a], self.padding[a]);
            if s == 0 {
                return Err("stride must be at least 1".into());
            }
            if k == 0 {
                return Err("kernel size must be at least 1".into());
            }
            if h == 0 {
                return Err("input size must be at least 1".into());
            }
            if k > h + 2 * p {
                return Err(format!(
                    "kernel {k} is larger than the padded input {h} + 2*{p} on axis {a}"
                ));
            }
            out[a] = (h + 2 * p - k) / s + 1;
        }
        Ok(out)
    }
}

impl ConvTranspose2dSpec {
    /// The same stride, padding and output padding on both axes, NCHW images.
    pub fn new(stride: usize, padding: usize, output_padding: usize) -> Self {
        Self {
            stride: [stride; 2],
            padding: [padding; 2],
            output_padding: [output_padding; 2],
            layout: Layout::Nchw,
        }
    }

    /// The same transposed convolution on images in layout `layout`.
    pub fn in_layout(self, layout: Layout) -> Self {
        Self { layout, ..self }
    }

    /// The forward convolution this one is the adjoint of.
    pub fn forward(&self) -> Conv2dSpec {
        Conv2dSpec {
            stride: self.stride,
            padding: self.padding,
            layout: self.layout,
        }
    }

    /// Output size `(h - 1) s - 2 pad + k + output_padding` per axis, or why there is none.
    pub fn output_hw(
        &self,
        input_hw: [usize; 2],
        kernel_hw: [usize; 2],
    ) -> std::result::Result<[usize; 2], String> {
        let mut out = [0; 2];
        for a in 0..2 {
            let (h, k, s, p, op) = (
                input_hw[a],
                kernel_hw[a],
                self.stride[a],
                self.padding[a],
                self.output_padding[a],
            );
            if s == 0 {
                return Err("stride must be at least 1".into());
            }
            if k == 0 {
                return Err("kernel size must be at least 1".into());
            }
            if h == 0 {
                return Err("input size must be at least 1".into());
            }
            if op >= s {
                return Err(format!(
                    "output padding {op} must be below the stride {s} on axis {a}"
                ));
            }
            let full = (h - 1) * s + k + op;
            if full <= 2 * p {
                return Err(format!(
                    "padding {p} removes the whole output ({full} before padding) on axis {a}"
                ));
            }
            out[a] = full - 2 * p;
        }
        Ok(out)
    }
}

fn geometry_error<T: Element>(
    op: &'static str,
    x: &Tensor<T>,
    w: &Tensor<T>,
    reason: String,
) -> TensorError {
    TensorError::InvalidGeometry {
        op,
        input: x.shape().to_vec(),
        weight: w.shape().to_vec(),
        reason,
    }
}

fn check_bias<T: Element>(
    op: &'static str,
    bias: Option<&Tensor<T>>,
    channels: usize,
) -> Result<()> {
    match bias {
        Some(b) if b.shape() != [channels] => Err(TensorError::InvalidShape {
            op,
            shape: b.shape().to_vec(),
            expected: format!("bias of shape [{channels}]"),
        }),
        _ => Ok(()),
    }
}

/// Validated shapes of a convolution: input `[n, c, h, w]`, weight `[o, c, kh, kw]`, output `[n, o, ho, wo]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvShape {
    /// Multiply-adds of one forward pass (each kernel of the family costs the same).
    pub fn macs(&self) -> usize {
        self.n * self.o * self.ho * self.wo * self.c * self.kh * self.kw
    }
}

/// Checks `conv2d(x, w)` and returns its shapes.
pub fn conv2d_shape<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    spec: Conv2dSpec,
) -> Result<ConvShape> {
    const OP: &str = "conv2d";
    let [n, c, h, wd] = x.dims_in(OP, spec.layout)?;
    let [o, c2, kh, kw] = w.dims4(OP)?;
    if c != c2 {
        return Err(geometry_error(
            OP,
            x,
            w,
            format!("input has {c} channels, weight expects {c2}"),
        ));
    }
    let [ho, wo] = spec
        .output_hw([h, wd], [kh, kw])
        .map_err(|r| geometry_error(OP, x, w, r))?;
    Ok(ConvShape {
        n,
        c,
        h,
        w: wd,
        o,
        kh,
        kw,
        ho,
        wo,
    })
}

/// `y = conv2d(x, w) + b` on the detected SIMD path.
///
/// `x` is `[n, c, h, w]`, `w` is `[o, c, kh, kw]`, `b` is `[o]`; `y` is `[n, o, ho, wo]` (or
/// `x` and `y` NHWC, as `spec.layout` says).
pub fn conv2d<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    conv2d_on(Isa::detect(), x, w, b, spec)
}

/// [`conv2d`] on a named SIMD path.
pub fn conv2d_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    let s = conv2d_shape(x, w, spec)?;
    check_bias("conv2d", b, s.o)?;
    let isa = isa.checked()?;
    isa.record();
    let g = Geometry::new(s, spec);
    let mut y = Tensor::for_overwrite(&spec.layout.shape([s.n, s.o, s.ho, s.wo]));
    if !y.is_empty() {
        let b = b.map(Tensor::data);
        direct::forward(Kernel::for_isa(isa), &g, x.data(), w, b, y.data_mut());
    }
    Ok(y)
}

/// Checks `conv_transpose2d(x, w)` and returns the shapes of the forward convolution it is the
/// adjoint of (its input is this one's output, and vice versa).
pub fn conv_transpose2d_shape<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    spec: ConvTranspose2dSpec,
) -> Result<ConvShape> {
    const OP: &str = "conv_transpose2d";
    let [n, i, h, wd] = x.dims_in(OP, spec.layout)?;
    let [i2, o, kh, kw] = w.dims4(OP)?;
    if i != i2 {
        return Err(geometry_error(
            OP,
            x,
            w,
            format!("input has {i} channels, weight expects {i2}"),
        ));
    }
    let [ho, wo] = spec
        .output_hw([h, wd], [kh, kw])
        .map_err(|r| geometry_error(OP, x, w, r))?;
    // As the adjoint: the forward conv maps [n, o, ho, wo] to [n, i, h, w] with weight [i, o, kh, kw].
    Ok(ConvShape {
        n,
        c: o,
        h: ho,
        w: wo,
        o: i,
        kh,
        kw,
        ho: h,
        wo: wd,
    })
}

/// `y = conv_transpose2d(x, w) + b` with PyTorch semantics, on the detected SIMD path.
///
/// `x` is `[n, i, h, w]`, `w` is `[i, o, kh, kw]`, `b` is `[o]`; `y` is `[n, o, ho, wo]` with
/// `ho = (h - 1) s - 2 pad + kh + output_padding` (or `x` and `y` NHWC, as `spec.layout` says).
pub fn conv_transpose2d<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: ConvTranspose2dSpec,
) -> Result<Tensor<T>> {
    conv_transpose2d_on(Isa::detect(), x, w, b, spec)
}

/// [`conv_transpose2d`] on a named SIMD path.
pub fn conv_transpose2d_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: ConvTranspose2dSpec,
) -> Result<Tensor<T>> {
    let s = conv_transpose2d_shape(x, w, spec)?;
    check_bias("conv_transpose2d", b, s.c)?;
    let isa = isa.checked()?;
    isa.record();
    let g = Geometry::new(s, spec.forward());
    let mut y = Tensor::for_overwrite(&spec.layout.shape([s.n, s.c, s.h, s.w]));
    if !y.is_empty() {
        let b = b.map(Tensor::data);
        direct::adjoint(Kernel::for_isa(isa), &g, x.data(), w, b, y.data_mut());
    }
    Ok(y)
}

/// Weight gradient of `conv2d`: `dw[o,c,p,q] = sum_{n,i,j} x[n,c,i s-pad+p, j s-pad+q] gy[n,o,i,j]`.
///
/// `x` is `[n, c, h, w]`, `gy` is `[n, o, ho, wo]` and must be the output size of a convolution of
/// `x` with a `kernel_hw` kernel under `spec` (both NHWC if `spec.layout` says so); the result
/// is `[o, c, kh, kw]`. The sum over the
/// batch is taken in a fixed order, so the result does not depend on the thread count.
pub fn conv2d_weight_grad<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    conv2d_weight_grad_on(Isa::detect(), x, gy, kernel_hw, spec)
}

/// Checks `conv2d_weight_grad(x, gy)` and returns its shapes.
pub fn conv2d_weight_grad_shape<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<ConvShape> {
    const OP: &str = "conv2d_weight_grad";
    let [n, c, h, wd] = x.dims_in(OP, spec.layout)?;
    let [n2, o, ho, wo] = gy.dims_in(OP, spec.layout)?;
    let bad = |reason: String| TensorError::InvalidGeometry {
        op: OP,
        input: x.shape().to_vec(),
        weight: gy.shape().to_vec(),
        reason,
    };
    if n != n2 {
        return Err(bad(format!("batch sizes differ: {n} and {n2}")));
    }
    let out = spec.output_hw([h, wd], kernel_hw).map_err(bad)?;
    if out != [ho, wo] {
        return Err(bad(format!(
            "a {kernel_hw:?} kernel gives a {out:?} output, but the output gradient is {:?}",
            [ho, wo]
        )));
    }
    Ok(ConvShape {
        n,
        c,
        h,
        w: wd,
        o,
        kh: kernel_hw[0],
        kw: kernel_hw[1],
        ho,
        wo,
    })
}

/// [`conv2d_weight_grad`] on a named SIMD path.
pub fn conv2d_weight_grad_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    let WeightGradParts {
        g,
        kern,
        len,
        mut parts,
    } = weight_grad_parts(isa, x, gy, kernel_hw, spec, |s| {
        // A fixed partition of the batch (by shape only); partial sums added in chunk order.
        direct::weight_grad_chunk(s.n, s.ho * s.wo)
    })?;
    let s = g.s;
    let mut dw = Tensor::zeros(&[s.o, s.c, s.kh, s.kw]);
    if parts.is_empty() {
        return Ok(dw);
    }
    let (sum, rest) = parts.split_at_mut(len);
    // Every value adds its partials in chunk order, whichever thread takes its slice.
    const SLICE: usize = 4096;
    sum.par_chunks_mut(SLICE)
        .enumerate()
        .for_each(|(i, slice)| {
            for part in rest.chunks(len) {
                let part = &part[i * SLICE..][..slice.len()];
                for (a, &p) in slice.iter_mut().zip(part) {
                    *a += p;
                }
            }
        });
    direct::to_weight_layout(kern, &g, sum, dw.data_mut());
    crate::pool::recycle(parts);
    Ok(dw)
}

/// Checks the shapes of a weight gradient and the SIMD path (recording its use).
fn weight_grad_geometry<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<(Geometry, Isa)> {
    let s = conv2d_weight_grad_shape(x, gy, kernel_hw, spec)?;
    let isa = isa.checked()?;
    isa.record();
    let g = Geometry::new(s, spec);
    Ok((g, isa))
}

/// Per-chunk partial weight gradients, as the kernel `kern` left them.
struct WeightGradParts<T> {
    g: Geometry,
    kern: Kernel<T>,
    /// Values of one chunk's partial (see `direct::weight_grad_chunks` for its layout).
    len: usize,
    /// The partials in chunk order (empty when there is nothing to compute).
    parts: Vec<T>,
}

/// Checks the shapes, then runs the weight-gradient kernel over chunks of `chunk(shape)`
/// examples: one partial gradient per chunk.
fn weight_grad_parts<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
    chunk: impl Fn(&ConvShape) -> usize,
) -> Result<WeightGradParts<T>> {
    let (g, isa) = weight_grad_geometry(isa, x, gy, kernel_hw, spec)?;
    let kern = Kernel::for_isa(isa);
    let len = direct::weight_grad_part_len(kern, &g);
    let s = g.s;
    let parts = if s.o * s.c * s.kh * s.kw == 0 || s.n == 0 {
        Vec::new()
    } else {
        let nb = chunk(&s);
        // Every value is written by the kernel (each chunk's partial in whole).
        let mut parts = crate::pool::for_overwrite(s.n.div_ceil(nb) * len);
        direct::weight_grad_chunks(kern, &g, x.data(), gy.data(), nb, &mut parts);
        parts
    };
    Ok(WeightGradParts {
        g,
        kern,
        len,
        parts,
    })
}

/// Per-example weight gradients of `conv2d`:
/// `dw[n,o,c,p,q] = sum_{i,j} x[n,c,i s-pad+p, j s-pad+q] gy[n,o,i,j]`, shape `[n, o, c, kh, kw]`.
///
/// Slice `n` is the weight gradient of example `n` alone (a batch of one), before any sum over
/// the batch: what per-example gradient methods need.
pub fn conv2d_weight_grad_per_example<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    conv2d_weight_grad_per_example_on(Isa::detect(), x, gy, kernel_hw, spec)
}

/// [`conv2d_weight_grad_per_example`] on a named SIMD path.
pub fn conv2d_weight_grad_per_example_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    // One chunk per example: each partial is that example's own gradient.
    let WeightGradParts {
        g,
        kern,
        len,
        parts,
    } = weight_grad_parts(isa, x, gy, kernel_hw, spec, |_| 1)?;
    let s = g.s;
    let mut dw = Tensor::for_overwrite(&[s.n, s.o, s.c, s.kh, s.kw]);
    if !parts.is_empty() {
        let weights = s.o * s.c * s.kh * s.kw;
        for (part, out) in parts.chunks(len).zip(dw.data_mut().chunks_mut(weights)) {
            direct::to_weight_layout(kern, &g, part, out);
        }
    }
    crate::pool::recycle(parts);
    Ok(dw)
}

/// Squared norms of the per-example weight gradients of `conv2d`: `out[n] = |dw_n|^2` with
/// `dw_n` as in [`conv2d_weight_grad_per_example`], without forming the `[n, o, c, kh, kw]`
/// tensor (each example's gradient lives in a per-thread buffer, or, for few output positions
/// and many weights, the norm comes from the Gram matrices of the example's positions).
pub fn conv2d_weight_grad_sq_norms<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Vec<T>> {
    conv2d_weight_grad_sq_norms_on(Isa::detect(), x, gy, kernel_hw, spec)
}

/// [`conv2d_weight_grad_sq_norms`] on a named SIMD path.
pub fn conv2d_weight_grad_sq_norms_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Vec<T>> {
    let (g, isa) = weight_grad_geometry(isa, x, gy, kernel_hw, spec)?;
    let s = g.s;
    let mut out = vec![T::ZERO; s.n];
    if s.o * s.c * s.kh * s.kw > 0 && s.ho * s.wo > 0 {
        let kern = Kernel::for_isa(isa);
        direct::weight_grad_sq_norms(kern, &g, x.data(), gy.data(), &mut out, None);
    }
    Ok(out)
}

/// [`conv2d_weight_grad_sq_norms`] together with the dot products `<dw_n, r>` (`r` of the
/// weight's shape `[o, c, kh, kw]`) where they come at almost no cost: when each example's
/// gradient is formed for its norm, the dot product is one more pass over it. When the norms
/// come from the Gram matrices the dot products are `None` (form them another way, e.g. as
/// `<gy_n, conv2d(x_n, r)>`).
pub fn conv2d_weight_grad_sq_norms_and_dots<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
    r: &Tensor<T>,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    conv2d_weight_grad_sq_norms_and_dots_on(Isa::detect(), x, gy, kernel_hw, spec, r)
}

/// [`conv2d_weight_grad_sq_norms_and_dots`] on a named SIMD path.
pub fn conv2d_weight_grad_sq_norms_and_dots_on<T: Element>(
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
    r: &Tensor<T>,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    const OP: &str = "conv2d_weight_grad_sq_norms_and_dots";
    let (g, isa) = weight_grad_geometry(isa, x, gy, kernel_hw, spec)?;
    let s = g.s;
    let want = [s.o, s.c, s.kh, s.kw];
    if r.shape() != want {
        return Err(TensorError::InvalidGeometry {
            op: OP,
            input: x.shape().to_vec(),
            weight: r.shape().to_vec(),
            reason: format!(
                "the dot products need a {want:?} tensor, got {:?}",
                r.shape()
            ),
        });
    }
    let (mut norms, mut dots) = (vec![T::ZERO; s.n], vec![T::ZERO; s.n]);
    if s.o * s.c * s.kh * s.kw == 0 || s.ho * s.wo == 0 {
        return Ok((norms, Some(dots)));
    }
    let kern = Kernel::for_isa(isa);
    let (x, gy) = (x.data(), gy.data());
    let formed =
        direct::weight_grad_sq_norms(kern, &g, x, gy, &mut norms, Some((r.data(), &mut dots)));
    Ok((norms, formed.then_some(dots)))
}

/// Input gradient of `conv2d`: the transposed convolution of `gy` with `w`, sized back to
/// `input_hw` (the output padding is derived).
pub fn conv2d_input_grad<T: Element>(
    gy: &Tensor<T>,
    w: &Tensor<T>,
    input_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    conv2d_input_grad_on(Isa::detect(), gy, w, input_hw, spec)
}

/// [`conv2d_input_grad`] on a named SIMD path.
pub fn conv2d_input_grad_on<T: Element>(
    isa: Isa,
    gy: &Tensor<T>,
    w: &Tensor<T>,
    input_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<Tensor<T>> {
    const OP: &str = "conv2d_input_grad";
    let [n, o, ho, wo] = gy.dims_in(OP, spec.layout)?;
    let [o2, c, kh, kw] = w.dims4(OP)?;
    if o != o2 {
        return Err(geometry_error(
            OP,
            gy,
            w,
            format!("output gradient has {o} channels, weight has {o2} outputs"),
        ));
    }
    // Phrased as the adjoint of the forward convolution of an `input_hw` input, this is defined
    // even where no transposed-convolution spec describes it (an input seen only as padding).
    match spec.output_hw(input_hw, [kh, kw]) {
        Ok(out) if out == [ho, wo] => {}
        Ok(out) => {
            return Err(geometry_error(
                OP,
                gy,
                w,
                format!(
                    "an input of size {input_hw:?} gives a {out:?} output, but the output \
                     gradient is {:?}",
                    [ho, wo]
                ),
            ))
        }
        Err(reason) => return Err(geometry_error(OP, gy, w, reason)),
    }
    let isa = isa.checked()?;
    isa.record();
    let [h, wd] = input_hw;
    let s = ConvShape {
        n,
        c,
        h,
        w: wd,
        o,
        kh,
        kw,
        ho,
        wo,
    };
    let g = Geometry::new(s, spec);
    let mut gx = Tensor::for_overwrite(&spec.layout.shape([n, c, h, wd]));
    if !gx.is_empty() {
        direct::adjoint(Kernel::for_isa(isa), &g, gy.data(), w, None, gx.data_mut());
    }
    Ok(gx)
}

/// The transposed-convolution spec that maps a `conv2d` output gradient back to `input_hw`.
pub fn transpose_spec_for<T: Element>(
    gy: &Tensor<T>,
    w: &Tensor<T>,
    input_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Result<ConvTranspose2dSpec> {
    const OP: &str = "conv2d_input_grad";
    let [_, _, ho, wo] = gy.dims_in(OP, spec.layout)?;
    let [_, _, kh, kw] = w.dims4(OP)?;
    let mut output_padding = [0; 2];
    for (a, (g, k)) in [(ho, kh), (wo, kw)].into_iter().enumerate() {
        // Signed: with a large padding the span `(g - 1) s + k - 2 pad` is zero or negative and
        // the output padding alone restores the size.
        let span =
            (g.max(1) as i64 - 1) * spec.stride[a] as i64 + k as i64 - 2 * spec.padding[a] as i64;
        match usize::try_from(input_hw[a] as i64 - span) {
            Ok(op) if op < spec.stride[a] => output_padding[a] = op,
            _ => {
                return Err(geometry_error(
                    OP,
                    gy,
                    w,
                    format!(
                        "no output padding maps size {g} back to {} on axis {a}",
                        input_hw[a]
                    ),
                ))
            }
        }
    }
    Ok(ConvTranspose2dSpec {
        stride: spec.stride,
        padding: spec.padding,
        output_padding,
        layout: spec.layout,
    })
}
