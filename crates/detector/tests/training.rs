//! Training's guards: a loss that stops being finite restarts the attempt while restarts
//! remain and then fails naming where; cancelling stops between batches; options are checked
//! before any work.

use std::sync::{Arc, Mutex};

use detector::data::Dataset;
use detector::train::{Cancel, Observer, Silent, TrainConfig, Trainer};
use detector::Error;

fn data() -> Dataset {
    let pixels: Vec<u8> = (0..16 * 784).map(|i| (i * 131 % 256) as u8).collect();
    Dataset::new(pixels, vec![0; 16], 1, 28, 28).unwrap()
}

#[derive(Default)]
struct Diverged(Arc<Mutex<Vec<(usize, usize, usize)>>>);

impl Observer for Diverged {
    fn diverged(&mut self, epoch: usize, step: usize, next_attempt: usize) {
        self.0.lock().unwrap().push((epoch, step, next_attempt));
    }
}

#[test]
fn a_diverging_loss_restarts_then_fails_naming_epoch_and_step() {
    let config = |restarts| TrainConfig {
        lr: 1e30,
        epochs: 3,
        batch_size: 4,
        restarts,
        val_fraction: 0.0,
        ..TrainConfig::default()
    };
    let none = Dataset::empty(1, 28, 28);
    let err = Trainer::new(config(0))
        .unwrap()
        .fit(&data(), &none, &mut Silent)
        .unwrap_err();
    let Error::Diverged {
        attempt,
        epoch,
        step,
    } = err
    else {
        panic!("not a divergence: {err}");
    };
    assert_eq!((attempt, epoch), (0, 1));
    assert!(
        step >= 2,
        "the first step starts from finite weights: step {step}"
    );
    assert!(err_text(config(0)).contains(&format!("epoch 1, step {step}")));

    let seen = Diverged::default();
    let log = seen.0.clone();
    let mut observer = seen;
    let err = Trainer::new(config(1))
        .unwrap()
        .fit(&data(), &none, &mut observer)
        .unwrap_err();
    assert!(matches!(err, Error::Diverged { attempt: 1, .. }), "{err}");
    assert_eq!(log.lock().unwrap().len(), 1, "one restart was reported");
}

fn err_text(config: TrainConfig) -> String {
    let none = Dataset::empty(1, 28, 28);
    Trainer::new(config)
        .unwrap()
        .fit(&data(), &none, &mut Silent)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_cancelled_run_stops_between_batches() {
    let cancel = Cancel::new();
    cancel.cancel();
    let none = Dataset::empty(1, 28, 28);
    let err = Trainer::new(TrainConfig {
        epochs: 5,
        batch_size: 4,
        ..TrainConfig::default()
    })
    .unwrap()
    .cancel_on(cancel)
    .fit(&data(), &none, &mut Silent)
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled { epoch: 0 }), "{err}");
}

#[test]
fn options_are_refused_before_any_work_naming_the_option() {
    for (config, option) in [
        (
            TrainConfig {
                lr: f64::NAN,
                ..TrainConfig::default()
            },
            "--lr",
        ),
        (
            TrainConfig {
                lr: -1.0,
                ..TrainConfig::default()
            },
            "--lr",
        ),
        (
            TrainConfig {
                alpha: f64::INFINITY,
                ..TrainConfig::default()
            },
            "--alpha",
        ),
        (
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            "--epochs",
        ),
        (
            TrainConfig {
                val_fraction: 1.0,
                ..TrainConfig::default()
            },
            "--val-fraction",
        ),
        (
            TrainConfig {
                batch_size: 0,
                ..TrainConfig::default()
            },
            "--batch",
        ),
    ] {
        let err = Trainer::new(config).unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().starts_with(option), "{err}");
    }
}

#[test]
fn training_calibrates_a_threshold_at_the_target_rate_and_every_file_keeps_it() {
    let pixels: Vec<u8> = (0..60 * 784)
        .map(|i| ((i * 7 + i / 784 * 13) % 256) as u8)
        .collect();
    let all = Dataset::new(pixels, vec![0; 60], 1, 28, 28).unwrap();
    let train = all.take(&(0..40).collect::<Vec<_>>()).unwrap();
    let val = all.take(&(40..60).collect::<Vec<_>>()).unwrap();
    let trained = Trainer::new(TrainConfig {
        epochs: 2,
        batch_size: 8,
        ..TrainConfig::default()
    })
    .unwrap()
    .decision(0.12, 0.1)
    .unwrap()
    .fit(&train, &val, &mut Silent)
    .unwrap();
    let d = trained.detector;
    let c = *d
        .calibration()
        .expect("a threshold from the validation images");
    let n = val.len() as f64;
    assert!(c.fpr <= 0.1 && c.fpr >= 0.1 - 1.0 / n, "rate {}", c.fpr);
    let scores = d.score_dataset(&val, &(0..20).collect::<Vec<_>>()).unwrap();
    let flagged = scores.iter().filter(|s| s.anomalous == Some(true)).count();
    assert_eq!(
        flagged as f64 / n,
        c.fpr,
        "the decisions on the validation images"
    );
    for s in &scores {
        assert_eq!(s.anomaly_score, -s.gradcon);
        assert_eq!(s.anomalous, Some(s.anomaly_score > c.threshold));
    }
    // The model file and the safetensors export keep the threshold and its beta.
    let gcm = detector::Detector::from_bytes("m.gcm", &d.to_bytes()).unwrap();
    assert_eq!(gcm.calibration(), Some(&c));
    let st = detector::Detector::from_bytes("m.st", &d.to_safetensors_bytes().unwrap()).unwrap();
    assert_eq!(st.calibration(), Some(&c));
    // Another beta: the threshold does not apply, and nothing is decided.
    let mut other = gcm.clone();
    other.set_beta(0.5).unwrap();
    assert_eq!(other.threshold(), None);
    let s = other.score_dataset(&val, &[0]).unwrap();
    assert_eq!(s[0].anomalous, None);
    // Without validation images there is no threshold.
    let none = Dataset::empty(1, 28, 28);
    let bare = Trainer::new(TrainConfig {
        epochs: 1,
        batch_size: 8,
        ..TrainConfig::default()
    })
    .unwrap()
    .fit(&train, &none, &mut Silent)
    .unwrap();
    assert!(bare.detector.calibration().is_none());
}
