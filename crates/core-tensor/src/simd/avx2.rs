//! The avx2 path (placeholder delegating to the portable loops until the intrinsics land).

use super::scalar;
use crate::element::{Binary, Unary};

pub unsafe fn unary(op: Unary, x: &[f32], out: &mut [f32]) {
    scalar::unary(op, x, out)
}
pub unsafe fn binary(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    scalar::binary(op, a, b, out)
}
pub unsafe fn scale(alpha: f32, x: &[f32], out: &mut [f32]) {
    scalar::scale(alpha, x, out)
}
pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    scalar::axpy(alpha, x, y)
}
pub unsafe fn sum(a: &[f32]) -> f32 {
    scalar::sum(a)
}
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    scalar::dot(a, b)
}
