//! Validation selection by `select_every` (the authors' code compares only every 5th epoch and
//! the last) and the saturation remedy: which epoch each rule keeps, worked by hand, and a real
//! run keeping exactly the weights of that epoch; the remedy changing only attempts that follow
//! a saturated one.

use detector::data::Dataset;
use detector::train::saturation::{mean_logits, Remedy, SaturationRule};
use detector::train::{selected_epoch, Observer, Silent, TrainConfig, TrainState, Trainer};
use detector::Detector;

/// Validation losses of epochs 1..=12, chosen so that the two rules part ways.
const LOSSES: [f64; 12] = [
    0.50, 0.40, 0.30, 0.35, 0.36, 0.32, 0.34, 0.25, 0.33, 0.31, 0.29, 0.30,
];

/// The epoch each rule keeps when training stops at budget 1, 2, ..., 12, worked by hand.
///
/// Every epoch compared: the lowest loss so far (0.30 at 3 until 0.25 at 8).
/// Every 5th: the candidates are epochs 1, 6, 11 up to the budget, and the budget itself.
/// At 7: 1 (0.50), 6 (0.32), 7 (0.34), so 6. At 9: 1, 6, 9 (0.33), so 6. At 10: 10 (0.31).
/// At 12: 1, 6, 11 (0.29), 12 (0.30), so 11. Epoch 3's 0.30 counts only while it is the last.
const EVERY_EPOCH: [usize; 12] = [1, 2, 3, 3, 3, 3, 3, 8, 8, 8, 8, 8];
const EVERY_FIFTH: [usize; 12] = [1, 2, 3, 4, 5, 6, 6, 8, 6, 10, 11, 11];

#[test]
fn each_rule_selects_the_hand_worked_epoch_at_every_budget() {
    for budget in 1..=12 {
        let losses = &LOSSES[..budget];
        assert_eq!(
            selected_epoch(losses, 1),
            Some(EVERY_EPOCH[budget - 1]),
            "budget {budget}"
        );
        assert_eq!(
            selected_epoch(losses, 5),
            Some(EVERY_FIFTH[budget - 1]),
            "budget {budget}"
        );
    }
    // Ties keep the earlier epoch; a last epoch that only ties does not replace it.
    assert_eq!(selected_epoch(&[0.3, 0.3, 0.3], 1), Some(1));
    assert_eq!(selected_epoch(&[0.3, 0.4, 0.3], 2), Some(1));
    assert_eq!(selected_epoch(&[], 5), None);
}

/// Sixteen 28x28 images with structure to learn.
fn data(offset: usize) -> Dataset {
    let pixels: Vec<u8> = (0..16 * 784)
        .map(|i| (((i + offset) * 131) % 256) as u8)
        .collect();
    Dataset::new(pixels, vec![0; 16], 1, 28, 28).unwrap()
}

/// After every epoch: the epoch, the current weights, the epoch the state would select, and the
/// detector it would select.
#[derive(Default)]
struct Capture(Vec<(usize, Detector, usize, Detector)>);

impl Observer for Capture {
    fn state_saved(&mut self, s: &TrainState) -> detector::Result<()> {
        self.0
            .push((s.epoch, s.current(), s.selected_epoch(), s.selected()));
        Ok(())
    }
}

fn run(select_every: usize) -> (TrainState, Capture) {
    let config = TrainConfig {
        epochs: 12,
        batch_size: 8,
        lr: 3e-3,
        select_every,
        ..TrainConfig::default()
    };
    let mut capture = Capture::default();
    let state = Trainer::new(config)
        .unwrap()
        .fit_state(&data(0), &data(7), &mut capture)
        .unwrap();
    (state, capture)
}

/// A real run: the trajectory does not depend on the rule, and at every epoch each rule's
/// selection is the epoch `selected_epoch` names over the run's own validation losses, with
/// exactly that epoch's weights.
#[test]
fn a_run_keeps_the_weights_of_the_epoch_its_rule_selects() {
    let (one, one_seen) = run(1);
    let (five, five_seen) = run(5);
    assert_eq!(one.history, five.history, "the rule changed the training");
    let losses: Vec<f64> = one.history.iter().map(|r| r.val_loss.unwrap()).collect();
    let mut parted = false;
    for (every, seen) in [(1, &one_seen), (5, &five_seen)] {
        for (epoch, _, selected, detector) in &seen.0 {
            let want = selected_epoch(&losses[..*epoch], every).unwrap();
            assert_eq!(*selected, want, "every {every}, stopped at {epoch}");
            let weights = &seen.0[want - 1].1;
            assert_eq!(
                detector.autoencoder(),
                weights.autoencoder(),
                "every {every} at {epoch}"
            );
            assert_eq!(detector.reference(), weights.reference());
            parted |= every == 5 && want != selected_epoch(&losses[..*epoch], 1).unwrap();
        }
    }
    assert!(parted, "the rules never differ on this run: {losses:?}");
    assert_eq!(one.selected_epoch(), selected_epoch(&losses, 1).unwrap());
    assert_eq!(five.selected_epoch(), selected_epoch(&losses, 5).unwrap());
}

fn remedy_run(remedy: Remedy, saturation: SaturationRule, lr: f64) -> TrainState {
    let config = TrainConfig {
        epochs: 3,
        batch_size: 8,
        lr,
        restarts: 1,
        remedy,
        saturation,
        ..TrainConfig::default()
    };
    Trainer::new(config)
        .unwrap()
        .fit_state(&data(0), &data(7), &mut Silent)
        .unwrap()
}

/// A rule that fires at epoch 2 on any model, and one that never fires.
fn always() -> SaturationRule {
    SaturationRule {
        max_spread: f64::MAX,
        max_sigmoid_derivative: f64::MAX,
        ..SaturationRule::default()
    }
}

fn never() -> SaturationRule {
    SaturationRule {
        max_spread: 0.0,
        ..SaturationRule::default()
    }
}

#[test]
fn the_remedy_changes_only_attempts_after_a_saturation() {
    // No saturation: the remedy never applies, and the runs are the same to the bit.
    let (a, b) = (
        remedy_run(Remedy::Reseed, never(), 1e-3),
        remedy_run(Remedy::OutputBias, never(), 1e-3),
    );
    assert_eq!(a.restarts.len(), 0);
    assert_eq!(a.model, b.model);
    assert_eq!(a.history, b.history);

    // A saturation at epoch 2: the same first attempt, then the restarted attempt starts its
    // output bias at the logit of the training images' mean pixel. With a learning rate of
    // 1e-12 training leaves it there, so the final weights show where the attempt began.
    let (a, b) = (
        remedy_run(Remedy::Reseed, always(), 1e-12),
        remedy_run(Remedy::OutputBias, always(), 1e-12),
    );
    assert_eq!((a.attempt, b.attempt), (1, 1));
    assert_eq!(a.history[..2], b.history[..2], "the first attempt differs");
    let want = mean_logits(data(0).images(), 1, 784)[0];
    let bias = |s: &TrainState| s.model.params.last().unwrap().data()[0];
    assert!(
        (bias(&b) - want).abs() < 1e-6,
        "{} against {want}",
        bias(&b)
    );
    assert!((bias(&a) - want).abs() > 1e-2, "reseeding set the bias too");
    assert!(
        b.restarts[0].contains("remedy output-bias"),
        "{}",
        b.restarts[0]
    );
    assert!(!a.restarts[0].contains("remedy"), "{}", a.restarts[0]);
    // Every other weight is the reseeded attempt's own (moved by at most the steps of 1e-12).
    let n = a.model.params.len();
    for (p, q) in a.model.params[..n - 1].iter().zip(&b.model.params[..n - 1]) {
        let most = p
            .data()
            .iter()
            .zip(q.data())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(most < 1e-9, "{most}");
    }
}
