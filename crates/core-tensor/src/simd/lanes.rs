//! The bodies of the SIMD f32 kernels, written once over [`Lanes`], one SIMD register of f32
//! values. Each x86-64 path (`avx2`, `avx512`) implements `Lanes` for its register type and wraps
//! these `#[inline(always)]` bodies in `#[target_feature]` functions, so every body is compiled
//! once per instruction set with that set's instructions inlined; the portable path (`portable`)
//! implements it for a `wide` vector, compiled for the build's target on every target.
//!
//! Tails are handled with masked (or, on the portable path, length-by-length) loads and stores
//! on every path, so the value computed for `x[i]` never depends on where `i` falls relative to
//! the end of the slice.

use crate::element::{Binary, Unary};

/// One SIMD register of `N` f32 lanes and the lane-wise operations the kernels are built from.
///
/// Every method is `unsafe` for one shared reason: it executes the path's instructions, so the
/// CPU must support them (the `Isa` check in `simd::enter` establishes this). Methods that take
/// pointers state their extra conditions.
pub(super) trait Lanes: Copy {
    /// Lanes per register.
    const N: usize;
    /// Whether [`Lanes::mul_add`] rounds once (a fused multiply-add). Where it does not, [`exp`]
    /// takes a range reduction that needs no fused operation.
    const FUSED: bool;

    /// Every lane `v`.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn splat(v: f32) -> Self;
    /// `N` values from `p` (unaligned).
    ///
    /// # Safety
    /// The CPU must support the path's instructions and `p` must be valid for `N` reads.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores the `N` lanes at `p` (unaligned).
    ///
    /// # Safety
    /// The CPU must support the path's instructions and `p` must be valid for `N` writes.
    unsafe fn store(self, p: *mut f32);
    /// The first `n <= N` values from `p`; the other lanes are `0.0` and their memory is not
    /// read.
    ///
    /// # Safety
    /// The CPU must support the path's instructions and `p` must be valid for `n` reads.
    unsafe fn load_part(p: *const f32, n: usize) -> Self;
    /// Stores the first `n <= N` lanes at `p`; memory past them is not touched.
    ///
    /// # Safety
    /// The CPU must support the path's instructions and `p` must be valid for `n` writes.
    unsafe fn store_part(self, p: *mut f32, n: usize);
    /// `self + o`.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn add(self, o: Self) -> Self;
    /// `self - o`.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn sub(self, o: Self) -> Self;
    /// `self * o`.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn mul(self, o: Self) -> Self;
    /// `self / o`, correctly rounded.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn div(self, o: Self) -> Self;
    /// `self * b + c`: with one rounding (fused multiply-add) if [`Lanes::FUSED`], else with two.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `sqrt(self)`, correctly rounded.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn sqrt(self) -> Self;
    /// `-self` by flipping the sign bit (so `-(+0) = -0` and NaNs keep their payload).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn neg(self) -> Self;
    /// `|self|` by clearing the sign bit.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn abs(self) -> Self;
    /// `if self > o { self } else { o }` lane-wise: `o` when either is NaN (x86 `max` semantics).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn max(self, o: Self) -> Self;
    /// `if self < o { self } else { o }` lane-wise: `o` when either is NaN (x86 `min` semantics).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn min(self, o: Self) -> Self;
    /// Rounds to the nearest integer, ties to even.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn round(self) -> Self;
    /// `v` where `cond > 0`, else `+0.0` (NaN `cond` gives `+0.0`).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn where_positive(cond: Self, v: Self) -> Self;
    /// `a` where `cond >= 0`, else `b` (NaN `cond` gives `b`).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn where_nonneg(cond: Self, a: Self, b: Self) -> Self;
    /// `self * 2^n` for integral `n` in `[-150, 128]`, with one rounding: results past `f32::MAX`
    /// become `inf`, results below the normal range are subnormal or `0`.
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn mul_pow2(self, n: Self) -> Self;
    /// The sum of the lanes, added as a fixed pairwise tree (halves first).
    ///
    /// # Safety
    /// The CPU must support the path's instructions.
    unsafe fn sum_lanes(self) -> f32;
}

/// Independent accumulators of the reductions: enough to hide the 4-cycle add/FMA latency on two
/// ports. Fixed, so a chunk's result is fixed.
const ACC: usize = 8;

/// `ln 2 = LN2_HI + LN2_LO` with `LN2_HI` the f32 nearest `ln 2`: for `|x| <= 104` and the
/// integer `n` nearest `x log2 e`, `x - n LN2_HI` is a multiple of `2^-24` below `1/2` in size,
/// so the first FMA of the range reduction computes it exactly.
const LN2_HI: f32 = std::f32::consts::LN_2;
const LN2_LO: f32 = -1.904_654_2e-9;
/// The split of `ln 2` for paths without a fused multiply-add (Cody and Waite's):
/// `LN2_HI_SHORT = 355 / 512` has 9 significant bits, so `n LN2_HI_SHORT` is exact in f32 for
/// `|n| <= 2^15`, and `x - n LN2_HI_SHORT` is exact too (both are multiples of the smaller ulp,
/// and the difference is below `0.4`); `LN2_LO_SHORT` is `ln 2 - LN2_HI_SHORT` rounded to f32.
const LN2_HI_SHORT: f32 = 355.0 / 512.0;
const LN2_LO_SHORT: f32 = -2.121_944_4e-4;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// Inputs are clamped to `[EXP_LO, EXP_HI]`: below, `e^x < 2^-150` rounds to `0`; above, the
/// result is `inf` after `mul_pow2`. The clamp keeps `n = round(x log2 e)` inside `[-150, 128]`.
const EXP_LO: f32 = -104.0;
const EXP_HI: f32 = 89.0;
/// `e^r ~ 1 + r (C1 + r (C2 + r (C3 + r (C4 + r (C5 + r C6)))))` on `|r| <= ln2 / 2`: a
/// relative-error minimax fit (Lawson-reweighted least squares on Chebyshev nodes, coefficients
/// rounded to f32); its approximation error is `1.7e-8`, below the f32 rounding of the result.
///
/// `C1 = EXP_C[0]` is 1, which the evaluation without a fused multiply-add in [`exp`] relies on.
const EXP_C: [f32; 6] = [
    1.0,
    0.499_999_94,
    0.166_664_32,
    0.041_668,
    0.008_374_155_5,
    0.001_384_365_3,
];

const _: () = assert!(EXP_C[0] == 1.0);

/// `e^x` lane-wise.
///
/// Range reduction `x = n ln 2 + r` with `n = round(x log2 e)`, `|r| <= ln2 / 2` (`r` computed
/// with two FMAs against the split `ln 2`, the first of which is exact, or, without a fused
/// multiply-add, against the split with a short high part, whose product and difference are
/// exact); then
/// `e^x = 2^n * p(r)` with the degree-6 polynomial [`EXP_C`] (Horner's scheme in FMAs, or,
/// without them, `1 + r + r^2 q` with `1 + r` split exactly) and `2^n` applied by
/// [`Lanes::mul_pow2`]. Overflow gives `inf`, underflow `0` (or subnormals), `exp(-inf) = 0`,
/// `exp(inf) = inf`, and NaN passes through.
///
/// Accuracy: see [`super::EXP_MAX_REL_ERR`].
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn exp<V: Lanes>(x: V) -> V {
    // SAFETY: only lane arithmetic; the caller guarantees the CPU runs `V`'s instructions.
    unsafe {
        // `min(HI, x)` and `max(LO, .)` return their second operand on NaN, so NaN survives.
        let x = V::splat(EXP_LO).max(V::splat(EXP_HI).min(x));
        let n = x.mul(V::splat(LOG2_E)).round();
        let r = if V::FUSED {
            let r = n.mul_add(V::splat(-LN2_HI), x);
            n.mul_add(V::splat(-LN2_LO), r)
        } else {
            let r = x.sub(n.mul(V::splat(LN2_HI_SHORT)));
            r.sub(n.mul(V::splat(LN2_LO_SHORT)))
        };
        let p = if V::FUSED {
            let mut p = V::splat(EXP_C[5]);
            for &c in EXP_C[..5].iter().rev() {
                p = p.mul_add(r, V::splat(c));
            }
            p.mul_add(r, V::splat(1.0))
        } else {
            // The same polynomial as `1 + r + r^2 q`, `q = C2 + r (C3 + ...)`: the last step of
            // Horner's scheme would round `r p` before adding 1, so instead `1 + r` is split
            // exactly into `hi + lo` (Fast2Sum, `|r| < 1`) and only the small `lo + r^2 q` rounds
            // before the final sum.
            let mut q = V::splat(EXP_C[5]);
            for &c in EXP_C[1..5].iter().rev() {
                q = q.mul_add(r, V::splat(c));
            }
            let one = V::splat(1.0);
            let hi = one.add(r);
            let lo = one.sub(hi).add(r);
            hi.add(lo.add(r.mul(r).mul(q)))
        };
        p.mul_pow2(n)
    }
}

/// `1 / (1 + e^-x)` lane-wise, as `num / (1 + e)` with `e = e^-|x|` (never overflows) and
/// `num = 1` for `x >= 0`, `num = e` for `x < 0`: one division, so one rounding after `exp`.
/// Accuracy: see [`super::SIGMOID_MAX_REL_ERR`].
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn sigmoid<V: Lanes>(x: V) -> V {
    // SAFETY: only lane arithmetic; the caller guarantees the CPU runs `V`'s instructions.
    unsafe {
        let one = V::splat(1.0);
        let e = exp(x.abs().neg());
        V::where_nonneg(x, one, e).div(one.add(e))
    }
}

// The maps are selected by a `const OP: u8` rather than passed as closures: a closure is an
// ordinary function without the wrapper's target features, and once `exp` is inlined into it
// LLVM stops inlining it into the loop, which leaves every lane method an out-of-line call.
// A const parameter keeps the whole chain `#[inline(always)]`, and the `match` on it folds away.
const NEG: u8 = 0;
const SQUARE: u8 = 1;
const SQRT: u8 = 2;
const EXP: u8 = 3;
const RELU: u8 = 4;
const RELU_MASK: u8 = 5;
const SIGMOID: u8 = 6;
/// `alpha * x`, with `alpha` splat in the `param` register.
const SCALE: u8 = 7;
const ADD: u8 = 16;
const SUB: u8 = 17;
const MUL: u8 = 18;
const DIV: u8 = 19;
const RELU_BACKWARD: u8 = 20;
const SIGMOID_BACKWARD: u8 = 21;

/// The one-argument lane map `OP` (`param` is the splat `alpha` of [`SCALE`], unused otherwise).
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
unsafe fn apply1<V: Lanes, const OP: u8>(v: V, param: V) -> V {
    // SAFETY: lane arithmetic only; the CPU support is the caller's guarantee.
    unsafe {
        match OP {
            NEG => v.neg(),
            SQUARE => v.mul(v),
            SQRT => v.sqrt(),
            EXP => exp(v),
            // `max(v, 0)` is `v > 0 ? v : 0`: NaN and -0 give +0, as in the scalar path.
            RELU => v.max(V::splat(0.0)),
            RELU_MASK => V::where_positive(v, V::splat(1.0)),
            SIGMOID => sigmoid(v),
            SCALE => param.mul(v),
            _ => unreachable!("no one-argument lane map {OP}"),
        }
    }
}

/// The two-argument lane map `OP`.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
unsafe fn apply2<V: Lanes, const OP: u8>(a: V, b: V) -> V {
    // SAFETY: lane arithmetic only; the CPU support is the caller's guarantee.
    unsafe {
        match OP {
            ADD => a.add(b),
            SUB => a.sub(b),
            MUL => a.mul(b),
            DIV => a.div(b),
            RELU_BACKWARD => V::where_positive(b, a),
            SIGMOID_BACKWARD => a.mul(b).mul(V::splat(1.0).sub(b)),
            _ => unreachable!("no two-argument lane map {OP}"),
        }
    }
}

/// `out[i] = apply1::<OP>(x[i])` over full registers, then one masked register for the tail.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
unsafe fn map1<V: Lanes, const OP: u8>(x: &[f32], out: &mut [f32], param: V) {
    let n = x.len().min(out.len());
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    // SAFETY: full registers read and write `[i, i + N)` with `i + N <= n`; the tail reads and
    // writes `[i, n)`; both slices hold at least `n` values.
    unsafe {
        while i + V::N <= n {
            apply1::<V, OP>(V::load(xp.add(i)), param).store(op.add(i));
            i += V::N;
        }
        if i < n {
            let k = n - i;
            apply1::<V, OP>(V::load_part(xp.add(i), k), param).store_part(op.add(i), k);
        }
    }
}

/// `out[i] = apply2::<OP>(a[i], b[i])`, like [`map1`].
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
unsafe fn map2<V: Lanes, const OP: u8>(a: &[f32], b: &[f32], out: &mut [f32]) {
    let n = a.len().min(b.len()).min(out.len());
    let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    // SAFETY: as in `map1`, every access lies in `[0, n)` of slices holding at least `n` values.
    unsafe {
        while i + V::N <= n {
            apply2::<V, OP>(V::load(ap.add(i)), V::load(bp.add(i))).store(op.add(i));
            i += V::N;
        }
        if i < n {
            let k = n - i;
            let (va, vb) = (V::load_part(ap.add(i), k), V::load_part(bp.add(i), k));
            apply2::<V, OP>(va, vb).store_part(op.add(i), k);
        }
    }
}

/// `out[i] = op(x[i])`.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn unary<V: Lanes>(op: Unary, x: &[f32], out: &mut [f32]) {
    // SAFETY: `map1` needs only the CPU support, which the caller guarantees.
    unsafe {
        let unused = V::splat(0.0);
        match op {
            Unary::Neg => map1::<V, NEG>(x, out, unused),
            Unary::Square => map1::<V, SQUARE>(x, out, unused),
            Unary::Sqrt => map1::<V, SQRT>(x, out, unused),
            Unary::Exp => map1::<V, EXP>(x, out, unused),
            Unary::Relu => map1::<V, RELU>(x, out, unused),
            Unary::ReluMask => map1::<V, RELU_MASK>(x, out, unused),
            Unary::Sigmoid => map1::<V, SIGMOID>(x, out, unused),
        }
    }
}

/// `out[i] = op(a[i], b[i])`.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn binary<V: Lanes>(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    // SAFETY: `map2` needs only the CPU support, which the caller guarantees.
    unsafe {
        match op {
            Binary::Add => map2::<V, ADD>(a, b, out),
            Binary::Sub => map2::<V, SUB>(a, b, out),
            Binary::Mul => map2::<V, MUL>(a, b, out),
            Binary::Div => map2::<V, DIV>(a, b, out),
            Binary::ReluBackward => map2::<V, RELU_BACKWARD>(a, b, out),
            Binary::SigmoidBackward => map2::<V, SIGMOID_BACKWARD>(a, b, out),
        }
    }
}

/// `out[i] = alpha * x[i]`.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn scale<V: Lanes>(alpha: f32, x: &[f32], out: &mut [f32]) {
    // SAFETY: `map1` needs only the CPU support, which the caller guarantees.
    unsafe { map1::<V, SCALE>(x, out, V::splat(alpha)) }
}

/// `y[i] = fma(alpha, x[i], y[i])`: one rounding per value.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn axpy<V: Lanes>(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    // SAFETY: every access lies in `[0, n)` of slices holding at least `n` values; the CPU
    // support is the caller's guarantee.
    unsafe {
        let a = V::splat(alpha);
        while i + V::N <= n {
            a.mul_add(V::load(xp.add(i)), V::load(yp.add(i)))
                .store(yp.add(i));
            i += V::N;
        }
        if i < n {
            let k = n - i;
            a.mul_add(V::load_part(xp.add(i), k), V::load_part(yp.add(i), k))
                .store_part(yp.add(i), k);
        }
    }
}

/// `K` sums of scaled, shifted copies of `src` (one-dimensional correlations sharing their
/// shifts): `out[j n + i] = fma(w[t s + j], src[off_t + i], ...)` over the terms `t` in order,
/// onto `out[j n + i]`, for `j < K`, `i < n`, `s` the weights' stride. Each loaded run of `src`
/// serves all `K` outputs; `R` registers of each output stay loaded across all the terms.
///
/// # Safety
/// The CPU must support the path's instructions; `off_t + n <= src.len()` for every term,
/// `out` holds `K n` values and `weights` `(terms - 1) s + K`.
#[inline(always)]
pub(super) unsafe fn shifted_sums<V: Lanes, const K: usize, const R: usize>(
    offsets: &[usize],
    weights: &[f32],
    stride: usize,
    src: &[f32],
    out: &mut [f32],
    n: usize,
) {
    let (sp, op, wp) = (src.as_ptr(), out.as_mut_ptr(), weights.as_ptr());
    let mut i = 0;
    // SAFETY: `out` accesses lie in `[j n, j n + n)`, `src` accesses in `[off, off + n)` and
    // weight reads below `(terms - 1) s + K`, inside the slices by the caller's guarantee (in
    // the tail, the lanes past `n` are masked off: their memory is neither read nor written,
    // and their pointers are only formed, with `wrapping_add`); the CPU support is the
    // caller's guarantee.
    unsafe {
        while i + R * V::N <= n {
            let mut acc: [[V; R]; K] = std::array::from_fn(|j| {
                std::array::from_fn(|r| V::load(op.add(j * n + i + r * V::N)))
            });
            for (t, &off) in offsets.iter().enumerate() {
                let p = sp.add(off + i);
                let v: [V; R] = std::array::from_fn(|r| V::load(p.add(r * V::N)));
                for (j, row) in acc.iter_mut().enumerate() {
                    let w = V::splat(*wp.add(t * stride + j));
                    for (a, &x) in row.iter_mut().zip(&v) {
                        *a = w.mul_add(x, *a);
                    }
                }
            }
            for (j, row) in acc.into_iter().enumerate() {
                for (r, a) in row.into_iter().enumerate() {
                    a.store(op.add(j * n + i + r * V::N));
                }
            }
            i += R * V::N;
        }
        if i < n {
            // The last `n - i < R N` values: `R` registers again, each loaded (without a
            // branch) only in the lanes that exist, so that the tail, too, keeps `R`
            // independent sums in flight.
            let lanes: [usize; R] =
                std::array::from_fn(|r| (n - i).saturating_sub(r * V::N).min(V::N));
            let mut acc: [[V; R]; K] = std::array::from_fn(|j| {
                std::array::from_fn(|r| {
                    V::load_part(op.wrapping_add(j * n + i + r * V::N), lanes[r])
                })
            });
            for (t, &off) in offsets.iter().enumerate() {
                let p = sp.wrapping_add(off + i);
                let v: [V; R] =
                    std::array::from_fn(|r| V::load_part(p.wrapping_add(r * V::N), lanes[r]));
                for (j, row) in acc.iter_mut().enumerate() {
                    let w = V::splat(*wp.add(t * stride + j));
                    for (a, &x) in row.iter_mut().zip(&v) {
                        *a = w.mul_add(x, *a);
                    }
                }
            }
            for (j, row) in acc.into_iter().enumerate() {
                for (r, a) in row.into_iter().enumerate() {
                    a.store_part(op.wrapping_add(j * n + i + r * V::N), lanes[r]);
                }
            }
        }
    }
}

/// [`shifted_sums`] for any number of outputs `k = weights.len() / offsets.len()`, in groups of
/// at most four.
///
/// # Safety
/// As for [`shifted_sums`], with `out` holding `k n` values.
#[inline(always)]
pub(super) unsafe fn shifted_sum<V: Lanes>(
    offsets: &[usize],
    weights: &[f32],
    src: &[f32],
    out: &mut [f32],
) {
    if offsets.is_empty() {
        return;
    }
    let k = weights.len() / offsets.len();
    let n = out.len() / k.max(1);
    for j0 in (0..k).step_by(4) {
        let (w, o) = (&weights[j0..], &mut out[j0 * n..]);
        // SAFETY: forwarded; each group reads weights `t k + j0 + j` and writes its own rows.
        unsafe {
            match k - j0 {
                1 => shifted_sums::<V, 1, 8>(offsets, w, k, src, o, n),
                2 => shifted_sums::<V, 2, 4>(offsets, w, k, src, o, n),
                3 => shifted_sums::<V, 3, 3>(offsets, w, k, src, o, n),
                _ => shifted_sums::<V, 4, 2>(offsets, w, k, src, o, n),
            }
        }
    }
}

/// Combines the accumulators as a fixed pairwise tree, then the lanes.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
unsafe fn fold_acc<V: Lanes>(acc: [V; ACC]) -> f32 {
    // SAFETY: lane arithmetic only; the CPU support is the caller's guarantee.
    unsafe {
        let q = [
            acc[0].add(acc[1]),
            acc[2].add(acc[3]),
            acc[4].add(acc[5]),
            acc[6].add(acc[7]),
        ];
        q[0].add(q[1]).add(q[2].add(q[3])).sum_lanes()
    }
}

/// `sum_i a[i]`: value `i` of each block of `ACC * N` goes to accumulator `(i / N) % ACC`, lane
/// `i % N`; the remaining full registers go to accumulator 0 and the masked tail to accumulator 1.
/// The pattern depends only on the length, so the result does too.
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn sum<V: Lanes>(a: &[f32]) -> f32 {
    let n = a.len();
    let p = a.as_ptr();
    let mut i = 0;
    // SAFETY: every read lies in `[0, n)`; the CPU support is the caller's guarantee.
    unsafe {
        let mut acc = [V::splat(0.0); ACC];
        while i + ACC * V::N <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                *s = s.add(V::load(p.add(i + j * V::N)));
            }
            i += ACC * V::N;
        }
        while i + V::N <= n {
            acc[0] = acc[0].add(V::load(p.add(i)));
            i += V::N;
        }
        if i < n {
            acc[1] = acc[1].add(V::load_part(p.add(i), n - i));
        }
        fold_acc(acc)
    }
}

/// `sum_i a[i] b[i]` with fused multiply-adds, accumulated in the pattern of [`sum`].
///
/// # Safety
/// The CPU must support the path's instructions.
#[inline(always)]
pub(super) unsafe fn dot<V: Lanes>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every read lies in `[0, n)` of both slices; the CPU support is the caller's
    // guarantee.
    unsafe {
        let mut acc = [V::splat(0.0); ACC];
        while i + ACC * V::N <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let k = i + j * V::N;
                *s = V::load(ap.add(k)).mul_add(V::load(bp.add(k)), *s);
            }
            i += ACC * V::N;
        }
        while i + V::N <= n {
            acc[0] = V::load(ap.add(i)).mul_add(V::load(bp.add(i)), acc[0]);
            i += V::N;
        }
        if i < n {
            let k = n - i;
            acc[1] = V::load_part(ap.add(i), k).mul_add(V::load_part(bp.add(i), k), acc[1]);
        }
        fold_acc(acc)
    }
}
