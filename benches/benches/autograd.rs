//! The autograd engine: tape overhead, the GradCon training step with its double backward, and
//! per-example gradient statistics against one ordinary batched backward pass.
//!
//! Shapes are the product's: batch 64 of 1x28x28 images through the eight-layer autoencoder
//! (encoder 4 x conv k4 s2 p2, decoder 4 x transposed conv k4 s2 p 2,1,2,1), f32, alpha 0.03.

use autograd::prelude::*;
use autograd::{per_example, PerExample, Scaling};
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Rng, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};

const BATCH: usize = 64;
const ALPHA: f32 = 0.03;

/// `(weight shape, transposed-convolution padding)` of the eight layers for C = 1.
const LAYERS: [([usize; 4], Option<usize>); 8] = [
    ([32, 1, 4, 4], None),
    ([32, 32, 4, 4], None),
    ([64, 32, 4, 4], None),
    ([64, 64, 4, 4], None),
    ([64, 64, 4, 4], Some(2)),
    ([64, 32, 4, 4], Some(1)),
    ([32, 32, 4, 4], Some(2)),
    ([32, 1, 4, 4], Some(1)),
];

/// PyTorch's default initialisation: uniform in +-1/sqrt(weight.size(1) k k), weight then bias.
fn init(rng: &mut Rng) -> Vec<Tensor<f32>> {
    let mut params = Vec::new();
    for (shape, transposed) in LAYERS {
        let bound = 1.0 / ((shape[1] * shape[2] * shape[3]) as f64).sqrt();
        params.push(Tensor::uniform(&shape, -bound, bound, rng));
        let out = if transposed.is_some() {
            shape[1]
        } else {
            shape[0]
        };
        params.push(Tensor::uniform(&[out], -bound, bound, rng));
    }
    params
}

/// The reconstruction and its batch-mean MSE.
fn reconstruction_mse<'t>(p: &[Var<'t, f32>], x: Var<'t, f32>) -> autograd::Result<Var<'t, f32>> {
    let mut h = x;
    for (l, (_, transposed)) in LAYERS.iter().enumerate() {
        let (w, b) = (&p[2 * l], &p[2 * l + 1]);
        h = match transposed {
            None => h.conv2d(w, Some(b), Conv2dSpec::new(2, 2))?.relu()?,
            Some(pad) => {
                let y = h.conv_transpose2d(w, Some(b), ConvTranspose2dSpec::new(2, *pad, 0))?;
                if l == LAYERS.len() - 1 {
                    y.sigmoid()?
                } else {
                    y.relu()?
                }
            }
        };
    }
    h.mse_loss(&x)
}

/// One GradCon step's gradients: `J = MSE - alpha/4 sum_l cos(dMSE/dW_l, r_l)`, then `dJ/dp`
/// for all 16 parameter tensors.
fn gradcon_grads(
    params: &[Tensor<f32>],
    x: &Tensor<f32>,
    refs: &[Tensor<f32>],
) -> Vec<Tensor<f32>> {
    let tape = Tape::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let xv = tape.constant(x.clone());
    let mse = reconstruction_mse(&p, xv).unwrap();
    let decoder = [p[8], p[10], p[12], p[14]];
    let g = autograd::grad(mse, &decoder, true).unwrap();
    let mut cos = tape.constant(Tensor::scalar(0.0));
    for (gl, rl) in g.iter().zip(refs) {
        cos = cos
            .add(&gl.cosine_similarity(&tape.constant(rl.clone())).unwrap())
            .unwrap();
    }
    let j = mse.add(&cos.scale(-ALPHA / 4.0).unwrap()).unwrap();
    autograd::grad_tensors(j, &p).unwrap()
}

fn tape_overhead(c: &mut Criterion) {
    c.bench_function("tape/100_scalar_ops_plus_backward", |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let x = tape.param(Tensor::scalar(1.5));
            let mut y = x;
            for i in 0..50 {
                y = y.mul(&x).unwrap();
                y = y.add_scalar(i as f32 * 1e-3).unwrap();
            }
            autograd::grad_tensors(y, &[x]).unwrap()
        })
    });
}

fn gradcon_step(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(1);
    let params = init(&mut rng);
    let x = Tensor::uniform(&[BATCH, 1, 28, 28], 0.0, 1.0, &mut rng);
    let refs: Vec<Tensor<f32>> = detector::model::gradient_params()
        .iter()
        .map(|&k| Tensor::normal(params[k].shape(), 0.01, &mut rng))
        .collect();
    let mut group = c.benchmark_group("gradcon_b64");
    group.sample_size(10);
    group.bench_function("forward_double_backward", |b| {
        b.iter(|| gradcon_grads(&params, &x, &refs))
    });
    group.bench_function("batched_backward_mse", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
            let mse = reconstruction_mse(&p, tape.constant(x.clone())).unwrap();
            autograd::grad_tensors(mse, &p).unwrap()
        })
    });
    group.bench_function("per_example_dot_and_norm_decoder", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
            let mse = reconstruction_mse(&p, tape.constant(x.clone())).unwrap();
            let decoder = [p[8], p[10], p[12], p[14]];
            per_example(
                mse,
                &decoder,
                PerExample::DotAndSqNorm(&refs),
                Scaling::BatchOfOne,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, tape_overhead, gradcon_step);
criterion_main!(benches);
