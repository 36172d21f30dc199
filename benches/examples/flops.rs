//! The multiply-adds this engine executes in one GradCon training step and in scoring one
//! batch, per kind of kernel, to set beside PyTorch's count of the same work
//! (`torch.utils.flop_counter`, printed by `benches/peer/compare_gradcon.sh`).
//!
//! `cargo run --release -p benches --features flop-count --example flops -- [CHANNELS]`
//!
//! Counted as executed: a register tile's padded rows and columns count in full, so the
//! totals include the work spent on partial tiles and zero-padded panels.

use core_tensor::flops::{self, Site};
use core_tensor::Rng;
use detector::data::Dataset;
use detector::train::{Init, TrainState};
use detector::TrainConfig;

fn print(what: &str, counts: [u64; Site::ALL.len()]) {
    let total: u64 = counts.iter().sum();
    println!(
        "{what}: {:.3} GFLOP executed (2 per multiply-add)",
        2.0 * total as f64 / 1e9
    );
    for (site, macs) in Site::ALL.iter().zip(counts) {
        if macs > 0 {
            println!(
                "  {:<12} {:>8.3} GFLOP  {:>5.1} %",
                format!("{site:?}"),
                2.0 * macs as f64 / 1e9,
                100.0 * macs as f64 / total as f64
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const { assert!(flops::COUNTING, "build with --features flop-count") };
    let channels: usize = std::env::args().nth(1).map_or(Ok(1), |c| c.parse())?;
    let mut rng = Rng::seed_from_u64(0);
    let pixels: Vec<u8> = (0..64 * channels * 28 * 28)
        .map(|_| rng.below(256) as u8)
        .collect();
    let data = Dataset::new(pixels, vec![0; 64], channels, 28, 28)?;
    let idx: Vec<usize> = (0..64).collect();
    let x = data.batch_tensor(&idx)?;
    let mut state = TrainState::fresh(&TrainConfig::default(), channels, 0, 0, &Init::Seeded);
    // From the second step on the reference gradients exist and the double backward runs.
    for _ in 0..3 {
        state.step(&x)?;
    }
    flops::reset();
    state.step(&x)?;
    print(
        &format!("training step, batch 64, {channels} channel(s)"),
        flops::counts(),
    );
    let model = state.selected();
    flops::reset();
    model.score_dataset(&data, &idx)?;
    let scoring = flops::counts();
    print(
        &format!("scoring 64 images, {channels} channel(s)"),
        scoring,
    );
    Ok(())
}
