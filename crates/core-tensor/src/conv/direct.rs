//! The three convolution kernels as indirect GEMMs on NHWC copies of the images.
//!
//! Each chunk of examples copies its images into a zero-padded NHWC scratch buffer
//! (`[e][y + pad][x + pad][channel]`). In that layout the im2col row of output position
//! `(i, j)` at kernel tap `(p, q)` is the contiguous channel vector at
//! `(i s + p, j s + q)`, so the microkernel reads it in place ([`TileArgs`] row pointers plus
//! per-tap offsets) and no im2col matrix is built:
//! - forward: `y[pos, o] = sum_{tap, c} xpad[pos + tap, c] w[o, c, tap]` (rows = positions);
//! - adjoint (input gradient, transposed convolution), where the kernel extents are multiples
//!   of the stride: by output phase, `s x s` stride-1 convolutions of a zero-margined NHWC copy
//!   of `gy` with slices of the kernel, each output value written once ([`adjoint_phased`]);
//!   otherwise `xpad[pos + tap, c] += sum_o gy[pos, o] w[o, c, tap]`, the tile's columns being
//!   `(tap, c)` pairs scattered back (col2im) as contiguous channel runs;
//! - weight gradient, transposed: `dw[(tap, c), o] = sum_pos xpad[pos + tap, c] gy[pos, o]`,
//!   the rows im2col columns read in place (the reduction runs over output rows as taps, along
//!   a row with step `s c`), the columns output channels of a `[position][o]` copy of `gy`,
//!   reduced over the positions of the chunk (per-chunk partial sums are added in chunk order
//!   by the caller).
//!
//! The images outside are NCHW or NHWC ([`Layout`]). From NCHW each image is transposed into
//! and out of the scratch layout; from NHWC these are row copies, or none at all where a GEMM
//! can write its `[position][channel]` rows straight into the output.
//!
//! Chunks are fixed by the shapes alone ([`batch_chunk`], [`weight_grad_chunk`]), never by the
//! thread count. And an example's values do not depend on the other examples of the batch:
//! a tile row is one output position's own sum, whichever tile holds it, and the tiles that
//! add into shared pixels (the scatter adjoint) hold positions of one example only, from its
//! first, so each pixel's terms are added in an order the example alone fixes. The batch's
//! sum in the weight gradient is the one exception, by definition (its per-example forms work
//! one example at a time).

use rayon::prelude::*;

use super::geometry::Geometry;
use super::packed::{with_packed, PackKey, Packing};
use crate::conv::ConvShape;
use crate::gemm::kernels::{Kernel, TileArgs, MAX_TILE};
use crate::pool::with_scratch;
use crate::transpose::transpose;
use crate::{Element, Isa, Layout, Tensor};

/// Output positions a chunk of examples should hold at least (enough rows for the tiles): small
/// chunks, so that a worker thread that wakes late still finds work to take.
const CHUNK_POSITIONS: usize = 64;
/// The same for the weight gradient, whose chunks each cost a partial sum of the whole gradient.
const WEIGHT_GRAD_CHUNK_POSITIONS: usize = 256;

/// Adds `bias[c]` to plane `c` of one NCHW example (`plane` values per channel).
fn add_bias<T: Element>(example: &mut [T], plane: usize, bias: Option<&[T]>) {
    if let (Some(b), true) = (bias, plane > 0) {
        for (values, &bv) in example.chunks_mut(plane).zip(b) {
            for v in values {
                *v += bv;
            }
        }
    }
}

/// Adds `bias` to every pixel (`bias.len()` channels) of NHWC images.
fn add_bias_nhwc<T: Element>(images: &mut [T], bias: Option<&[T]>) {
    if let Some(b) = bias.filter(|b| !b.is_empty()) {
        for pixel in images.chunks_exact_mut(b.len()) {
            for (v, &bv) in pixel.iter_mut().zip(b) {
                *v += bv;
            }
        }
    }
}

/// Writes examples held as `[pixel][stride]` rows (`pixels` rows per example, the first `ch`
/// values of each row) into `out` as images in `layout`, adding `bias[channel]`.
#[allow(clippy::too_many_arguments)]
fn store_pixels<T: Element>(
    isa: Isa,
    layout: Layout,
    src: &[T],
    stride: usize,
    pixels: usize,
    ch: usize,
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let len = pixels * ch;
    if len == 0 {
        return;
    }
    for (e, oe) in out.chunks_exact_mut(len).enumerate() {
        let se = &src[e * pixels * stride..];
        match layout {
            Layout::Nchw => {
                transpose(isa, se, stride, oe, pixels, pixels, ch);
                add_bias(oe, pixels, bias);
            }
            Layout::Nhwc => {
                for (p, row) in oe.chunks_exact_mut(ch).enumerate() {
                    row.copy_from_slice(&se[p * stride..][..ch]);
                }
                add_bias_nhwc(oe, bias);
            }
        }
    }
}

/// Examples per chunk of the forward and adjoint kernels: enough positions for full tiles, at
/// least eight chunks per batch.
pub(super) fn batch_chunk(n: usize, positions: usize) -> usize {
    CHUNK_POSITIONS
        .div_ceil(positions.max(1))
        .clamp(1, (n / 8).max(1))
}

/// Examples per chunk of the weight gradient: at least four chunks per batch.
pub(super) fn weight_grad_chunk(n: usize, positions: usize) -> usize {
    WEIGHT_GRAD_CHUNK_POSITIONS
        .div_ceil(positions.max(1))
        .clamp(1, (n / 4).max(1))
}

/// Packs `w[o][c][tap]` into `NR`-column panels of the `(tap, c) x o` matrix.
fn pack_forward_weights<T: Element>(g: &Geometry, nr: usize, w: &[T], out: &mut [T]) {
    let (o, c, taps) = (g.s.o, g.s.c, g.taps());
    let kdim = taps * c;
    if kdim == 0 {
        return;
    }
    for (jp, panel) in out.chunks_mut(kdim * nr).enumerate() {
        for tap in 0..taps {
            for ch in 0..c {
                let row = &mut panel[(tap * c + ch) * nr..][..nr];
                for (jj, v) in row.iter_mut().enumerate() {
                    let oc = jp * nr + jj;
                    *v = if oc < o {
                        w[(oc * c + ch) * taps + tap]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// `y = conv2d(x, w) + b`, images in the geometry's layout, on kernel `kern`.
pub(super) fn forward<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    x: &[T],
    w: &Tensor<T>,
    bias: Option<&[T]>,
    y: &mut [T],
) {
    let ConvShape { n, c, h, o, .. } = g.s;
    let (mr, nr) = (kern.mr, kern.nr);
    let (pos, taps) = (g.positions(), g.taps());
    let panels = o.div_ceil(nr);
    // In NHWC the `kw c` values of one kernel row are contiguous: one tap per kernel row.
    let row_offsets: Vec<isize> = (0..g.s.kh)
        .map(|p| g.tap_offset(p * g.s.kw) as isize)
        .collect();
    let nb = batch_chunk(n, pos);
    let bases = g.position_bases(nb);
    let key = PackKey::new(w, Packing::Forward, nr, [o, c, g.s.kh, g.s.kw, 0, 0, 0, 0]);
    let pack = |out: &mut [T]| pack_forward_weights(g, nr, w.data(), out);
    with_packed(Some(key), panels * taps * c * nr, pack, |wpack| {
        y.par_chunks_mut(nb * o * pos)
            .enumerate()
            .for_each(|(chunk, yc)| {
                let ne = yc.len() / (o * pos);
                let total = ne * pos;
                let xc = &x[chunk * nb * c * h * g.s.w..][..ne * c * h * g.s.w];
                let o_pad = panels * nr;
                // NHWC with whole panels: the tiles are stored straight into the output.
                let in_place = g.layout == Layout::Nhwc && o == o_pad;
                let scratch = if in_place { 0 } else { total * o_pad };
                with_scratch::<T, _>(ne * g.padded_len() + scratch, |buf| {
                    let (xpad, scratch) = buf.split_at_mut(ne * g.padded_len());
                    g.pad_nhwc(kern.isa, xc, ne, xpad);
                    let ypos: &mut [T] = if in_place { &mut *yc } else { scratch };
                    let mut tile = [T::ZERO; MAX_TILE];
                    let tp = tile.as_mut_ptr();
                    for p0 in (0..total).step_by(mr) {
                        let valid = mr.min(total - p0);
                        let rows = std::array::from_fn(|i| {
                            xpad.as_ptr().wrapping_add(bases[(p0 + i).min(total - 1)])
                        });
                        for jp in 0..panels {
                            let first = ypos[p0 * o_pad + jp * nr..].as_mut_ptr();
                            let args = TileArgs {
                                rows,
                                taps: &row_offsets,
                                kc: g.s.kw * c,
                                a_step: 1,
                                b: wpack[jp * taps * c * nr..].as_ptr(),
                                b_step: nr,
                                out: kern.out_rows(first, o_pad, valid, tp),
                                accumulate: false,
                                site: crate::flops::Site::ConvForward,
                            };
                            // SAFETY: every row points at a position's top-left pixel in `xpad`,
                            // and `row + kernel-row offset + (q c + channel)` stays inside that
                            // padded image (the output size guarantees `i s + p < h + 2 pad` and
                            // `j s + q < w + 2 pad`); the panel holds
                            // `taps c` rows of `nr` values; output row i is the `nr` values of
                            // panel jp in row `p0 + i` of the `total x o_pad` matrix `ypos`
                            // (or the tile buffer); the caller checked the ISA.
                            unsafe { kern.run(&args) };
                        }
                    }
                    // ypos is [position][o_pad]: to the output's layout, adding the bias.
                    if in_place {
                        add_bias_nhwc(yc, bias);
                    } else {
                        store_pixels(kern.isa, g.layout, scratch, o_pad, pos, o, bias, yc);
                    }
                });
            });
    });
}

/// The adjoint of [`forward`] in `x`: `gx = conv2d_input_grad(gy, w) + b[c]`, images in the
/// geometry's layout.
///
/// Where every kernel extent is a multiple of its stride, as [`adjoint_phased`] (a gather, each
/// output value written once) when the output has channels enough to fill half a tile, else
/// along output rows (`narrow::adjoint`); otherwise as [`adjoint_scatter`].
pub(super) fn adjoint<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    gy: &[T],
    w: &Tensor<T>,
    bias: Option<&[T]>,
    gx: &mut [T],
) {
    if !super::narrow::applies(g) {
        adjoint_scatter(kern, g, gy, w.data(), bias, gx);
    } else if 2 * g.s.c >= kern.nr {
        adjoint_phased(kern, g, gy, w, bias, gx);
    } else {
        super::narrow::adjoint(kern.isa, g, gy, w.data(), bias, gx);
    }
}

/// The adjoint by output phase. Output pixel `Y` (and likewise `X`) receives kernel rows
/// `p = (Y + pad) mod s + s a`, `a < kh / s`, from output-gradient rows `(Y + pad) div s - a`:
/// for each of the `s x s` phases, an ordinary stride-1 convolution of the output gradient
/// with a `kh/s x kw/s` slice of the kernel. Each phase runs as the forward kernel does, rows
/// pointing into a zero-margined NHWC copy of `gy`, with `(kh/s) (kw/s) o` reduction steps
/// (not `o`) and every output value written once (no col2im accumulation).
fn adjoint_phased<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    gy: &[T],
    w: &Tensor<T>,
    bias: Option<&[T]>,
    gx: &mut [T],
) {
    let ConvShape {
        n,
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
    let ([ah, aw], [gh, gw]) = (g.phase_taps(), g.margined_gy_hw());
    let glen = gh * gw * o;
    let (mr, nr) = (kern.mr, kern.nr);
    let panels = c.div_ceil(nr);
    let c_pad = panels * nr;
    let kdim = ah * aw * o;
    let pixels = h * wd;
    // Per phase `(ry, rx)`: its output pixels and the offset of each one's window in the copy.
    // The window's top-left gradient row is `(Y + pad) div s - (ah - 1)`, which is row
    // `(Y + pad) div s` of the margined copy.
    let phases: Vec<Vec<(usize, usize)>> = (0..sh * sw)
        .map(|phase| {
            let (ry, rx) = (phase / sw, phase % sw);
            let mut list = Vec::new();
            for y in (0..h).filter(|y| (y + ph) % sh == ry) {
                for x in (0..wd).filter(|x| (x + pw) % sw == rx) {
                    list.push((y * wd + x, ((y + ph) / sh * gw + (x + pw) / sw) * o));
                }
            }
            list
        })
        .collect();
    let taps: Vec<isize> = (0..ah).map(|a| (a * gw * o) as isize).collect();
    let nb = batch_chunk(n, pixels);
    let key = PackKey::new(w, Packing::Phased, nr, [o, c, kh, kw, sh, sw, ph, pw]);
    let w = w.data();
    let pack = |wpack: &mut [T]| {
        // Phase `(ry, rx)`, panel `jp`: row `(a', b', oc)` holds, for the panel's output
        // channels, `w[oc][channel][ry + sh (ah - 1 - a')][rx + sw (aw - 1 - b')]` (window row
        // `a'` is gradient row `top + a'`, so kernel step `a = ah - 1 - a'`).
        for (phase, panel) in wpack.chunks_mut(panels * kdim * nr).enumerate() {
            let (ry, rx) = (phase / sw, phase % sw);
            for (jp, block) in panel.chunks_mut(kdim * nr).enumerate() {
                for (r, row) in block.chunks_mut(nr).enumerate() {
                    let (a, b, oc) = (r / (aw * o), r / o % aw, r % o);
                    let (p, q) = (ry + sh * (ah - 1 - a), rx + sw * (aw - 1 - b));
                    for (jj, v) in row.iter_mut().enumerate() {
                        let ch = jp * nr + jj;
                        *v = if ch < c {
                            w[((oc * c + ch) * kh + p) * kw + q]
                        } else {
                            T::ZERO
                        };
                    }
                }
            }
        }
    };
    with_packed(Some(key), sh * sw * panels * kdim * nr, pack, |wpack| {
        gx.par_chunks_mut(nb * c * pixels)
            .enumerate()
            .for_each(|(chunk, gxc)| {
                let ne = gxc.len() / (c * pixels);
                let gyc = &gy[chunk * nb * o * ho * wo..][..ne * o * ho * wo];
                // NHWC with whole panels: the tiles are stored straight into the output.
                let in_place = g.layout == Layout::Nhwc && c == c_pad;
                let scratch = if in_place { 0 } else { ne * pixels * c_pad };
                with_scratch::<T, _>(ne * glen + scratch, |buf| {
                    let (gpad, scratch) = buf.split_at_mut(ne * glen);
                    g.margin_gy_nhwc(kern.isa, gyc, ne, gpad);
                    let ypos: &mut [T] = if in_place { &mut *gxc } else { scratch };
                    let mut tile = [T::ZERO; MAX_TILE];
                    let tp = tile.as_mut_ptr();
                    for (phase, list) in phases.iter().enumerate() {
                        let total = ne * list.len();
                        for p0 in (0..total).step_by(mr) {
                            let valid = mr.min(total - p0);
                            // (example, pixel index, window offset) of each tile row.
                            let at = |i: usize| {
                                let idx = (p0 + i).min(total - 1);
                                let (e, k) = (idx / list.len(), idx % list.len());
                                (e, list[k].0, e * glen + list[k].1)
                            };
                            let rows = std::array::from_fn(|i| gpad.as_ptr().wrapping_add(at(i).2));
                            for jp in 0..panels {
                                let yp = ypos.as_mut_ptr();
                                let out = std::array::from_fn(|i| {
                                    if i < valid {
                                        let (e, pix, _) = at(i);
                                        yp.wrapping_add((e * pixels + pix) * c_pad + jp * nr)
                                    } else {
                                        tp
                                    }
                                });
                                let args = TileArgs {
                                    rows,
                                    taps: &taps,
                                    kc: aw * o,
                                    a_step: 1,
                                    b: wpack[(phase * panels + jp) * kdim * nr..].as_ptr(),
                                    b_step: nr,
                                    out,
                                    accumulate: false,
                                    site: crate::flops::Site::ConvPhased,
                                };
                                // SAFETY: each row points at a window's top-left value in `gpad`;
                                // its `ah` rows of `aw o` values lie inside the example's margined
                                // copy (`gh`, `gw` cover the last pixel's window); the panel holds
                                // `kdim` rows of `nr` values; output row i is the `nr` values of
                                // panel jp at a distinct pixel of `ypos` (pixels of one phase are
                                // distinct) or the tile buffer; the caller checked the ISA.
                                unsafe { kern.run(&args) };
                            }
                        }
                    }
                    // ypos is [pixel][c_pad]: to the output's layout, adding the bias.
                    if in_place {
                        add_bias_nhwc(gxc, bias);
                    } else {
                        store_pixels(kern.isa, g.layout, scratch, c_pad, pixels, c, bias, gxc);
                    }
                });
            });
    });
}

/// The adjoint as a GEMM over output-gradient positions whose columns, `(tap, channel)` pairs,
/// are added back into a padded NHWC image (col2im).
fn adjoint_scatter<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    gy: &[T],
    w: &[T],
    bias: Option<&[T]>,
    gx: &mut [T],
) {
    let ConvShape { n, c, h, o, .. } = g.s;
    let wd = g.s.w;
    let (mr, nr) = (kern.mr, kern.nr);
    let (pos, taps) = (g.positions(), g.taps());
    let kdim = taps * c;
    let panels = kdim.div_ceil(nr);
    // Where column q = tap c + channel of a tile lands relative to the position's top-left pixel,
    // and whether a panel's columns are one contiguous channel run (then col2im is a slice add).
    let col_offsets: Vec<usize> = (0..kdim).map(|q| g.column_offset(q)).collect();
    let contiguous: Vec<bool> = (0..panels)
        .map(|jp| {
            let cols = &col_offsets[jp * nr..kdim.min((jp + 1) * nr)];
            cols.iter()
                .enumerate()
                .all(|(jj, &off)| off == cols[0] + jj)
        })
        .collect();
    let nb = batch_chunk(n, pos);
    let bases = g.position_bases(nb);
    let [ph, pw] = g.padding;
    let (wp, plen) = (g.wp(), g.padded_len());
    with_scratch::<T, _>(panels * o * nr, |wpack| {
        // Panel jp: row oc holds w[oc][channel][tap] for the panel's (tap, channel) columns.
        for jp in 0..panels {
            for oc in 0..o {
                for jj in 0..nr {
                    let q = jp * nr + jj;
                    wpack[(jp * o + oc) * nr + jj] = if q < kdim {
                        w[(oc * c + q % c) * taps + q / c]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
        let wpack = &*wpack;
        gx.par_chunks_mut(nb * c * h * wd)
            .enumerate()
            .for_each(|(chunk, gxc)| {
                let ne = gxc.len() / (c * h * wd);
                let gyc = &gy[chunk * nb * o * pos..][..ne * o * pos];
                // gy as a dense [position][o] matrix: the rows of this GEMM (NHWC already is).
                let nchw = g.layout == Layout::Nchw;
                with_scratch::<T, _>(if nchw { ne * pos * o } else { 0 }, |gn| {
                    if nchw {
                        for e in 0..ne {
                            let dst = &mut gn[e * pos * o..];
                            transpose(kern.isa, &gyc[e * o * pos..], pos, dst, o, o, pos);
                        }
                    }
                    let gn: &[T] = if nchw { gn } else { gyc };
                    with_scratch::<T, _>(ne * plen, |xpad| {
                        xpad.fill(T::ZERO);
                        let mut tile = [T::ZERO; MAX_TILE];
                        // Tiles outer: the image around a tile's positions stays in L1 while
                        // every panel adds to it. A tile holds positions of one example only,
                        // counted from its first: the order in which a pixel's terms are added
                        // then depends on the example alone, not on its place in the batch.
                        let tiles = (0..ne).flat_map(|e| (0..pos).step_by(mr).map(move |p| (e, p)));
                        for (e, p) in tiles {
                            let (p0, end) = (e * pos + p, (e + 1) * pos);
                            let valid = mr.min(end - p0);
                            // Rows of the dense [position][o] matrix (the last one repeats).
                            let rows = std::array::from_fn(|i| {
                                gn.as_ptr().wrapping_add((p0 + i).min(end - 1) * o)
                            });
                            let bases = &bases[p0..p0 + valid];
                            for jp in 0..panels {
                                let cols = nr.min(kdim - jp * nr);
                                let offs = &col_offsets[jp * nr..][..cols];
                                // A full panel of one contiguous channel run is added to the
                                // image in place (col2im inside the kernel); others go through
                                // the tile buffer and are scattered.
                                let in_place = cols == nr && contiguous[jp];
                                let tp = tile.as_mut_ptr();
                                let xp = xpad.as_mut_ptr();
                                let out = if in_place {
                                    std::array::from_fn(|i| {
                                        if i < valid {
                                            xp.wrapping_add(bases[i] + offs[0])
                                        } else {
                                            tp
                                        }
                                    })
                                } else {
                                    kern.out_rows(tp, nr, mr, tp)
                                };
                                let args = TileArgs {
                                    rows,
                                    taps: &[0],
                                    kc: o,
                                    a_step: 1,
                                    b: wpack[jp * o * nr..].as_ptr(),
                                    b_step: nr,
                                    out,
                                    accumulate: in_place,
                                    site: crate::flops::Site::ConvScatter,
                                };
                                // SAFETY: each row is a whole `o`-value row of `gn`; the panel
                                // holds `o` rows of `nr` values; in place, row i writes the `nr`
                                // channels at `bases[i] + offs[0]` of `xpad`, inside the padded
                                // image, distinct positions giving distinct pixels (one tap per
                                // panel); otherwise the tile buffer; the caller checked the ISA.
                                unsafe { kern.run(&args) };
                                if in_place {
                                    continue;
                                }
                                for i in 0..valid {
                                    let trow = &tile[i * nr..][..cols];
                                    if contiguous[jp] {
                                        let dst = &mut xpad[bases[i] + offs[0]..][..cols];
                                        for (d, &t) in dst.iter_mut().zip(trow) {
                                            *d += t;
                                        }
                                    } else {
                                        for (&off, &t) in offs.iter().zip(trow) {
                                            xpad[bases[i] + off] += t;
                                        }
                                    }
                                }
                            }
                        }
                        // Crop the padding and return to the output's layout, adding the bias.
                        for e in 0..ne {
                            let ge = &mut gxc[e * c * h * wd..][..c * h * wd];
                            for y in 0..h {
                                let src = &xpad[e * plen + ((y + ph) * wp + pw) * c..];
                                match g.layout {
                                    Layout::Nchw => transpose(
                                        kern.isa,
                                        src,
                                        c,
                                        &mut ge[y * wd..],
                                        h * wd,
                                        wd,
                                        c,
                                    ),
                                    Layout::Nhwc => {
                                        ge[y * wd * c..][..wd * c].copy_from_slice(&src[..wd * c])
                                    }
                                }
                            }
                            match g.layout {
                                Layout::Nchw => add_bias(ge, h * wd, bias),
                                Layout::Nhwc => add_bias_nhwc(ge, bias),
                            }
                        }
                    });
                });
            });
    });
}

/// What every chunk of a weight-gradient computation shares: where each im2col column starts
/// in a padded image, and the offsets of the output rows of each example.
///
/// The gradient is formed transposed, `part[q][oc] = sum_pos X[pos][q] gy[oc][pos]`
/// (`q = tap c + channel`, rows `o_pad` apart): the tile's rows are im2col columns read in
/// place from the padded NHWC images (column `q` at position `(i, j)` is at
/// `column_offset(q) + (i s wp + j s) c`, so the reduction runs over output rows as taps and
/// along an output row with step `s c`), and its columns are output channels from a
/// `[position][o_pad]` copy of `gy` (or NHWC `gy` itself when `o` fills whole panels). Nothing of
/// the size of the im2col matrix is packed.
struct WeightGradPlan {
    /// Output channels rounded up to whole panels: the row stride of a part.
    o_pad: usize,
    /// Offset of every example's every output row, `e plen + i s wp c`, in a chunk.
    row_taps: Vec<isize>,
}

impl WeightGradPlan {
    /// The plan for chunks of at most `nb` examples and panels of `nr` columns.
    fn new(g: &Geometry, nr: usize, nb: usize) -> Self {
        let (ho, c) = (g.s.ho, g.s.c);
        Self {
            o_pad: g.s.o.div_ceil(nr) * nr,
            row_taps: (0..nb * ho)
                .map(|t| ((t / ho) * g.padded_len() + (t % ho) * g.stride[0] * g.wp() * c) as isize)
                .collect(),
        }
    }

    /// Values of one part: `taps c` rows of `o_pad`.
    fn part_len(&self, g: &Geometry) -> usize {
        g.taps() * g.s.c * self.o_pad
    }

    /// `part[q][oc]` summed over examples `e0..e0 + ne` (at most the plan's `nb`); the columns
    /// from `o` to `o_pad` are left unspecified.
    #[allow(clippy::too_many_arguments)]
    fn run<T: Element>(
        &self,
        kern: Kernel<T>,
        g: &Geometry,
        x: &[T],
        gy: &[T],
        e0: usize,
        ne: usize,
        part: &mut [T],
    ) {
        let ConvShape { c, h, o, wo, .. } = g.s;
        let wd = g.s.w;
        let (mr, nr, o_pad) = (kern.mr, kern.nr, self.o_pad);
        let pos = g.positions();
        let kdim = g.taps() * c;
        let total = ne * pos;
        let xc = &x[e0 * c * h * wd..][..ne * c * h * wd];
        let gyc = &gy[e0 * o * pos..][..ne * o * pos];
        let plen = g.padded_len();
        let direct = g.layout == Layout::Nhwc && o == o_pad;
        with_scratch::<T, _>(ne * plen + if direct { 0 } else { total * o_pad }, |buf| {
            let (xpad, gyt) = buf.split_at_mut(ne * plen);
            g.pad_nhwc(kern.isa, xc, ne, xpad);
            // gy as [position][o_pad], the padding columns zero.
            for e in (0..ne).filter(|_| !direct) {
                let dst = &mut gyt[e * pos * o_pad..][..pos * o_pad];
                let gye = &gyc[e * o * pos..][..o * pos];
                match g.layout {
                    Layout::Nchw => transpose(kern.isa, gye, pos, dst, o_pad, o, pos),
                    Layout::Nhwc => {
                        for (row, src) in dst.chunks_exact_mut(o_pad).zip(gye.chunks_exact(o)) {
                            row[..o].copy_from_slice(src);
                        }
                    }
                }
                if o < o_pad {
                    for row in dst.chunks_exact_mut(o_pad) {
                        row[o..].fill(T::ZERO);
                    }
                }
            }
            let gyt: &[T] = if direct { gyc } else { gyt };
            let mut tile = [T::ZERO; MAX_TILE];
            let tp = tile.as_mut_ptr();
            let taps = &self.row_taps[..ne * g.s.ho];
            for jp in 0..o_pad / nr {
                for q0 in (0..kdim).step_by(mr) {
                    let valid = mr.min(kdim - q0);
                    let rows = std::array::from_fn(|i| {
                        xpad.as_ptr()
                            .wrapping_add(g.column_offset((q0 + i).min(kdim - 1)))
                    });
                    let out =
                        kern.out_rows(part[q0 * o_pad + jp * nr..].as_mut_ptr(), o_pad, valid, tp);
                    let args = TileArgs {
                        rows,
                        taps,
                        kc: wo,
                        a_step: g.stride[1] * c,
                        b: gyt[jp * nr..].as_ptr(),
                        b_step: o_pad,
                        out,
                        accumulate: false,
                        site: crate::flops::Site::WeightGrad,
                    };
                    // SAFETY: row i reads column `q0 + i` of the im2col matrix at every position
                    // of the chunk: `column_offset + e plen + i s wp c + j s c`, inside example
                    // e's padded image (the output size keeps every window inside it); the
                    // panel's `ne ho wo` rows of `nr` values are `o_pad` apart in `gyt`, in the
                    // same (example, row, column) order; output rows are distinct `nr`-value
                    // runs of `part` or the tile buffer; the caller checked the ISA.
                    unsafe { kern.run(&args) };
                }
            }
        });
    }
}

/// Weight gradients of chunks of `nb` examples: `parts[chunk]` is the transposed gradient
/// `[(tap, c)][o_pad]` summed over the chunk's examples ([`weight_grad_part_len`] values; see
/// `WeightGradPlan` for how it is formed, [`to_weight_layout`] for the weight layout).
pub(super) fn weight_grad_chunks<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    x: &[T],
    gy: &[T],
    nb: usize,
    parts: &mut [T],
) {
    let plan = WeightGradPlan::new(g, kern.nr, nb);
    parts
        .par_chunks_mut(plan.part_len(g))
        .enumerate()
        .for_each(|(chunk, part)| {
            let e0 = chunk * nb;
            plan.run(kern, g, x, gy, e0, nb.min(g.s.n - e0), part);
        });
}

/// Values of one chunk's partial weight gradient on kernel `kern` (see [`weight_grad_chunks`]).
pub(super) fn weight_grad_part_len<T: Element>(kern: Kernel<T>, g: &Geometry) -> usize {
    WeightGradPlan::new(g, kern.nr, 0).part_len(g)
}

/// `|dw_n|^2` for every example `n` (its weight gradient alone), without keeping the
/// gradients: each is either formed in a per-thread buffer and reduced at once, or, where that
/// costs more, taken from the two Gram matrices of the example's positions,
/// `|gy_n^T X_n|^2 = sum_{p, p'} (gy_p . gy_p') (X_p . X_p')` (`X` the im2col rows, `gy_p` the
/// output gradient at position `p`), which needs `P^2 (o + taps c) / 2` multiply-adds instead
/// of `P o taps c` for `P` positions.
///
/// With `dots = Some((r, dots))` (`r` in the weight layout `[o][c][kh][kw]`), where each
/// gradient is formed, `dots[n] = <dw_n, r>` is taken from it too (one more pass over a buffer
/// still in cache); returns whether it was.
pub(super) fn weight_grad_sq_norms<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    x: &[T],
    gy: &[T],
    out: &mut [T],
    dots: Option<(&[T], &mut [T])>,
) -> bool {
    let ConvShape { c, h, o, .. } = g.s;
    let wd = g.s.w;
    let (pos, kdim) = (g.positions(), g.taps() * c);
    // The Gram form runs on dot products of short runs, about four times slower per
    // multiply-add than the GEMM kernel: taken only where it saves more than that.
    if 4 * pos * (o + kdim) >= 2 * o * kdim {
        let plan = WeightGradPlan::new(g, kern.nr, 1);
        let (isa, o_pad) = (kern.isa, plan.o_pad);
        // `r` as the parts are laid out, `[(tap, c)][o]`.
        let rt: Option<Vec<T>> = dots.as_ref().map(|(r, _)| {
            let taps = g.taps();
            (0..kdim * o)
                .map(|i| {
                    let (q, oc) = (i / o, i % o);
                    r[(oc * c + q % c) * taps + q / c]
                })
                .collect()
        });
        let mut dot_values = vec![T::ZERO; out.len()];
        out.par_iter_mut()
            .zip(dot_values.par_iter_mut())
            .enumerate()
            .for_each(|(e, (sq, dot))| {
                with_scratch::<T, _>(plan.part_len(g), |part| {
                    plan.run(kern, g, x, gy, e, 1, part);
                    *sq = dot_rows(isa, part, o_pad, part, o_pad, o);
                    if let Some(rt) = &rt {
                        *dot = dot_rows(isa, part, o_pad, rt, o, o);
                    }
                });
            });
        return dots.map(|(_, d)| d.copy_from_slice(&dot_values)).is_some();
    }
    // Kernel rows of `kw c` contiguous values at each position.
    let run = g.s.kw * c;
    let row_offsets: Vec<usize> = (0..g.s.kh).map(|p| g.tap_offset(p * g.s.kw)).collect();
    out.par_iter_mut().enumerate().for_each(|(e, sq)| {
        let gye = &gy[e * o * pos..][..o * pos];
        let nchw = g.layout == Layout::Nchw;
        with_scratch::<T, _>(g.padded_len() + if nchw { pos * o } else { 0 }, |buf| {
            let (xpad, gt) = buf.split_at_mut(g.padded_len());
            g.pad_nhwc(kern.isa, &x[e * c * h * wd..][..c * h * wd], 1, xpad);
            // gy as [position][o], so that both Gram entries are dot products of runs.
            if nchw {
                transpose(kern.isa, gye, pos, gt, o, o, pos);
            }
            let gt: &[T] = if nchw { gt } else { gye };
            let mut total = T::ZERO;
            for p in 0..pos {
                let bp = g.row_base(0, p);
                for q in 0..=p {
                    let bq = g.row_base(0, q);
                    let gyy = T::dot_slice(kern.isa, &gt[p * o..][..o], &gt[q * o..][..o]);
                    let mut xx = T::ZERO;
                    for &r in &row_offsets {
                        xx +=
                            T::dot_slice(kern.isa, &xpad[bp + r..][..run], &xpad[bq + r..][..run]);
                    }
                    // Off-diagonal pairs appear twice in the double sum.
                    let twice = if p == q { T::ONE } else { T::ONE + T::ONE };
                    total += twice * gyy * xx;
                }
            }
            *sq = total;
        });
    });
    false
}

/// `sum_q <a_q, b_q>` over the first `len` values of the rows of `a` (`a_stride` apart) and `b`
/// (`b_stride` apart), row by row; one dot product where the rows are whole and contiguous.
fn dot_rows<T: Element>(
    isa: Isa,
    a: &[T],
    a_stride: usize,
    b: &[T],
    b_stride: usize,
    len: usize,
) -> T {
    if len == a_stride && len == b_stride {
        return T::dot_slice(isa, a, &b[..a.len()]);
    }
    a.chunks_exact(a_stride)
        .zip(b.chunks(b_stride))
        .map(|(a, b)| T::dot_slice(isa, &a[..len], &b[..len]))
        .fold(T::ZERO, |s, v| s + v)
}

/// Reorders a transposed weight gradient `[(tap, c)][o_pad]` (a part of kernel `kern`) into
/// the weight layout `[o][c][tap]`.
pub(super) fn to_weight_layout<T: Element>(
    kern: Kernel<T>,
    g: &Geometry,
    part: &[T],
    dw: &mut [T],
) {
    let (o, c, taps) = (g.s.o, g.s.c, g.taps());
    let kdim = taps * c;
    if kdim == 0 || o == 0 {
        return;
    }
    let o_pad = o.div_ceil(kern.nr) * kern.nr;
    with_scratch::<T, _>(o * kdim, |by_o| {
        // [(tap, c)][o_pad] -> [o][(tap, c)] -> per o, [tap][c] -> [c][tap].
        transpose(kern.isa, part, o_pad, by_o, kdim, kdim, o);
        for (src, dst) in by_o.chunks(kdim).zip(dw.chunks_mut(kdim)) {
            transpose(kern.isa, src, c, dst, taps, taps, c);
        }
    });
}
