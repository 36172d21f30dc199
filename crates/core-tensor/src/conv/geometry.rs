//! The geometry of a convolution and the padded NHWC image copies its kernels read.
//!
//! [`Geometry`] holds the shapes, stride, padding and outer layout of the forward map
//! `[n, c, h, w] -> [n, o, ho, wo]` that every kernel of the family is phrased in, with the
//! offsets of kernel taps and output positions in a zero-padded NHWC image, and the copies of
//! images (in either layout) into such padded or margined NHWC buffers.

use crate::conv::ConvShape;
use crate::transpose::transpose;
use crate::{Element, Isa, Layout};

/// A convolution's shapes with its stride and padding: the forward map
/// `[n, c, h, w] -> [n, o, ho, wo]` that all three kernels are phrased in.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub s: ConvShape,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    /// Layout of the images outside the kernels (inputs, outputs and their gradients).
    pub layout: Layout,
}

impl Geometry {
    /// The geometry of the convolution with shapes `s` under `spec`.
    pub(super) fn new(s: ConvShape, spec: super::Conv2dSpec) -> Self {
        Self {
            s,
            stride: spec.stride,
            padding: spec.padding,
            layout: spec.layout,
        }
    }
    pub(super) fn hp(&self) -> usize {
        self.s.h + 2 * self.padding[0]
    }
    pub(super) fn wp(&self) -> usize {
        self.s.w + 2 * self.padding[1]
    }
    pub(super) fn taps(&self) -> usize {
        self.s.kh * self.s.kw
    }
    /// Values of one padded NHWC image.
    pub(super) fn padded_len(&self) -> usize {
        self.hp() * self.wp() * self.s.c
    }
    pub(super) fn positions(&self) -> usize {
        self.s.ho * self.s.wo
    }
    /// Offset in a padded NHWC image of kernel tap `tap = p kw + q` from the top-left pixel.
    pub(super) fn tap_offset(&self, tap: usize) -> usize {
        ((tap / self.s.kw) * self.wp() + tap % self.s.kw) * self.s.c
    }
    /// Offset of column `q = tap c + channel` of the im2col matrix (needs `c > 0`).
    pub(super) fn column_offset(&self, q: usize) -> usize {
        self.tap_offset(q / self.s.c) + q % self.s.c
    }
    /// Offset of the top-left input pixel of output position `pos` of example `e`.
    pub(super) fn row_base(&self, e: usize, pos: usize) -> usize {
        let (i, j) = (pos / self.s.wo, pos % self.s.wo);
        e * self.padded_len() + (i * self.stride[0] * self.wp() + j * self.stride[1]) * self.s.c
    }
    /// Kernel taps per output phase along each axis, `[kh / sh, kw / sw]` (the adjoint by
    /// phase needs the extents to be multiples of the strides).
    pub(super) fn phase_taps(&self) -> [usize; 2] {
        [self.s.kh / self.stride[0], self.s.kw / self.stride[1]]
    }
    /// Height and width of the output gradient copied with `taps - 1` zero rows (columns)
    /// before it and enough after it for the window of the adjoint's last output pixel.
    pub(super) fn margined_gy_hw(&self) -> [usize; 2] {
        let [ah, aw] = self.phase_taps();
        let ([sh, sw], [ph, pw]) = (self.stride, self.padding);
        [
            ah - 1 + self.s.ho.max((self.s.h - 1 + ph) / sh + 1),
            aw - 1 + self.s.wo.max((self.s.w - 1 + pw) / sw + 1),
        ]
    }
    /// Top-left pixel of every position of `nb` examples, relative to the first image.
    pub(super) fn position_bases(&self, nb: usize) -> Vec<usize> {
        let pos = self.positions();
        (0..nb * pos)
            .map(|p| self.row_base(p / pos, p % pos))
            .collect()
    }
    /// Copies `ne` output gradients (in the geometry's layout) into NHWC with the margins the
    /// phased adjoint reads: `ah - 1` zero rows above and `aw - 1` zero pixels before each row,
    /// zeros after, [`Geometry::margined_gy_hw`] in all.
    pub(super) fn margin_gy_nhwc<T: Element>(&self, isa: Isa, gy: &[T], ne: usize, out: &mut [T]) {
        let ConvShape { o, ho, wo, .. } = self.s;
        let [ah, aw] = self.phase_taps();
        let images = [o, ho, wo];
        copy_margined(
            isa,
            self.layout,
            gy,
            images,
            ne,
            [ah - 1, aw - 1],
            self.margined_gy_hw(),
            out,
        );
    }

    /// Copies `ne` images (in the geometry's layout) into zero-padded NHWC.
    pub(super) fn pad_nhwc<T: Element>(&self, isa: Isa, x: &[T], ne: usize, out: &mut [T]) {
        let images = [self.s.c, self.s.h, self.s.w];
        let size = [self.hp(), self.wp()];
        copy_margined(isa, self.layout, x, images, ne, self.padding, size, out);
    }
}

/// Copies `ne` images of `[c, h, w]` (`src` in `layout`) into NHWC images of `size` pixels,
/// each placed `before` rows and columns from the top-left corner. Only the margins are
/// zeroed: the rows above and below, and the pixels either side of each image row.
#[allow(clippy::too_many_arguments)]
fn copy_margined<T: Element>(
    isa: Isa,
    layout: Layout,
    src: &[T],
    [c, h, w]: [usize; 3],
    ne: usize,
    before: [usize; 2],
    size: [usize; 2],
    out: &mut [T],
) {
    let len = size[0] * size[1] * c;
    if len == 0 {
        return;
    }
    let row_len = size[1] * c;
    for (e, img) in out.chunks_exact_mut(len).take(ne).enumerate() {
        let src = &src[e * c * h * w..][..c * h * w];
        let (top, rows) = img.split_at_mut(before[0] * row_len);
        top.fill(T::ZERO);
        rows[h * row_len..].fill(T::ZERO);
        for (y, row) in rows.chunks_exact_mut(row_len).take(h).enumerate() {
            let (left, rest) = row.split_at_mut(before[1] * c);
            let (dst, right) = rest.split_at_mut(w * c);
            left.fill(T::ZERO);
            right.fill(T::ZERO);
            match layout {
                // Image row y is a `c x w` block (stride h w) transposed into `w x c` pixels.
                Layout::Nchw => transpose(isa, &src[y * w..], h * w, dst, c, c, w),
                Layout::Nhwc => dst.copy_from_slice(&src[y * w * c..][..w * c]),
            }
        }
    }
}
