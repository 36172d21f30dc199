//! Block transposition: NCHW tensors to and from the NHWC scratch images of the convolutions,
//! NCHW to NHWC relayouts, and GEMM's packing of a transposed `B`. It sits below all of them
//! and imports none.
//!
//! `dst[j dst_stride + i] = src[i src_stride + j]` for `i < rows`, `j < cols`. For `f32` on the
//! AVX2 and AVX-512 paths, 8 x 8 blocks are transposed in registers (unpack, shuffle and lane
//! permutes); everything else runs the portable blocked loops.

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
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && isa != Isa::Scalar && isa.is_supported() {
        let src: &[f32] = bytemuck::cast_slice(src);
        let dst: &mut [f32] = bytemuck::cast_slice_mut(dst);
        // SAFETY: AVX2 is available (both SIMD paths include it, checked above), and the asserts
        // show every index the blocks touch is inside the slices.
        unsafe { x86::transpose_avx(src, src_stride, dst, dst_stride, rows, cols) };
        return;
    }
    let _ = isa;
    portable(src, src_stride, dst, dst_stride, rows, cols, 0, 0);
}

/// The blocked loops over rows `i0..` and columns `j0..`.
#[inline(always)]
fn portable<T: Copy>(
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
    rows: usize,
    cols: usize,
    i0: usize,
    j0: usize,
) {
    const B: usize = 8;
    for ib in (i0..rows).step_by(B) {
        let i1 = (ib + B).min(rows);
        for jb in (j0..cols).step_by(B) {
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
            super::portable(src, src_stride, dst, dst_stride, rows, cols, 0, 0);
            return;
        }
        // Block starts every 8, plus a last block flush with the edge that overlaps the one
        // before it: a transpose is a copy, so writing some values twice is harmless.
        let starts = |len: usize| {
            (0..len - 7)
                .step_by(8)
                .chain((!len.is_multiple_of(8)).then_some(len - 8))
        };
        for i in starts(rows) {
            for j in starts(cols) {
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
