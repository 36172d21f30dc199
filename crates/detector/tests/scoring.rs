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

// ---------------------------------------------------------------------------------------------
// An image's score does not depend on its neighbours.

use detector::data::Dataset;
use detector::{Detector, Image, ScoreSettings};
use proptest::prelude::*;

/// The environment variable that runs [`scores_do_not_depend_on_the_batch_on_this_path`] in a
/// child process on the path it names (the path is fixed once per process).
const ISA_CHILD_ENV: &str = "GRADCON_SCORING_ISA_CHILD";

/// A random detector of `channels`: the layers' default initialisation and small random
/// reference gradients (count 1), seeded.
fn random_detector(channels: usize, seed: u64) -> Detector {
    let mut rng = Rng::seed_from_u64(seed);
    let model = Autoencoder::init(channels, &mut rng);
    let grads = Autoencoder::grad_layer_shapes(channels)
        .iter()
        .map(|s| Tensor::uniform(s, -1e-3, 1e-3, &mut rng))
        .collect();
    Detector::new(
        model,
        detector::model::ReferenceGradients { grads, count: 1 },
    )
}

/// Everything a score holds, as bits.
fn bits(s: &detector::Score) -> [u64; 4] {
    [s.gradcon, s.recon, s.grad, s.anomaly_score].map(f64::to_bits)
}

/// Runs `f` on a rayon pool of `threads` workers (the detector then uses that pool).
fn on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// One case: `n` random 8-bit images (28x28, and, for the image API, some of other sizes),
/// scored alone on one thread, then in batches of `batch` images, in `order` (positions
/// differ), through `score_batch`, `score_dataset` and `reconstruct_dataset`, on `threads`
/// workers (the detector's own pool when `own_pool`, else the caller's): every image's bits
/// must be those it has alone.
fn check_independence(
    channels: usize,
    seed: u64,
    n: usize,
    batch: usize,
    threads: usize,
    own_pool: bool,
    order: &[usize],
) {
    let mut alone = random_detector(channels, seed);
    alone.set_threads(1).unwrap();
    let mut rng = Rng::seed_from_u64(seed ^ 0x5eed);
    let side = 28;
    let pixels: Vec<u8> = (0..n * channels * side * side)
        .map(|_| (rng.next_u64() % 256) as u8)
        .collect();
    let data = Dataset::new(pixels, vec![0; n], channels, side, side).unwrap();
    // Image i of the image API: 28x28 for even i, another size (resized) for odd i.
    let image = |i: usize| -> Image {
        let (h, w) = if i.is_multiple_of(2) {
            (side, side)
        } else {
            (20 + i % 13, 35 - i % 11)
        };
        let mut r = Rng::seed_from_u64(seed ^ i as u64);
        let px = (0..channels * h * w)
            .map(|_| (r.next_u64() % 256) as u8)
            .collect();
        Image::from_u8(channels, h, w, px).unwrap()
    };
    let one = |i: usize| Image::from_u8(channels, side, side, data.image(i).to_vec()).unwrap();
    let want_data: Vec<_> = (0..n)
        .map(|i| bits(&alone.score(&one(i)).unwrap()))
        .collect();
    let want_images: Vec<_> = (0..n)
        .map(|i| bits(&alone.score(&image(i)).unwrap()))
        .collect();
    let want_recon: Vec<_> = (0..n)
        .map(|i| alone.reconstruct_dataset(&data, &[i]).unwrap().remove(0))
        .collect();

    let mut d = random_detector(channels, seed);
    d.set_settings(ScoreSettings {
        batch_size: batch,
        ..ScoreSettings::default()
    })
    .unwrap();
    if own_pool {
        d.set_threads(threads).unwrap();
    }
    let pool = if own_pool { 1 } else { threads };
    let what = format!("C={channels} n={n} batch={batch} threads={threads} own pool {own_pool}");
    let images: Vec<Image> = order.iter().map(|&i| image(i)).collect();
    let (by_images, by_data, recon) = on_pool(pool, || {
        (
            d.score_batch(&images).unwrap(),
            d.score_dataset(&data, order).unwrap(),
            d.reconstruct_dataset(&data, order).unwrap(),
        )
    });
    for (k, &i) in order.iter().enumerate() {
        assert_eq!(
            bits(&by_images[k]),
            want_images[i],
            "{what}: score_batch, image {i} at {k}"
        );
        assert_eq!(
            bits(&by_data[k]),
            want_data[i],
            "{what}: score_dataset, image {i} at {k}"
        );
        assert!(
            recon[k]
                .iter()
                .zip(&want_recon[i])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what}: reconstruct_dataset, image {i} at {k}"
        );
    }
}

fn independence_case() -> impl Strategy<Value = (usize, u64, usize, usize, usize, bool, Vec<usize>)>
{
    (
        prop_oneof![Just(1usize), Just(3)],
        any::<u64>(),
        1usize..=24,
    )
        .prop_flat_map(|(c, seed, n)| {
            (
                Just(c),
                Just(seed),
                Just(n),
                1usize..=n + 2,
                prop_oneof![Just(1usize), Just(2), Just(5)],
                any::<bool>(),
                // Positions: a random arrangement of the images, some repeated.
                proptest::collection::vec(0..n, 1..=2 * n),
            )
        })
}

/// On the process's path (`GRADCON_ISA`, else the widest this CPU runs).
#[test]
fn scores_do_not_depend_on_the_batch_on_this_path() {
    if let Some(want) = std::env::var_os(ISA_CHILD_ENV) {
        let isa = core_tensor::Isa::detect();
        assert_eq!(
            isa.to_string(),
            want.to_string_lossy(),
            "the child runs another path"
        );
    }
    let config = ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((c, seed, n, batch, threads, own, order) in independence_case())| {
        check_independence(c, seed, n, batch, threads, own, &order);
    });
}

/// The same property on every other path this CPU runs, each in a child process.
#[test]
fn scores_do_not_depend_on_the_batch_on_every_path() {
    let here = core_tensor::Isa::detect();
    for isa in core_tensor::Isa::supported()
        .into_iter()
        .filter(|&i| i != here)
    {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "scores_do_not_depend_on_the_batch_on_this_path",
                "--exact",
                "--nocapture",
            ])
            .env("GRADCON_ISA", isa.to_string())
            .env(ISA_CHILD_ENV, isa.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "on {isa}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
