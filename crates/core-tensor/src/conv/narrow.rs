//! The adjoint (transposed convolution, input gradient) for outputs of a few channels, such as
//! an autoencoder's last layer back to 1 or 3 image channels.
//!
//! The tile kernels vectorise over output channels, which a one- or three-channel output cannot
//! fill. Here the vectors run over the pixels of an output plane instead (NCHW planes, the
//! gradient copied into them from either layout, the output written back in its layout). For output row `Y` (and likewise along `X`), kernel rows
//! `p = (Y + pad) mod s + s a` meet output-gradient rows `(Y + pad) div s - a`, `a < kh / s`.
//! So the pixels of one phase `((Y + pad) mod s, (X + pad) mod s)` of an output plane form a
//! small image that is a sum of `(kh / s) (kw / s) o` scaled, shifted copies of the gradient
//! planes; with the planes copied into zero-margined rows of a common width, each copy is one
//! contiguous run, and the whole sum is one [`Element::shifted_sum`].

use rayon::prelude::*;

use super::geometry::Geometry;
use crate::conv::ConvShape;
use crate::pool::with_scratch;
use crate::transpose::transpose;
use crate::{Element, Isa, Layout};

/// Whether [`adjoint`] applies: kernel extents multiples of the stride.
pub(super) fn applies(g: &Geometry) -> bool {
    g.s.kh.is_multiple_of(g.stride[0]) && g.s.kw.is_multiple_of(g.stride[1])
}

/// `gx = conv2d_input_grad(gy, w) + b[c]`, images in the geometry's layout (the kernel extents
/// must be multiples of the stride, see [`applies`]).
pub(super) fn adjoint<T: Element>(
    isa: Isa,
    g: &Geometry,
    gy: &[T],
    w: &[T],
    bias: Option<&[T]>,
    gx: &mut [T],
) {
    let ConvShape {
        c,
        h,
        o,
        kh,
        kw,
        ho,
        wo,
        ..
    } = g.s;
    let wd = g.s.w;
    let ([sh, sw], [ph, pw]) = (g.stride, g.padding);
    // Gradient planes with `ah - 1` zero rows above, `aw - 1` zero columns before, and enough
    // after for the last pixel's window.
    let ([ah, aw], [gh, gwp]) = (g.phase_taps(), g.margined_gy_hw());
    let (lead_r, lead_c) = (ah - 1, aw - 1);
    let plane = gh * gwp;
    // Each phase: first pixel and number of pixels along each axis.
    let first = |n: usize, pad: usize, s: usize, r: usize| {
        let x0 = (0..n).find(|x| (x + pad) % s == r)?;
        Some((x0, (n - x0).div_ceil(s)))
    };
    let phases: Vec<[(usize, usize); 2]> = (0..sh)
        .filter_map(|ry| first(h, ph, sh, ry))
        .flat_map(|y| (0..sw).filter_map(move |rx| Some([y, first(wd, pw, sw, rx)?])))
        .collect();
    let longest = phases
        .iter()
        .map(|[(_, ny), (_, nx)]| (ny - 1) * gwp + nx)
        .max()
        .unwrap_or(0);
    // Per phase, the terms' shifts into the planes and their weights, `c` per term (one for each
    // output channel): the same for every example.
    let terms: Vec<(Vec<usize>, Vec<T>)> = phases
        .iter()
        .map(|&[(y0, _), (x0, _)]| {
            let (ry, iy0) = ((y0 + ph) % sh, (y0 + ph) / sh);
            let (rx, jx0) = ((x0 + pw) % sw, (x0 + pw) / sw);
            let (mut offsets, mut weights) = (Vec::new(), Vec::new());
            for a in 0..ah {
                for b in 0..aw {
                    let (p, q) = (ry + sh * a, rx + sw * b);
                    // acc[k] is the phase pixel at row k div gwp, column k mod gwp - start,
                    // with start = lead_c + jx0.
                    let shift = (iy0 + lead_r - a) * gwp + lead_c + jx0 - b;
                    for oc in 0..o {
                        offsets.push(oc * plane + shift);
                        weights.extend((0..c).map(|ch| w[((oc * c + ch) * kh + p) * kw + q]));
                    }
                }
            }
            (offsets, weights)
        })
        .collect();
    gx.par_chunks_mut(c * h * wd)
        .zip(gy.par_chunks(o * ho * wo))
        .for_each(|(gxe, gye)| {
            with_scratch::<T, _>(o * plane + c * longest, |buf| {
                let (planes, acc) = buf.split_at_mut(o * plane);
                // One pass of zeros: the margins are a value or two per row, too short to zero
                // one by one.
                planes.fill(T::ZERO);
                match g.layout {
                    Layout::Nchw => {
                        for (dst, src) in planes
                            .chunks_exact_mut(plane)
                            .zip(gye.chunks_exact(ho * wo))
                        {
                            for (i, row) in src.chunks_exact(wo).enumerate() {
                                dst[(lead_r + i) * gwp + lead_c..][..wo].copy_from_slice(row);
                            }
                        }
                    }
                    // Row i's `wo x o` pixels transposed into row i of every plane.
                    Layout::Nhwc => {
                        for (i, row) in gye.chunks_exact(wo * o).enumerate() {
                            let dst = &mut planes[(lead_r + i) * gwp + lead_c..];
                            transpose(isa, row, o, dst, plane, wo, o);
                        }
                    }
                }
                for (&[(y0, ny), (x0, nx)], (offsets, weights)) in phases.iter().zip(&terms) {
                    // One row of `len` values per output channel, all summed in one call.
                    let len = (ny - 1) * gwp + nx;
                    let acc = &mut acc[..c * len];
                    for (ch, row) in acc.chunks_exact_mut(len).enumerate() {
                        row.fill(bias.map_or(T::ZERO, |b| b[ch]));
                    }
                    T::shifted_sum(isa, offsets, weights, planes, acc);
                    // Pixel (Y, X) of channel ch is at (ch h + Y) w + X in NCHW, (Y w + X) c + ch
                    // in NHWC.
                    let (plane_step, pixel_step) = match g.layout {
                        Layout::Nchw => (h * wd, 1),
                        Layout::Nhwc => (1, c),
                    };
                    for (ch, row) in acc.chunks_exact(len).enumerate() {
                        for u in 0..ny {
                            let first = ch * plane_step + ((y0 + sh * u) * wd + x0) * pixel_step;
                            let dst = gxe[first..].iter_mut().step_by(sw * pixel_step);
                            for (d, &v) in dst.zip(&row[u * gwp..][..nx]) {
                                *d = v;
                            }
                        }
                    }
                }
            });
        });
}
