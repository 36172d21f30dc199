//! The AVX2 + FMA path: 8 f32 lanes in a `__m256`.
//!
//! [`Lanes`] for `__m256` maps each lane operation to one or two intrinsics; the public functions
//! are thin `#[target_feature(enable = "avx2,fma")]` wrappers around the shared bodies in
//! [`super::lanes`], so the bodies are compiled with these instructions inlined.

use std::arch::x86_64::*;

use super::lanes::{self, Lanes};
use crate::element::{Binary, Unary};

/// Lane `i` all ones where `i < n`, else zero: the mask of `maskload`/`maskstore`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tail_mask(n: usize) -> __m256i {
    // `n <= 8` here, so the cast is exact.
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The sum of the 8 lanes as `((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))`: halves, then
/// quarters, then pairs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sum_lanes_256(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    let s = _mm_add_ss(q, _mm_shuffle_ps::<0b01>(q, q));
    _mm_cvtss_f32(s)
}

impl Lanes for __m256 {
    const N: usize = 8;
    const FUSED: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(v: f32) -> Self {
        _mm256_set1_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: `p` is valid for 8 reads (this fn's contract); `loadu` needs no alignment.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: `p` is valid for 8 writes (this fn's contract); `storeu` needs no alignment.
        unsafe { _mm256_storeu_ps(p, self) }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load_part(p: *const f32, n: usize) -> Self {
        // SAFETY: the mask selects the first `n` lanes, for which `p` is valid; masked-off
        // lanes are neither read nor faulted on, and come back as zero.
        unsafe { _mm256_maskload_ps(p, tail_mask(n)) }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_part(self, p: *mut f32, n: usize) {
        // SAFETY: the mask selects the first `n` lanes, for which `p` is valid; memory of the
        // masked-off lanes is not written.
        unsafe { _mm256_maskstore_ps(p, tail_mask(n), self) }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add(self, o: Self) -> Self {
        _mm256_add_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sub(self, o: Self) -> Self {
        _mm256_sub_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul(self, o: Self) -> Self {
        _mm256_mul_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn div(self, o: Self) -> Self {
        _mm256_div_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        _mm256_fmadd_ps(self, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        _mm256_sqrt_ps(self)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn neg(self) -> Self {
        _mm256_xor_ps(self, _mm256_set1_ps(-0.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn abs(self) -> Self {
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), self)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn max(self, o: Self) -> Self {
        _mm256_max_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn min(self, o: Self) -> Self {
        _mm256_min_ps(self, o)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn round(self) -> Self {
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn where_positive(cond: Self, v: Self) -> Self {
        _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(cond, _mm256_setzero_ps()), v)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn where_nonneg(cond: Self, a: Self, b: Self) -> Self {
        _mm256_blendv_ps(b, a, _mm256_cmp_ps::<_CMP_GE_OQ>(cond, _mm256_setzero_ps()))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_pow2(self, n: Self) -> Self {
        // `2^n = 2^h 2^(n-h)` with `h = floor(n / 2)`: both factors lie in `[2^-75, 2^64]`, so
        // each is a normal f32 built from its exponent bits `(e + 127) << 23`. The first product
        // is exact (a power-of-two scaling of a value near 1); the second rounds once.
        let n = _mm256_cvtps_epi32(n);
        let h = _mm256_srai_epi32::<1>(n);
        let k = _mm256_sub_epi32(n, h);
        let bias = _mm256_set1_epi32(127);
        let ph = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(h, bias)));
        let pk = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, bias)));
        _mm256_mul_ps(_mm256_mul_ps(self, ph), pk)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_lanes(self) -> f32 {
        // SAFETY: same target features as this fn.
        unsafe { sum_lanes_256(self) }
    }
}

/// `out[i] = op(x[i])` for `i < min(x.len(), out.len())`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn unary(op: Unary, x: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::unary::<__m256>(op, x, out) }
}

/// `out[i] = op(a[i], b[i])` for `i` below the shortest length.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn binary(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::binary::<__m256>(op, a, b, out) }
}

/// `out[i] = alpha * x[i]`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scale(alpha: f32, x: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::scale::<__m256>(alpha, x, out) }
}

/// `out[j n + i] += sum_t w[t k + j] src[off_t + i]`, see [`lanes::shifted_sums`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `off_t + n <= src.len()` for every term (`k` outputs of `n` values).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn shifted_sum(offsets: &[usize], weights: &[f32], src: &[f32], out: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use; the bounds
    // are the caller's guarantee.
    unsafe { lanes::shifted_sum::<__m256>(offsets, weights, src, out) }
}

/// `y[i] = fma(alpha, x[i], y[i])`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::axpy::<__m256>(alpha, x, y) }
}

/// `sum_i a[i]` in the fixed accumulator pattern of [`lanes::sum`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn sum(a: &[f32]) -> f32 {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::sum::<__m256>(a) }
}

/// `sum_i a[i] b[i]` in the fixed accumulator pattern of [`lanes::dot`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: this fn's target features are those `__m256`'s `Lanes` methods use.
    unsafe { lanes::dot::<__m256>(a, b) }
}
