//! The README's main command, `gradcon demo`, on the shipped sample: its mean AUROC is guarded.

use std::path::Path;

use detector::eval::protocol::{run_protocol, ProtocolOptions, SilentProtocol};
use detector::eval::DatasetKind;
use detector::TrainConfig;

/// The mean GradCon AUROC the README states for `gradcon demo` (seed 0, 30 epochs).
const README_MEAN_AUROC: f64 = 0.8936;

#[test]
fn demo_reproduces_the_readme_mean_auroc() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample");
    let out = std::env::temp_dir().join(format!("gradcon-demo-test-{}", std::process::id()));
    let config = TrainConfig {
        epochs: 30,
        seed: 0,
        restarts: 5,
        ..TrainConfig::default()
    };
    let classes: Vec<u8> = (0..10).collect();
    let result = run_protocol(
        DatasetKind::FashionMnist,
        &sample,
        &out,
        &classes,
        &config,
        ProtocolOptions::default(),
        &mut SilentProtocol,
    );
    let _ = std::fs::remove_dir_all(&out);
    let result = result.expect("the demo runs");
    assert_eq!(result.classes.len(), 10);
    assert!(
        (result.mean.gradcon - README_MEAN_AUROC).abs() <= 0.02,
        "mean AUROC {:.4}, README states {README_MEAN_AUROC}",
        result.mean.gradcon
    );
}
