//! The scalar types a tensor holds: `f32` (models) and `f64` (finite-difference checks).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use bytemuck::Pod;

use crate::Isa;

/// A floating-point element type with the vector kernels the tensor operations are built from.
///
/// The vector kernels take the [`Isa`] to run on; `f32` dispatches to SIMD code, `f64` runs the
/// scalar loops on every path (its use is exactness, not speed). The two implementations live
/// with the kernels they call, in [`crate::simd`], so that this module imports none of them. Slices given to one call must
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
