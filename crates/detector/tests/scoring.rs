//! Batched scoring through per-example gradients equals the batch-of-one definition of PAPER.md.

use autograd::prelude::*;
use core_tensor::{Rng, Tensor};
use detector::model::gradcon::{forward, score_batch, COS_EPS};
use detector::model::{gradient_params, Autoencoder};

/// `-L(x) + beta (1/4) sum_l cos(dL(x)/dW_l, r_l)` for one image, as the authors' loop does.
fn score_one(params: &[Tensor<f32>], refs: &[Tensor<f32>], x: Tensor<f32>, beta: f64) -> [f64; 3] {
    let tape = Tape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.param(p.clone())).collect();
    let xv = tape.constant(x);
    let mse = forward(&vars, xv).unwrap().mse_loss(&xv).unwrap();
    let decoder: Vec<_> = gradient_params().iter().map(|&i| vars[i]).collect();
    let grads = autograd::grad_tensors(mse, &decoder).unwrap();
    let cos: f64 = grads
        .iter()
        .zip(refs)
        .map(|(g, r)| {
            let dot = g.dot(r).unwrap() as f64;
            let gn = (g.sum_sq() as f64).sqrt().max(COS_EPS);
            let rn = (r.sum_sq() as f64).sqrt().max(COS_EPS);
            dot / (gn * rn)
        })
        .sum::<f64>()
        / 4.0;
    let l = mse.value().to_scalar().unwrap() as f64;
    [-l + beta * cos, -l, cos]
}

#[test]
fn batched_scores_equal_batch_of_one() {
    for channels in [1, 3] {
        let mut rng = Rng::seed_from_u64(7 + channels as u64);
        let model = Autoencoder::init(channels, &mut rng);
        let refs: Vec<Tensor<f32>> = Autoencoder::grad_layer_shapes(channels)
            .iter()
            .map(|s| Tensor::uniform(s, -1e-3, 1e-3, &mut rng))
            .collect();
        let n = 5;
        let x = Tensor::<f32>::uniform(&[n, channels, 28, 28], 0.0, 1.0, &mut rng);
        let batched = score_batch(&model.params, &refs, &x, 0.12).unwrap();
        let per_image = channels * 28 * 28;
        for i in 0..n {
            let xi = Tensor::from_vec(
                x.data()[i * per_image..(i + 1) * per_image].to_vec(),
                &[1, channels, 28, 28],
            )
            .unwrap();
            let want = score_one(&model.params, &refs, xi, 0.12);
            let got = [batched[i].gradcon, batched[i].recon, batched[i].grad];
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-7 + 1e-5 * w.abs(),
                    "C={channels} image {i}: batched {got:?}, batch of one {want:?}"
                );
            }
        }
    }
}
