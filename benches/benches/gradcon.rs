//! The GradCon training step (forward, double backward, reference update, Adam) and batched
//! scoring at batch 64, 1 and 3 channels, for regression tracking. FLOP counts are not given
//! here: `benches/peer/compare_gradcon.sh` reports both engines side by side.

use core_tensor::{Rng, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use detector::train::{Init, TrainConfig, TrainState};

fn gradcon(c: &mut Criterion) {
    let mut group = c.benchmark_group("gradcon_b64");
    group.sample_size(20);
    for channels in [1usize, 3] {
        let mut rng = Rng::seed_from_u64(channels as u64);
        let x = Tensor::<f32>::uniform(&[64, channels, 28, 28], 0.0, 1.0, &mut rng);
        let mut state = TrainState::fresh(&TrainConfig::default(), channels, 0, 0, &Init::Seeded);
        state.step(&x).unwrap(); // from the second step on, the double backward runs
        group.throughput(Throughput::Elements(64));
        group.bench_with_input(BenchmarkId::new("train_step", channels), &x, |b, x| {
            b.iter(|| state.step(x).unwrap())
        });
        let trained = state.selected();
        group.bench_with_input(BenchmarkId::new("score", channels), &x, |b, x| {
            b.iter(|| trained.score_tensor(x).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, gradcon);
criterion_main!(benches);
