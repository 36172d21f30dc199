//! A golden GradCon training step: three steps (each with the second-order term) and the
//! scores, against values PyTorch computed for the same weights and batch.
//!
//! `tests/data/golden_step.safetensors.gz` was written by `tests/data/make_golden_step.py`
//! with PyTorch 2.15 on the peer of `benches/peer/gradcon.py`. Its inputs follow exact
//! formulas recomputed here (quoted from the script):
//!
//! ```text
//! parameter p (0..15 in state_dict order), element i, of a layer with fan-in f:
//!     u = ((i * 2654435761 + p * 40503) mod 2^32) / 2^32;  value = f32((2u - 1) / sqrt(f))
//! ref_grad.l (l = 0..3), element i: f32((((i * 40503 + 17 l) mod 1024) / 1024 - 0.5) * 2e-3),
//! ref_grad_count 5 (so every step has the second-order term)
//! image n (0..15) of 1x28x28, pixel i: r = ((i * 2654435761 + n * 97) mod 2^32) >> 24,
//!     value = r^3 // 65025 (u8), fed as value / 255
//! ```
//!
//! then `Trainer(model, ref=ref, ref_count=5)`, three `trainer.step(x)` (Adam, lr 1e-3,
//! alpha 0.03), and `score_batch_of_one(model, trainer.ref, x)` (beta 0.12).
//!
//! The measures are the parity script's (`benches/peer/parity.py`): per tensor, the relative
//! error of the weight update `|(w_ours - w0) - (w_torch - w0)| / |w_torch - w0|` and of the
//! reference gradients, and the largest score difference over the largest |score|. The
//! tolerances sit just above what this engine measures, so a change to the loss, its
//! second-order term, Adam, the reference average or scoring fails here.

use std::io::Read;

use core_tensor::Tensor;
use detector::data::Dataset;
use detector::model::{gradient_params, layers, Autoencoder, ReferenceGradients};
use detector::train::{Init, TrainState};
use detector::{Detector, TrainConfig};
use safetensors::SafeTensors;

/// Largest relative error of a weight update (8.5e-6 measured with AVX-512).
const UPDATE_TOL: f64 = 2e-5;
/// Largest relative error of a reference gradient (2.2e-7 measured).
const REF_TOL: f64 = 5e-7;
/// Largest score difference over the largest |score| (5.3e-7 measured).
const SCORE_TOL: f64 = 1e-6;

fn initial_model() -> Autoencoder {
    let shapes = Autoencoder::param_shapes(1);
    let table = layers(1);
    let params = shapes
        .iter()
        .enumerate()
        .map(|(p, shape)| {
            let fan_in = table[p / 2].fan_in() as f64;
            let n: usize = shape.iter().product();
            let data = (0..n as u64)
                .map(|i| {
                    let u = (i.wrapping_mul(2_654_435_761).wrapping_add(p as u64 * 40503)
                        % (1 << 32)) as f64
                        / 4_294_967_296.0;
                    ((2.0 * u - 1.0) / fan_in.sqrt()) as f32
                })
                .collect();
            Tensor::from_vec(data, shape).unwrap()
        })
        .collect();
    Autoencoder {
        channels: 1,
        params,
    }
}

fn initial_reference() -> ReferenceGradients {
    let grads = Autoencoder::grad_layer_shapes(1)
        .iter()
        .enumerate()
        .map(|(l, shape)| {
            let n: usize = shape.iter().product();
            let data = (0..n as i64)
                .map(|i| {
                    ((((i * 40503 + 17 * l as i64) % 1024) as f64 / 1024.0 - 0.5) * 2e-3) as f32
                })
                .collect();
            Tensor::from_vec(data, shape).unwrap()
        })
        .collect();
    ReferenceGradients { grads, count: 5 }
}

fn batch() -> Dataset {
    let pixels = (0..16u64)
        .flat_map(|n| {
            (0..784u64).map(move |i| {
                let r = (i.wrapping_mul(2_654_435_761).wrapping_add(n * 97) % (1 << 32)) >> 24;
                (r * r * r / 65025) as u8
            })
        })
        .collect();
    Dataset::new(pixels, vec![0; 16], 1, 28, 28).unwrap()
}

fn fixture() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/golden_step.safetensors.gz"
    );
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    let v = st.tensor(name).unwrap();
    v.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `|a - b| / |b|` with the norms in f64.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let n: f64 = b.iter().map(|y| y * y).sum();
    (d / n.max(1e-60)).sqrt()
}

#[test]
fn three_gradcon_steps_and_the_scores_match_pytorch() {
    let bytes = fixture();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w0 = initial_model();
    let init = Init::From(Box::new(Detector::new(w0.clone(), initial_reference())));
    let mut state = TrainState::fresh(&TrainConfig::default(), 1, 0, 0, &init);
    let data = batch();
    let x = data.batch_tensor(&(0..16).collect::<Vec<_>>()).unwrap();
    for _ in 0..3 {
        state.step(&x).unwrap();
    }
    let names = Autoencoder::param_names(1);
    let mut worst_update = 0.0f64;
    for (p, name) in names.iter().enumerate() {
        let theirs = f32s(&st, name);
        let start = w0.params[p].data();
        let du = |v: &[f32]| -> Vec<f64> {
            v.iter()
                .zip(start)
                .map(|(&a, &b)| a as f64 - b as f64)
                .collect()
        };
        let e = rel(&du(state.model.params[p].data()), &du(&theirs));
        worst_update = worst_update.max(e);
        assert!(
            e <= UPDATE_TOL,
            "{name}: relative error of the update {e:.3e}"
        );
    }
    let refs = state.refs.as_ref().unwrap();
    assert_eq!(refs.count, 8);
    let mut worst_ref = 0.0f64;
    for (l, name) in ReferenceGradients::names().iter().enumerate() {
        let to64 = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
        let e = rel(&to64(refs.grads[l].data()), &to64(&f32s(&st, name)));
        worst_ref = worst_ref.max(e);
        assert!(e <= REF_TOL, "{name}: relative error {e:.3e}");
    }
    assert_eq!(gradient_params().len(), 4);
    let theirs: Vec<f64> = st
        .tensor("scores")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let ours = state
        .current()
        .score_dataset(&data, &(0..16).collect::<Vec<_>>())
        .unwrap();
    let scale = theirs.chunks(3).map(|s| s[0].abs()).fold(0.0, f64::max);
    let mut worst_score = 0.0f64;
    for (s, t) in ours.iter().zip(theirs.chunks(3)) {
        for (a, b) in [s.gradcon, s.recon, s.grad].iter().zip(t) {
            worst_score = worst_score.max((a - b).abs() / scale);
        }
    }
    eprintln!(
        "golden step: worst update {worst_update:.3e}, reference {worst_ref:.3e}, \
         score {worst_score:.3e}"
    );
    assert!(
        worst_score <= SCORE_TOL,
        "scores differ by {worst_score:.3e}"
    );
}
