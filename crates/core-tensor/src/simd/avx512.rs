//! The AVX-512F path: 16 f32 lanes in a `__m512`, tails through `__mmask16` masked loads and
//! stores.
//!
//! Only AVX-512F instructions are used (no DQ/BW/VL), plus the AVX2 horizontal add of the final
//! reduction; [`crate::Isa::Avx512`] requires AVX2 and FMA as well. The public functions are thin
//! `#[target_feature]` wrappers around the shared bodies in [`super::lanes`].

use std::arch::x86_64::*;

use super::avx2::sum_lanes_256;
use super::lanes::{self, Lanes};
use crate::element::{Binary, Unary};

/// Bits `0..n` set: the first `n < 16` lanes.
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    // `n <= 16`, so the shift does not overflow and the result fits 16 bits.
    ((1u32 << n) - 1) as __mmask16
}

impl Lanes for __m512 {
    const N: usize = 16;
    const FUSED: bool = true;

    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn splat(v: f32) -> Self {
        _mm512_set1_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: `p` is valid for 16 reads (this fn's contract); `loadu` needs no alignment.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: `p` is valid for 16 writes (this fn's contract); `storeu` needs no alignment.
        unsafe { _mm512_storeu_ps(p, self) }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn load_part(p: *const f32, n: usize) -> Self {
        // SAFETY: the mask selects the first `n` lanes, for which `p` is valid; masked-off
        // lanes are not read (no fault) and are zeroed.
        unsafe { _mm512_maskz_loadu_ps(tail_mask(n), p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn store_part(self, p: *mut f32, n: usize) {
        // SAFETY: the mask selects the first `n` lanes, for which `p` is valid; masked-off
        // memory is not written.
        unsafe { _mm512_mask_storeu_ps(p, tail_mask(n), self) }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn add(self, o: Self) -> Self {
        _mm512_add_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn sub(self, o: Self) -> Self {
        _mm512_sub_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mul(self, o: Self) -> Self {
        _mm512_mul_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn div(self, o: Self) -> Self {
        _mm512_div_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(self, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        _mm512_sqrt_ps(self)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn neg(self) -> Self {
        // Integer xor: the f32 `xor` of AVX-512 needs DQ, which this path does not assume.
        let bits = _mm512_xor_si512(_mm512_castps_si512(self), _mm512_set1_epi32(i32::MIN));
        _mm512_castsi512_ps(bits)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn abs(self) -> Self {
        _mm512_abs_ps(self)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn max(self, o: Self) -> Self {
        _mm512_max_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn min(self, o: Self) -> Self {
        _mm512_min_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn round(self) -> Self {
        // Scale 0 (imm bits 7:4) and round-to-nearest without exceptions.
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn where_positive(cond: Self, v: Self) -> Self {
        _mm512_maskz_mov_ps(
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(cond, _mm512_setzero_ps()),
            v,
        )
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn where_nonneg(cond: Self, a: Self, b: Self) -> Self {
        _mm512_mask_blend_ps(
            _mm512_cmp_ps_mask::<_CMP_GE_OQ>(cond, _mm512_setzero_ps()),
            b,
            a,
        )
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mul_pow2(self, n: Self) -> Self {
        // `vscalefps` computes `self * 2^floor(n)` with one rounding, overflow to inf and
        // gradual underflow included.
        _mm512_scalef_ps(self, n)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn sum_lanes(self) -> f32 {
        // Halves first, then the AVX2 tree: lower 8 lanes + upper 8 lanes.
        let lo = _mm512_castps512_ps256(self);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self)));
        // SAFETY: AVX2 and FMA are among this fn's target features.
        unsafe { sum_lanes_256(_mm256_add_ps(lo, hi)) }
    }
}

/// `out[i] = op(x[i])` for `i < min(x.len(), out.len())`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn unary(op: Unary, x: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::unary::<__m512>(op, x, out) }
}

/// `out[i] = op(a[i], b[i])` for `i` below the shortest length.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn binary(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::binary::<__m512>(op, a, b, out) }
}

/// `out[i] = alpha * x[i]`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn scale(alpha: f32, x: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::scale::<__m512>(alpha, x, out) }
}

/// `out[j n + i] += sum_t w[t k + j] src[off_t + i]`, see [`lanes::shifted_sums`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA; `off_t + n <= src.len()` for every term (`k` outputs of `n` values).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn shifted_sum(offsets: &[usize], weights: &[f32], src: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use; the bounds
    // are the caller's guarantee.
    unsafe { lanes::shifted_sum::<__m512>(offsets, weights, src, out) }
}

/// `y[i] = fma(alpha, x[i], y[i])`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::axpy::<__m512>(alpha, x, y) }
}

/// `sum_i a[i]` in the fixed accumulator pattern of [`lanes::sum`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn sum(a: &[f32]) -> f32 {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::sum::<__m512>(a) }
}

/// `sum_i a[i] b[i]` in the fixed accumulator pattern of [`lanes::dot`].
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: this fn's target features are those `__m512`'s `Lanes` methods use.
    unsafe { lanes::dot::<__m512>(a, b) }
}
