//! Vector kernels: the scalar loops, the portable SIMD path and the x86-64 SIMD paths, chosen by
//! an [`Isa`] value.
//!
//! Every f32 entry point here checks lengths, checks that the CPU supports the named path
//! (running AVX code on a CPU without it would be undefined behaviour), records the call for
//! [`Isa::calls`], then hands the slices to the path's implementation. Reductions are split into
//! fixed chunks of [`REDUCE_CHUNK`] values whose partial results are combined in order, so a
//! result never depends on how many threads computed the chunks.
//!
//! The SIMD paths share one set of loop bodies (`lanes`), generic over the register type: the
//! AVX2 and AVX-512 paths compile them inside their own `#[target_feature]` wrappers, the
//! portable path (`portable`, the `wide` crate) for whatever the build's target has.

use rayon::prelude::*;

use crate::element::{Binary, Unary};
use crate::{Element, Isa};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod lanes;
mod portable;
pub mod scalar;

/// Values per reduction chunk: partial sums of this many values are combined in a fixed order.
pub const REDUCE_CHUNK: usize = 4096;
/// Below this many values a reduction runs on the calling thread only.
///
/// The measured crossover (`benches/benches/elementwise.rs`, group `crossover`: the same
/// 4096-value chunks summed on the calling thread vs split by rayon over 2 cores, on a 2-core
/// host shared with other jobs): rayon lost at every size up to `2^18` (`5.2` vs `3.1` Gelem/s at
/// `2^18`) and won first at `2^19` (`2.9` vs `8.0` Gelem/s); at `2^20` the two tied within
/// the noise of the shared host.
pub const PAR_REDUCE_MIN: usize = 1 << 19;
/// Below this many values an elementwise kernel runs on the calling thread only.
///
/// Measured like [`PAR_REDUCE_MIN`]. Under load, `exp` on rayon was slower up to `2^18` values
/// and faster from `2^19`. With the host quieter (`-- crossover --quick`): `exp` wins from
/// `2^17` (`3.2` vs `2.5` Gelem/s), `add` (memory-bound) loses at `2^17` (`3.4` vs `5.1`) and
/// wins from `2^18` (`3.4` vs `2.2`), so parallel maps start at `2^18`; the activations of the
/// GradCon model's first and last layers (about `4e5` values at batch 64) are above it.
pub const PAR_MAP_MIN: usize = 1 << 18;

/// Bound on the relative error of `exp` against `f64::exp` for inputs whose result is a normal
/// f32. Measured over every f32 in `[-87, 88]` (2.2e9 values): AVX2 and AVX-512 `8.906e-8`
/// (`0.75 eps`, worst at `x = 5.2011814`), portable on x86-64 (SSE2, no fused multiply-add, so
/// its own range reduction and final sum, see `lanes::exp`) `7.950e-8` (`0.67 eps`, worst at
/// `x = 5.2005806`), scalar (`f32::exp`) `5.96e-8`. The portable path with a fused
/// multiply-add (aarch64) runs the AVX paths' formula, whose bound this is; it is not measured
/// here (only x86-64 is built and tested).
pub const EXP_MAX_REL_ERR: f64 = 9.0e-8;
/// Bound on the relative error of `sigmoid` against the f64 sigmoid. Measured over every f32 in
/// `[-87, 88]`: AVX2 and AVX-512 `1.778e-7` (`1.49 eps`, worst at `x = -5.2631454`), portable
/// on x86-64 (SSE2) `1.774e-7` (worst at `x = -10.391359`), scalar `1.769e-7`.
pub const SIGMOID_MAX_REL_ERR: f64 = 1.8e-7;

fn enter(isa: Isa) {
    assert!(
        isa.is_supported(),
        "the {isa} kernels cannot run on this CPU"
    );
    isa.record();
}

/// `$f($args)` on the path `$isa`: `scalar::$f`, the shared body `lanes::$f` on the portable
/// register, or the `avx2` / `avx512` wrapper of it. Every caller has run [`enter`] and checked
/// the bounds its kernel's `# Safety` section states beyond the CPU's support.
macro_rules! on_path {
    ($isa:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $isa {
            Isa::Scalar => scalar::$f($($arg),*),
            // SAFETY: the portable lanes use only instructions of the build's target, which
            // every CPU running the binary has; the bounds are the caller's (see above).
            Isa::Portable => unsafe { lanes::$f::<portable::Reg>($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `enter` checked that the CPU supports AVX2 and FMA; the bounds are the
            // caller's (see above).
            Isa::Avx2 => unsafe { avx2::$f($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `enter` checked that the CPU supports AVX-512F; the bounds are the
            // caller's (see above).
            Isa::Avx512 => unsafe { avx512::$f($($arg),*) },
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("`enter` admits no x86 path on this target"),
        }
    };
}

/// Sums fixed chunks with `kernel`, then adds the partials in chunk order.
pub(crate) fn chunked_sum<T: Element>(a: &[T], kernel: impl Fn(&[T]) -> T + Sync) -> T {
    let partials: Vec<T> = if a.len() >= PAR_REDUCE_MIN {
        a.par_chunks(REDUCE_CHUNK).map(&kernel).collect()
    } else {
        a.chunks(REDUCE_CHUNK).map(&kernel).collect()
    };
    partials.into_iter().fold(T::ZERO, |acc, p| acc + p)
}

/// Dot product over fixed chunks, partials added in chunk order.
pub(crate) fn chunked_dot<T: Element>(
    a: &[T],
    b: &[T],
    kernel: impl Fn(&[T], &[T]) -> T + Sync,
) -> T {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let partials: Vec<T> = if a.len() >= PAR_REDUCE_MIN {
        a.par_chunks(REDUCE_CHUNK)
            .zip(b.par_chunks(REDUCE_CHUNK))
            .map(|(x, y)| kernel(x, y))
            .collect()
    } else {
        a.chunks(REDUCE_CHUNK)
            .zip(b.chunks(REDUCE_CHUNK))
            .map(|(x, y)| kernel(x, y))
            .collect()
    };
    partials.into_iter().fold(T::ZERO, |acc, p| acc + p)
}

/// Runs `kernel` over matching chunks of the inputs and output, in parallel when large.
fn map_chunks(x: &[f32], out: &mut [f32], kernel: impl Fn(&[f32], &mut [f32]) + Sync + Send) {
    if out.len() >= PAR_MAP_MIN {
        x.par_chunks(REDUCE_CHUNK)
            .zip(out.par_chunks_mut(REDUCE_CHUNK))
            .for_each(|(x, o)| kernel(x, o));
    } else {
        kernel(x, out)
    }
}

fn unary_f32(isa: Isa, op: Unary, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "unary {op:?}: lengths differ");
    enter(isa);
    map_chunks(x, out, |x, o| on_path!(isa, unary(op, x, o)))
}

fn binary_f32(isa: Isa, op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "binary {op:?}: lengths differ"
    );
    enter(isa);
    let run = |a: &[f32], b: &[f32], o: &mut [f32]| on_path!(isa, binary(op, a, b, o));
    if out.len() >= PAR_MAP_MIN {
        a.par_chunks(REDUCE_CHUNK)
            .zip(b.par_chunks(REDUCE_CHUNK))
            .zip(out.par_chunks_mut(REDUCE_CHUNK))
            .for_each(|((a, b), o)| run(a, b, o));
    } else {
        run(a, b, out)
    }
}

fn scale_f32(isa: Isa, alpha: f32, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "scale: lengths differ");
    enter(isa);
    map_chunks(x, out, |x, o| on_path!(isa, scale(alpha, x, o)))
}

fn axpy_f32(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    enter(isa);
    map_chunks(x, y, |x, y| on_path!(isa, axpy(alpha, x, y)))
}

/// `out[j n + i] += sum_t w[t k + j] src[off_t + i]` for `k = weights.len() / offsets.len()`
/// outputs of `n = out.len() / k` values (on the calling thread: the callers are already split
/// across threads).
///
/// # Panics
/// If a term reaches past `src`, or the lengths do not divide as stated.
fn shifted_sum_f32(isa: Isa, offsets: &[usize], weights: &[f32], src: &[f32], out: &mut [f32]) {
    if offsets.is_empty() {
        return;
    }
    let k = weights.len() / offsets.len();
    assert!(
        k > 0 && k * offsets.len() == weights.len() && out.len().is_multiple_of(k),
        "shifted_sum: {} weights, {} offsets, {} outputs",
        weights.len(),
        offsets.len(),
        out.len()
    );
    let reach = offsets.iter().max().map_or(0, |m| m + out.len() / k);
    assert!(
        reach <= src.len(),
        "shifted_sum: a term reaches past the source"
    );
    enter(isa);
    crate::flops::add(
        crate::flops::Site::ShiftedSum,
        weights.len() * (out.len() / k),
    );
    on_path!(isa, shifted_sum(offsets, weights, src, out))
}

fn sum_f32(isa: Isa, a: &[f32]) -> f32 {
    enter(isa);
    chunked_sum(a, |c| on_path!(isa, sum(c)))
}

fn dot_f32(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    enter(isa);
    crate::flops::add(crate::flops::Site::Dot, a.len());
    chunked_dot(a, b, |x, y| on_path!(isa, dot(x, y)))
}

// The element types' kernels: `f32` on the named path, `f64` on the scalar loops (recorded
// under the named path).

macro_rules! impl_float_basics {
    ($t:ty) => {
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const NAME: &'static str = stringify!($t);
        #[inline]
        fn from_f64(v: f64) -> Self {
            v as $t
        }
        #[inline]
        fn to_f64(self) -> f64 {
            self as f64
        }
        #[inline]
        fn sqrt(self) -> Self {
            <$t>::sqrt(self)
        }
        #[inline]
        fn exp(self) -> Self {
            <$t>::exp(self)
        }
        #[inline]
        fn max(self, other: Self) -> Self {
            <$t>::max(self, other)
        }
        #[inline]
        fn is_finite(self) -> bool {
            <$t>::is_finite(self)
        }
    };
}

impl Element for f32 {
    impl_float_basics!(f32);

    fn unary(isa: Isa, op: Unary, x: &[f32], out: &mut [f32]) {
        unary_f32(isa, op, x, out)
    }
    fn binary(isa: Isa, op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
        binary_f32(isa, op, a, b, out)
    }
    fn scale(isa: Isa, alpha: f32, x: &[f32], out: &mut [f32]) {
        scale_f32(isa, alpha, x, out)
    }
    fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
        axpy_f32(isa, alpha, x, y)
    }
    fn sum_slice(isa: Isa, a: &[f32]) -> f32 {
        sum_f32(isa, a)
    }
    fn dot_slice(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
        dot_f32(isa, a, b)
    }
    fn shifted_sum(isa: Isa, offsets: &[usize], weights: &[f32], src: &[f32], out: &mut [f32]) {
        shifted_sum_f32(isa, offsets, weights, src, out)
    }
}

impl Element for f64 {
    impl_float_basics!(f64);

    fn unary(isa: Isa, op: Unary, x: &[f64], out: &mut [f64]) {
        isa.record();
        scalar::unary(op, x, out)
    }
    fn binary(isa: Isa, op: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
        isa.record();
        scalar::binary(op, a, b, out)
    }
    fn scale(isa: Isa, alpha: f64, x: &[f64], out: &mut [f64]) {
        isa.record();
        scalar::scale(alpha, x, out)
    }
    fn axpy(isa: Isa, alpha: f64, x: &[f64], y: &mut [f64]) {
        isa.record();
        scalar::axpy(alpha, x, y)
    }
    fn sum_slice(isa: Isa, a: &[f64]) -> f64 {
        isa.record();
        chunked_sum(a, scalar::sum)
    }
    fn shifted_sum(isa: Isa, offsets: &[usize], weights: &[f64], src: &[f64], out: &mut [f64]) {
        isa.record();
        scalar::shifted_sum(offsets, weights, src, out)
    }
    fn dot_slice(isa: Isa, a: &[f64], b: &[f64]) -> f64 {
        isa.record();
        chunked_dot(a, b, scalar::dot)
    }
}
