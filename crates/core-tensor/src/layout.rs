//! Where the channel axis of a 4-D image batch sits.
//!
//! The convolutions and the per-channel maps take images in either order. `Nchw` is PyTorch's
//! order and the default; `Nhwc` keeps each pixel's channels together, which is the order the
//! convolution kernels work in, so a network whose activations stay `Nhwc` from layer to layer
//! skips the reordering copies at every layer boundary. Weights are `[o, c, kh, kw]` either way.

use rayon::prelude::*;

use crate::simd::{PAR_MAP_MIN, REDUCE_CHUNK};
use crate::{Element, Isa, Result, Tensor, TensorError};

/// The order of the axes of a 4-D image batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `[n, c, h, w]`: each channel a contiguous plane.
    #[default]
    Nchw,
    /// `[n, h, w, c]`: each pixel's channels contiguous.
    Nhwc,
}

impl Layout {
    /// `[n, c, h, w]` of a shape in this layout.
    pub fn to_nchw(self, [a, b, c, d]: [usize; 4]) -> [usize; 4] {
        match self {
            Layout::Nchw => [a, b, c, d],
            Layout::Nhwc => [a, d, b, c],
        }
    }

    /// The shape in this layout of an image batch of `[n, c, h, w]`.
    pub fn shape(self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        match self {
            Layout::Nchw => [n, c, h, w],
            Layout::Nhwc => [n, h, w, c],
        }
    }

    /// How this layout names its axes, for error messages.
    pub fn axes(self) -> &'static str {
        match self {
            Layout::Nchw => "(N, C, H, W)",
            Layout::Nhwc => "(N, H, W, C)",
        }
    }
}

impl<T: Element> Tensor<T> {
    /// `[n, c, h, w]` of a rank-4 tensor in layout `layout`, or an error naming `op`.
    pub fn dims_in(&self, op: &'static str, layout: Layout) -> Result<[usize; 4]> {
        match self.shape()[..] {
            [a, b, c, d] => Ok(layout.to_nchw([a, b, c, d])),
            _ => Err(TensorError::InvalidShape {
                op,
                shape: self.shape().to_vec(),
                expected: format!("rank 4 {}", layout.axes()),
            }),
        }
    }

    /// The same images in layout `to` (this tensor being in layout `from`).
    pub fn relayout(&self, from: Layout, to: Layout) -> Result<Self> {
        let dims = self.dims_in("relayout", from)?;
        let [_, c, h, w] = dims;
        let plane = h * w;
        // With one channel or one pixel both layouts hold the values in the same order.
        if from == to || c == 1 || plane == 1 {
            let mut out = Tensor::for_overwrite(&to.shape(dims));
            out.data_mut().copy_from_slice(self.data());
            return Ok(out);
        }
        let mut out = Tensor::for_overwrite(&to.shape(dims));
        let isa = Isa::detect();
        // One example: a `c x hw` matrix to `hw x c`, or back.
        let (rows, cols) = if from == Layout::Nchw {
            (c, plane)
        } else {
            (plane, c)
        };
        let example = |(src, dst): (&[T], &mut [T])| {
            crate::transpose::transpose(isa, src, cols, dst, rows, rows, cols);
        };
        let (src, dst, len) = (self.data(), out.data_mut(), (c * plane).max(1));
        if dst.len() >= PAR_MAP_MIN / 4 {
            src.par_chunks_exact(len)
                .zip(dst.par_chunks_exact_mut(len))
                .for_each(example);
        } else {
            src.chunks_exact(len)
                .zip(dst.chunks_exact_mut(len))
                .for_each(example);
        }
        Ok(out)
    }

    /// Sum over N, H and W: shape `[C]` (a bias gradient).
    pub fn sum_per_channel(&self, layout: Layout) -> Result<Self> {
        let [n, c, h, w] = self.dims_in("sum_per_channel", layout)?;
        let isa = Isa::detect();
        let plane = h * w;
        let mut out = vec![T::ZERO; c];
        // One channel: the same values in the same order either way; summed as one plane each.
        let layout = if c == 1 { Layout::Nchw } else { layout };
        match layout {
            Layout::Nchw => {
                for img in 0..n {
                    for (ch, o) in out.iter_mut().enumerate() {
                        let start = (img * c + ch) * plane;
                        *o += T::sum_slice(isa, &self.data()[start..start + plane]);
                    }
                }
            }
            Layout::Nhwc if c > 0 => {
                // Fixed runs of whole pixels, each summed in order, the runs' sums added in
                // order: the same additions whatever the thread count.
                let run = REDUCE_CHUNK.div_ceil(c) * c;
                let sum_run = |values: &[T]| {
                    let mut acc = vec![T::ZERO; c];
                    for pixel in values.chunks_exact(c) {
                        for (a, &v) in acc.iter_mut().zip(pixel) {
                            *a += v;
                        }
                    }
                    acc
                };
                let runs: Vec<Vec<T>> = if self.len() >= PAR_MAP_MIN {
                    self.data().par_chunks(run).map(sum_run).collect()
                } else {
                    self.data().chunks(run).map(sum_run).collect()
                };
                for partial in runs {
                    for (o, p) in out.iter_mut().zip(partial) {
                        *o += p;
                    }
                }
            }
            Layout::Nhwc => {}
        }
        Self::from_vec(out, &[c])
    }

    /// Adds `bias[c]` to every value of channel `c`, in place.
    pub fn add_per_channel(&mut self, bias: &Self, layout: Layout) -> Result<()> {
        let [_, c, h, w] = self.dims_in("add_per_channel", layout)?;
        if bias.shape() != [c] {
            return Err(TensorError::ShapeMismatch {
                op: "add_per_channel",
                lhs: self.shape().to_vec(),
                rhs: bias.shape().to_vec(),
            });
        }
        let plane = h * w;
        if plane * c == 0 {
            return Ok(());
        }
        match layout {
            Layout::Nchw => {
                for (i, chunk) in self.data_mut().chunks_mut(plane).enumerate() {
                    let b = bias.data()[i % c];
                    for v in chunk {
                        *v += b;
                    }
                }
            }
            Layout::Nhwc => {
                for pixel in self.data_mut().chunks_exact_mut(c) {
                    for (v, &b) in pixel.iter_mut().zip(bias.data()) {
                        *v += b;
                    }
                }
            }
        }
        Ok(())
    }
}
