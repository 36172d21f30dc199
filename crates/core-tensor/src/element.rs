//! The scalar types a tensor holds: `f32` (models) and `f64` (finite-difference checks).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use bytemuck::Pod;

use crate::simd;
use crate::Isa;

/// A floating-point element type with the vector kernels the tensor operations are built from.
///
/// The vector kernels take the [`Isa`] to run on; `f32` dispatches to SIMD code, `f64` runs the
/// portable loops on every path (its use is exactness, not speed). Slices given to one call must
/// have equal lengths; the kernels panic otherwise (the tensor methods check shapes first).
pub trait Element:
    Pod
    + Default
    + Debug
    + Display
    + PartialOrd
    + Send
    + Sync
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Short name for messages and file headers (`"f32"`, `"f64"`).
    const NAME: &'static str;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn is_finite(self) -> bool;

    /// `out[i] = op(x[i])`.
    fn unary(isa: Isa, op: Unary, x: &[Self], out: &mut [Self]);
    /// `out[i] = op(a[i], b[i])`.
    fn binary(isa: Isa, op: Binary, a: &[Self], b: &[Self], out: &mut [Self]);
    /// `out[i] = alpha * x[i]`.
    fn scale(isa: Isa, alpha: Self, x: &[Self], out: &mut [Self]);
    /// `y[i] += alpha * x[i]`.
    fn axpy(isa: Isa, alpha: Self, x: &[Self], y: &mut [Self]);
    /// `sum_i a[i]`, in fixed chunks combined in a fixed order.
    fn sum_slice(isa: Isa, a: &[Self]) -> Self;
    /// `sum_i a[i] * b[i]`, in fixed chunks combined in a fixed order.
    fn dot_slice(isa: Isa, a: &[Self], b: &[Self]) -> Self;
    /// Sums of scaled, shifted copies of `src` sharing their shifts:
    /// `out[j n + i] += sum_t weights[t k + j] src[offsets[t] + i]`, the terms in order, for the
    /// `k = weights.len() / offsets.len()` outputs of `n = out.len() / k` values (panics if a
    /// term reaches past `src` or the lengths do not divide so).
    fn shifted_sum(isa: Isa, offsets: &[usize], weights: &[Self], src: &[Self], out: &mut [Self]);
}

/// Elementwise one-argument operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    Neg,
    Square,
    Sqrt,
    Exp,
    Relu,
    /// `1` where `x > 0`, else `0` (the derivative of ReLU, 0 at the kink).
    ReluMask,
    Sigmoid,
}

/// Elementwise two-argument operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    /// `a` where `b > 0`, else `0`: the ReLU backward `gy * mask(x)` in one pass.
    ReluBackward,
    /// `(a b) (1 - b)`: the sigmoid backward `gy * s (1 - s)` from its output `b = s`, in one
    /// pass (rounded after each operation, in that order, on every path).
    SigmoidBackward,
}

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
        simd::unary_f32(isa, op, x, out)
    }
    fn binary(isa: Isa, op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
        simd::binary_f32(isa, op, a, b, out)
    }
    fn scale(isa: Isa, alpha: f32, x: &[f32], out: &mut [f32]) {
        simd::scale_f32(isa, alpha, x, out)
    }
    fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
        simd::axpy_f32(isa, alpha, x, y)
    }
    fn sum_slice(isa: Isa, a: &[f32]) -> f32 {
        simd::sum_f32(isa, a)
    }
    fn dot_slice(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
        simd::dot_f32(isa, a, b)
    }
    fn shifted_sum(isa: Isa, offsets: &[usize], weights: &[f32], src: &[f32], out: &mut [f32]) {
        simd::shifted_sum_f32(isa, offsets, weights, src, out)
    }
}

impl Element for f64 {
    impl_float_basics!(f64);

    fn unary(isa: Isa, op: Unary, x: &[f64], out: &mut [f64]) {
        isa.record();
        simd::scalar::unary(op, x, out)
    }
    fn binary(isa: Isa, op: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
        isa.record();
        simd::scalar::binary(op, a, b, out)
    }
    fn scale(isa: Isa, alpha: f64, x: &[f64], out: &mut [f64]) {
        isa.record();
        simd::scalar::scale(alpha, x, out)
    }
    fn axpy(isa: Isa, alpha: f64, x: &[f64], y: &mut [f64]) {
        isa.record();
        simd::scalar::axpy(alpha, x, y)
    }
    fn sum_slice(isa: Isa, a: &[f64]) -> f64 {
        isa.record();
        simd::chunked_sum(a, simd::scalar::sum)
    }
    fn shifted_sum(isa: Isa, offsets: &[usize], weights: &[f64], src: &[f64], out: &mut [f64]) {
        isa.record();
        simd::scalar::shifted_sum(offsets, weights, src, out)
    }
    fn dot_slice(isa: Isa, a: &[f64], b: &[f64]) -> f64 {
        isa.record();
        simd::chunked_dot(a, b, simd::scalar::dot)
    }
}
