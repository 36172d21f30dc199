//! Block transposition: NCHW tensors to and from the NHWC scratch images of the convolutions,
//! NCHW to NHWC relayouts, and GEMM's packing of a transposed `B`. It sits below all of them
//! and imports none.
//!
//! `dst[j dst_stride + i] = src[i src_stride + j]` for `i < rows`, `j < cols`. For `f32` on the
//! AVX2 and AVX-512 paths, 8 x 8 blocks are transposed in registers (unpack, shuffle and lane
//! permutes), on the portable path 4 x 4 blocks of `wide` vectors; everything else runs the
//! blocked loops.

use std::any::TypeId;

use crate::{Element, Isa};

/// Transposes a `rows x cols` block of `src` into `dst` (see the module documentation).
///
/// # Panics
/// If a slice is too short for its block.
pub(crate) fn transpose<T: Element>(
    isa: Isa,
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + cols,
        "transpose: source too short"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_stride + rows,
        "transpose: destination too short"
    );
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        let src: &[f32] = bytemuck::cast_slice(src);
        let dst: &mut [f32] = bytemuck::cast_slice_mut(dst);
        match isa {
            Isa::Portable => {
                portable::transpose(src, src_stride, dst, dst_stride, rows, cols);
                return;
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 if isa.is_supported() => {
                // SAFETY: AVX2 is available (both paths include it, checked here), and the
                // asserts show every index the blocks touch is inside the slices.
                unsafe { x86::transpose_avx(src, src_stride, dst, dst_stride, rows, cols) };
                return;
            }
            _ => {}
        }
    }
    blocked(src, src_stride, dst, dst_stride, rows, cols);
}

/// Block starts every `b` along an axis of `len >= b`, plus a last block flush with the edge that
/// overlaps the one before it: a transpose is a copy, so writing some values twice is harmless.
fn block_starts(len: usize, b: usize) -> impl Iterator<Item = usize> + Clone {
    (0..=len - b)
        .step_by(b)
        .chain((!len.is_multiple_of(b)).then_some(len - b))
}

/// The blocked loops.
#[inline(always)]
fn blocked<T: Copy>(
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    const B: usize = 8;
    for ib in (0..rows).step_by(B) {
        let i1 = (ib + B).min(rows);
        for jb in (0..cols).step_by(B) {
            let j1 = (jb + B).min(cols);
            for i in ib..i1 {
                let row = &src[i * src_stride + jb..i * src_stride + j1];
                for (j, &v) in (jb..j1).zip(row) {
                    dst[j * dst_stride + i] = v;
                }
            }
        }
    }
}

/// 4 x 4 blocks in `wide` vectors (unpacks on SSE2, NEON and simd128), bounds-checked.
mod portable {
    use wide::f32x4;

    /// The transpose of `rows x cols` values (see the module documentation); the lengths were
    /// checked by the caller, and are checked again by every slice.
    pub(super) fn transpose(
        src: &[f32],
        src_stride: usize,
        dst: &mut [f32],
        dst_stride: usize,
        rows: usize,
        cols: usize,
    ) {
        if rows < 4 || cols < 4 {
            super::blocked(src, src_stride, dst, dst_stride, rows, cols);
            return;
        }
        for i in super::block_starts(rows, 4) {
            for j in super::block_starts(cols, 4) {
                let r: [f32x4; 4] = std::array::from_fn(|k| {
                    let row = &src[(i + k) * src_stride + j..][..4];
                    f32x4::new([row[0], row[1], row[2], row[3]])
                });
                for (k, v) in f32x4::transpose(r).into_iter().enumerate() {
                    dst[(j + k) * dst_stride + i..][..4].copy_from_slice(v.as_array());
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2; `src` must hold `(rows - 1) src_stride + cols` values and `dst`
    /// `(cols - 1) dst_stride + rows`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose_avx(
        src: &[f32],
        src_stride: usize,
        dst: &mut [f32],
        dst_stride: usize,
        rows: usize,
        cols: usize,
    ) {
        if rows < 8 || cols < 8 {
            super::blocked(src, src_stride, dst, dst_stride, rows, cols);
            return;
        }
        for i in super::block_starts(rows, 8) {
            for j in super::block_starts(cols, 8) {
                // SAFETY: rows i..i+8 and columns j..j+8 are inside both blocks (i + 8 <= rows,
                // j + 8 <= cols), so every load and store is in bounds (caller's lengths).
                unsafe {
                    block8(
                        src.as_ptr().add(i * src_stride + j),
                        src_stride,
                        dst.as_mut_ptr().add(j * dst_stride + i),
                        dst_stride,
                    )
                };
            }
        }
    }

    /// Transposes one 8 x 8 block in registers.
    #[inline(always)]
    unsafe fn block8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller guarantees 8 rows of 8 values at `src` (stride ss) and at `dst`
        // (stride ds), and AVX.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let o = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, v) in o.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(j * ds), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes 0, 1, odd, prime and around the 4- and 8-wide blocks, with padded strides, on every
    /// path, for both element types, against the index formula; values outside the block stay.
    fn check<T: Element>() {
        const SIZES: [usize; 11] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 17];
        for isa in Isa::supported() {
            for rows in SIZES {
                for cols in SIZES {
                    let (ss, ds) = (cols + 3, rows + 1);
                    let src: Vec<T> = (0..rows * ss + 1).map(|v| T::from_f64(v as f64)).collect();
                    let sentinel = T::from_f64(-1.0);
                    let mut dst = vec![sentinel; cols * ds + 1];
                    transpose(isa, &src, ss, &mut dst, ds, rows, cols);
                    for (at, &got) in dst.iter().enumerate() {
                        let (j, i) = (at / ds, at % ds);
                        let want = if i < rows && j < cols {
                            src[i * ss + j]
                        } else {
                            sentinel
                        };
                        assert!(
                            got == want,
                            "{isa} {} {rows}x{cols}: dst[{at}] = {got}, want {want}",
                            T::NAME
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_path_transposes_every_size() {
        check::<f32>();
        check::<f64>();
    }
}
