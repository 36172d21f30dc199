//! Per-example gradients from one batched pass equal N separate batch-of-one passes.

use autograd::check::random;
use autograd::prelude::*;
use autograd::{per_example, PerExample, Scaling};
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Element, Tensor};

const N: usize = 3;

/// conv2d -> ReLU -> conv_transpose2d -> ReLU -> conv_transpose2d -> sigmoid, batch-mean MSE.
fn loss<'t, T: Element>(p: &[Var<'t, T>], x: Var<'t, T>) -> autograd::Result<Var<'t, T>> {
    let h = x
        .conv2d(&p[0], Some(&p[1]), Conv2dSpec::new(2, 1))?
        .relu()?;
    let h = h
        .conv_transpose2d(&p[2], Some(&p[3]), ConvTranspose2dSpec::new(2, 1, 0))?
        .relu()?;
    let y = h
        .conv_transpose2d(&p[4], Some(&p[5]), ConvTranspose2dSpec::new(1, 1, 0))?
        .sigmoid()?;
    y.mse_loss(&x)
}

fn setup<T: Element>() -> (Vec<Tensor<T>>, Tensor<T>) {
    let shapes: [&[usize]; 6] = [
        &[3, 2, 3, 3],
        &[3],
        &[3, 4, 3, 3],
        &[4],
        &[4, 2, 3, 3],
        &[2],
    ];
    let params = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| random(s, k as u64, -0.5, 0.5).cast())
        .collect();
    (params, random(&[N, 2, 7, 7], 99, 0.0, 1.0).cast())
}

fn example<T: Element>(x: &Tensor<T>, n: usize) -> Tensor<T> {
    let per = x.len() / N;
    let mut s = x.shape().to_vec();
    s[0] = 1;
    Tensor::from_vec(x.data()[n * per..(n + 1) * per].to_vec(), &s).unwrap()
}

/// Each example's own gradient, from a batch-of-one pass.
fn alone<T: Element>(params: &[Tensor<T>], x: &Tensor<T>, n: usize) -> Vec<Tensor<T>> {
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let l = loss(&p, tape.constant(example(x, n))).unwrap();
    autograd::grad_tensors(l, &p).unwrap()
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-30)
}

fn compare_all_modes<T: Element>(abs_tol: f64, rel_tol: f64) {
    let (params, x) = setup::<T>();
    let refs: Vec<Tensor<T>> = params
        .iter()
        .enumerate()
        .map(|(k, t)| random(t.shape(), 40 + k as u64, -1.0, 1.0).cast())
        .collect();
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let l = loss(&p, tape.constant(x.clone())).unwrap();
    let full = per_example(l, &p, PerExample::Full, Scaling::BatchOfOne).unwrap();
    let both = per_example(l, &p, PerExample::DotAndSqNorm(&refs), Scaling::BatchOfOne).unwrap();
    let dots = per_example(l, &p, PerExample::Dot(&refs), Scaling::BatchOfOne).unwrap();
    let norms = per_example(l, &p, PerExample::SqNorm, Scaling::BatchOfOne).unwrap();
    for n in 0..N {
        let own = alone(&params, &x, n);
        for k in 0..params.len() {
            let f = full[k].full.as_ref().unwrap();
            let fk = example_of(f, n);
            let close = fk.data().iter().zip(own[k].data()).all(|(a, b)| {
                (a.to_f64() - b.to_f64()).abs() <= abs_tol + rel_tol * b.to_f64().abs()
            });
            assert!(close, "param {k} example {n}: {fk:?} vs {:?}", own[k]);
            let dot = own[k].cast::<f64>().dot(&refs[k].cast()).unwrap();
            let sq = own[k].cast::<f64>().sum_sq();
            for (name, got) in [
                ("dot", dots[k].dot.as_ref().unwrap()[n]),
                ("dot of both", both[k].dot.as_ref().unwrap()[n]),
            ] {
                assert!(
                    rel_close(got.to_f64(), dot, rel_tol) || (got.to_f64() - dot).abs() < abs_tol,
                    "{name} param {k} example {n}: {got} vs {dot}"
                );
            }
            for (name, got) in [
                ("sq_norm", norms[k].sq_norm.as_ref().unwrap()[n]),
                ("sq_norm of both", both[k].sq_norm.as_ref().unwrap()[n]),
            ] {
                assert!(
                    rel_close(got.to_f64(), sq, rel_tol) || (got.to_f64() - sq).abs() < abs_tol,
                    "{name} param {k} example {n}: {got} vs {sq}"
                );
            }
        }
    }
    // Only what was asked for is computed.
    assert!(dots[0].full.is_none() && dots[0].sq_norm.is_none());
    assert!(norms[0].dot.is_none() && full[0].dot.is_none());
}

fn example_of<T: Element>(t: &Tensor<T>, n: usize) -> Tensor<T> {
    let per = t.len() / t.shape()[0];
    Tensor::from_vec(t.data()[n * per..(n + 1) * per].to_vec(), &t.shape()[1..]).unwrap()
}

#[test]
fn equals_batch_of_one_in_f64() {
    compare_all_modes::<f64>(1e-10, 1e-10);
}

#[test]
fn equals_batch_of_one_in_f32() {
    compare_all_modes::<f32>(1e-7, 1e-5);
}

#[test]
fn contributions_sum_to_the_batch_gradient() {
    let (params, x) = setup::<f64>();
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let l = loss(&p, tape.constant(x)).unwrap();
    let per = per_example(l, &p, PerExample::Full, Scaling::Contribution).unwrap();
    let batch = autograd::grad_tensors(l, &p).unwrap();
    for (k, g) in batch.iter().enumerate() {
        let f = per[k].full.as_ref().unwrap();
        let mut sum = Tensor::zeros(g.shape());
        for n in 0..N {
            sum.axpy(1.0, &example_of(f, n)).unwrap();
        }
        assert!(sum.max_abs_diff(g).unwrap() < 1e-12, "param {k}");
    }
}

#[test]
fn rejects_parameters_used_outside_convolutions() {
    let (params, x) = setup::<f64>();
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let l = loss(&p, tape.constant(x)).unwrap();
    let l = l.add(&p[1].sum().unwrap()).unwrap();
    let e = per_example(l, &p[..2], PerExample::SqNorm, Scaling::Contribution).unwrap_err();
    assert!(matches!(e, autograd::Error::Unsupported { .. }), "{e}");
    let bad_refs = vec![Tensor::zeros(&[1])];
    assert!(per_example(
        l,
        &p[..1],
        PerExample::Dot(&bad_refs),
        Scaling::Contribution
    )
    .is_err());
}
