//! The saturation monitor on real training: it fires on a saturated model and stays quiet on
//! healthy models of every class (PAPER.md: a rule on the validation MSE alone fired on a
//! learning Fashion-MNIST sandal model).

use std::path::Path;

use core_tensor::{Rng, Tensor};
use detector::data::{load_fashion_mnist, load_mnist, resolve_data_dir, Dataset, Split};
use detector::model::{Autoencoder, ReferenceGradients};
use detector::train::saturation::EpochHealth;
use detector::train::{Init, Silent, TrainConfig, TrainState, Trainer};
use detector::Detector;

fn health(state: &TrainState, data: &Dataset, epoch: usize) -> EpochHealth {
    let idx: Vec<usize> = (0..data.len()).collect();
    let (_, mse, spread, dsig) = state.evaluate(data, &idx).unwrap();
    EpochHealth {
        epoch,
        val_mse: mse,
        spread,
        sigmoid_derivative: dsig,
    }
}

fn sample(split: Split) -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample");
    load_fashion_mnist(&dir, split).unwrap()
}

#[test]
fn fires_on_a_saturated_output() {
    let data = sample(Split::Test)
        .take(&(0..200).collect::<Vec<_>>())
        .unwrap();
    let mut model = Autoencoder::init(1, &mut Rng::seed_from_u64(1));
    // Pre-activations of the output far below zero: the sigmoid is flat, the image black.
    let last_bias = detector::model::weight_index(detector::model::NUM_LAYERS - 1) + 1;
    model.params[last_bias] = Tensor::full(&[1], -20.0);
    let init = Init::From(Box::new(Detector::new(model, ReferenceGradients::zeros(1))));
    let config = TrainConfig::default();
    let mut state = TrainState::fresh(&config, 1, 0, 0, &init);
    let before = health(&state, &data, 1);
    let x = data.batch_tensor(&(0..64).collect::<Vec<_>>()).unwrap();
    state.step(&x).unwrap();
    let after = health(&state, &data, 2);
    let verdict = config.saturation.judge(Some(&before), &after);
    assert!(verdict.is_some(), "not detected: {before:?} -> {after:?}");
}

/// Trains `epochs` epochs with no restarts and checks the monitor never fired.
fn assert_quiet(name: &str, train_set: &Dataset, val: &Dataset, epochs: usize) -> TrainState {
    let config = TrainConfig {
        epochs,
        restarts: 0,
        ..TrainConfig::default()
    };
    let state = Trainer::new(config.clone())
        .unwrap()
        .fit_state(train_set, val, &mut Silent)
        .unwrap();
    let h: Vec<EpochHealth> = state
        .history
        .iter()
        .map(|r| EpochHealth {
            epoch: r.epoch,
            val_mse: r.health_mse,
            spread: r.spread,
            sigmoid_derivative: r.sigmoid_derivative,
        })
        .collect();
    for w in h.windows(2) {
        assert!(
            config.saturation.judge(Some(&w[0]), &w[1]).is_none(),
            "{name}: false alarm at {:?}",
            w[1]
        );
    }
    state
}

#[test]
fn quiet_on_learning_fashion_mnist_models_of_every_class() {
    let (tr, te) = (sample(Split::Train), sample(Split::Test));
    for c in 0..10u8 {
        assert_quiet(
            &format!("Fashion-MNIST sample class {c}"),
            &tr.select_class(c),
            &te.select_class(c),
            3,
        );
    }
}

/// On full MNIST (when `GRADCON_DATA` is set): every alarm is a real saturation, i.e. the
/// validation MSE is still at the all-black level, and no model that has clearly left it is
/// flagged.
#[test]
fn mnist_alarms_only_at_the_all_black_solution() {
    let Ok(dir) = resolve_data_dir(None) else {
        eprintln!("SKIPPED: GRADCON_DATA is not set, full MNIST unavailable");
        return;
    };
    let (tr, te) = (
        load_mnist(&dir, Split::Train).unwrap(),
        load_mnist(&dir, Split::Test).unwrap(),
    );
    for c in 0..10u8 {
        let train_set = tr.take(&tr.indices_of_class(c)[..1280]).unwrap();
        let val = te.take(&te.indices_of_class(c)[..320]).unwrap();
        let black = val
            .images()
            .iter()
            .map(|&v| (v as f64 / 255.0).powi(2))
            .sum::<f64>()
            / val.images().len() as f64;
        let config = TrainConfig {
            epochs: 3,
            restarts: 0,
            ..TrainConfig::default()
        };
        let state = Trainer::new(config.clone())
            .unwrap()
            .stream(c as u64)
            .fit_state(&train_set, &val, &mut Silent)
            .unwrap();
        for w in state.history.windows(2) {
            let now = EpochHealth {
                epoch: w[1].epoch,
                val_mse: w[1].health_mse,
                spread: w[1].spread,
                sigmoid_derivative: w[1].sigmoid_derivative,
            };
            let prev = EpochHealth {
                epoch: w[0].epoch,
                val_mse: w[0].health_mse,
                spread: w[0].spread,
                sigmoid_derivative: w[0].sigmoid_derivative,
            };
            if config.saturation.judge(Some(&prev), &now).is_some() {
                assert!(
                    now.val_mse >= 0.9 * black,
                    "MNIST digit {c}: alarm at MSE {} while the all-black MSE is {black}",
                    now.val_mse
                );
            }
        }
    }
}
