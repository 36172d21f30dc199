//! The scalar path: plain loops, generic over the element type. Also the f64 path everywhere.

use crate::element::{Binary, Unary};
use crate::Element;

/// `1 / (1 + e^-x)`, written so neither branch overflows.
#[inline]
pub fn sigmoid<T: Element>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

#[inline]
pub fn unary_one<T: Element>(op: Unary, x: T) -> T {
    match op {
        Unary::Neg => -x,
        Unary::Square => x * x,
        Unary::Sqrt => x.sqrt(),
        Unary::Exp => x.exp(),
        Unary::Relu => {
            if x > T::ZERO {
                x
            } else {
                T::ZERO
            }
        }
        Unary::ReluMask => {
            if x > T::ZERO {
                T::ONE
            } else {
                T::ZERO
            }
        }
        Unary::Sigmoid => sigmoid(x),
    }
}

#[inline]
pub fn binary_one<T: Element>(op: Binary, a: T, b: T) -> T {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::ReluBackward => {
            if b > T::ZERO {
                a
            } else {
                T::ZERO
            }
        }
        Binary::SigmoidBackward => a * b * (T::ONE - b),
    }
}

pub fn unary<T: Element>(op: Unary, x: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = unary_one(op, v);
    }
}

pub fn binary<T: Element>(op: Binary, a: &[T], b: &[T], out: &mut [T]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = binary_one(op, x, y);
    }
}

pub fn scale<T: Element>(alpha: T, x: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = alpha * v;
    }
}

/// `out[j n + i] += sum_t w[t k + j] src[off_t + i]` for the `k = w.len() / offsets.len()`
/// outputs of `n = out.len() / k` values, the terms in order.
///
/// # Panics
/// If a term reaches past `src`.
pub fn shifted_sum<T: Element>(offsets: &[usize], weights: &[T], src: &[T], out: &mut [T]) {
    if offsets.is_empty() {
        return;
    }
    let k = weights.len() / offsets.len();
    let n = out.len() / k.max(1);
    for (t, &off) in offsets.iter().enumerate() {
        let x = &src[off..off + n];
        for (row, &w) in out
            .chunks_exact_mut(n.max(1))
            .zip(&weights[t * k..(t + 1) * k])
        {
            for (o, &v) in row.iter_mut().zip(x) {
                *o += w * v;
            }
        }
    }
}

pub fn axpy<T: Element>(alpha: T, x: &[T], y: &mut [T]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// Sum with four interleaved accumulators (a fixed pattern, so a fixed result).
pub fn sum<T: Element>(a: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let mut chunks = a.chunks_exact(4);
    for c in &mut chunks {
        for j in 0..4 {
            acc[j] += c[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &v in chunks.remainder() {
        s += v;
    }
    s
}

/// Dot product with four interleaved accumulators.
pub fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}
