//! Gradients do not depend on the number of threads: bit-identical in pools of 1 and 2.

mod common;

use autograd::check::random;
use autograd::prelude::*;
use core_tensor::{Element, Tensor};

/// Gradient of a GradCon-style loss (MSE plus the cosine alignment of a decoder gradient) with
/// respect to every parameter.
fn gradients<T: Element>(params: &[Tensor<T>], x: &Tensor<T>, r: &Tensor<T>) -> Vec<Tensor<T>> {
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let j = common::tiny_gradcon_loss(&p, x, r);
    autograd::grad_tensors(j, &p).unwrap()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn bits_equal<T: Element>() {
    let shapes: [&[usize]; 4] = [&[8, 3, 4, 4], &[8], &[8, 3, 4, 4], &[3]];
    let params: Vec<Tensor<T>> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| random(s, k as u64, -0.3, 0.3).cast())
        .collect();
    let x: Tensor<T> = random(&[4, 3, 16, 16], 9, 0.0, 1.0).cast();
    let r: Tensor<T> = random(&[8, 3, 4, 4], 10, -1.0, 1.0).cast();
    let one = in_pool(1, || gradients(&params, &x, &r));
    let two = in_pool(2, || gradients(&params, &x, &r));
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a.as_bytes(), b.as_bytes());
    }
}

#[test]
fn identical_bits_with_one_and_two_threads_f32() {
    bits_equal::<f32>();
}

#[test]
fn identical_bits_with_one_and_two_threads_f64() {
    bits_equal::<f64>();
}
