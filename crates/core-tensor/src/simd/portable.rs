//! The portable path: [`Lanes`] for a vector of the `wide` crate, on every target.
//!
//! `wide` picks its instructions at compile time from the build's target features: SSE2 on any
//! x86-64 (the baseline, so without FMA), NEON on aarch64, simd128 on wasm32, and plain arrays
//! elsewhere. Nothing here uses `std::arch` or run-time detection, so this path runs on every
//! CPU the binary runs on; its `Lanes` methods are `unsafe` only because the trait's are.
//!
//! Partial loads and stores (`wide` has no masked memory operations) read or write the lanes
//! that exist one length at a time: the lanes past the slice are neither read nor written, as on
//! the AVX paths. [`Lanes::mul_add`] is fused where `wide` fuses it (x86 built with FMA, aarch64) and
//! two roundings otherwise, which [`Lanes::FUSED`] reports to the kernels.

use std::ptr;

use wide::{f32x4, i32x4};

use super::lanes::Lanes;

/// The register of the portable path: four lanes, one 128-bit register on SSE2, NEON and
/// simd128. Eight-lane `f32x8` (two registers per value on those targets) was measured too, on
/// SSE2 on one thread: 13-20 % faster on `exp` and `sigmoid` (longer loop bodies), but slower on
/// `sum` (17-19 against 24 Gelem/s) and on the shifted sums of the narrow convolutions (1.05-1.1x
/// against 1.33x the scalar path), whose register counts are sized for sixteen registers of one
/// vector each.
pub(super) type Reg = f32x4;

/// Whether `wide`'s `mul_add` rounds once on this build's target, as its documentation states:
/// on x86 with the `fma` target feature and on aarch64 with NEON; elsewhere it is `a * b + c`.
const FUSED: bool = cfg!(any(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "fma"
    ),
    all(target_arch = "aarch64", target_feature = "neon")
));

/// The sum of the lanes as `(l0 + l2) + (l1 + l3)`: halves, then pairs (the pattern of the
/// AVX paths' trees, at four lanes).
#[inline(always)]
fn sum_tree(v: [f32; 4]) -> f32 {
    (v[0] + v[2]) + (v[1] + v[3])
}

impl Lanes for f32x4 {
    const N: usize = 4;
    const FUSED: bool = FUSED;

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        f32x4::splat(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: `p` is valid for 4 reads (this fn's contract); `read_unaligned` needs no
        // alignment.
        f32x4::new(unsafe { ptr::read_unaligned(p.cast::<[f32; 4]>()) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: `p` is valid for 4 writes (this fn's contract); `write_unaligned` needs no
        // alignment.
        unsafe { ptr::write_unaligned(p.cast::<[f32; 4]>(), self.to_array()) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> Self {
        // One arm per length rather than a copy of `n` values: a variable-length copy becomes a
        // call to `memcpy`, which the shifted sums' tails (many short rows) would pay per term.
        // SAFETY: `p` is valid for `n` reads (this fn's contract); each arm reads `[0, n)`.
        let v = unsafe {
            match n {
                0 => [0.0; 4],
                1 => [*p, 0.0, 0.0, 0.0],
                2 => [*p, *p.add(1), 0.0, 0.0],
                3 => [*p, *p.add(1), *p.add(2), 0.0],
                _ => return Self::load(p),
            }
        };
        f32x4::new(v)
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, n: usize) {
        let v = self.to_array();
        // SAFETY: `p` is valid for `n` writes (this fn's contract); each arm writes `[0, n)`.
        unsafe {
            match n {
                0 => {}
                1 => *p = v[0],
                2 => ptr::copy_nonoverlapping(v.as_ptr(), p, 2),
                3 => ptr::copy_nonoverlapping(v.as_ptr(), p, 3),
                _ => self.store(p),
            }
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        self / o
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        f32x4::mul_add(self, b, c)
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        f32x4::sqrt(self)
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        self ^ f32x4::splat(-0.0)
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        self & f32x4::splat(f32::from_bits(0x7fff_ffff))
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        // Compare and select, which is the x86 rule on every target (`wide`'s own `max` and
        // `fast_max` treat NaN differently from target to target).
        self.simd_gt(o).select(self, o)
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        self.simd_lt(o).select(self, o)
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        self.round_ties_even()
    }
    #[inline(always)]
    unsafe fn where_positive(cond: Self, v: Self) -> Self {
        cond.simd_gt(f32x4::ZERO) & v
    }
    #[inline(always)]
    unsafe fn where_nonneg(cond: Self, a: Self, b: Self) -> Self {
        cond.simd_ge(f32x4::ZERO).select(a, b)
    }
    #[inline(always)]
    unsafe fn mul_pow2(self, n: Self) -> Self {
        // As on AVX2: `2^n = 2^h 2^(n-h)` with `h = floor(n / 2)`, each factor a normal f32
        // built from its exponent bits, the first product exact, the second rounding once. `n`
        // is integral and small, so the conversion to integers is exact on every target; the
        // unchecked conversion (one instruction on SSE2, where `round_int` takes five) leaves a
        // NaN lane's integer unspecified, but that lane's `self` is NaN already (as `n` is, so
        // was `exp`'s argument) and stays NaN whatever the factors.
        let n: i32x4 = n.fast_round_int();
        let h = n >> 1;
        let k = n - h;
        let bias = i32x4::splat(127);
        let ph: f32x4 = bytemuck::cast((h + bias) << 23);
        let pk: f32x4 = bytemuck::cast((k + bias) << 23);
        self * ph * pk
    }
    #[inline(always)]
    unsafe fn sum_lanes(self) -> f32 {
        sum_tree(self.to_array())
    }
}
