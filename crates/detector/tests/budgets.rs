//! `--eval-at`: the model selected at each budget, scored in the same run, resumed with its
//! evaluations, and refused where an earlier run did not evaluate a budget.

use std::path::{Path, PathBuf};

use detector::eval::protocol::{run_protocol, DatasetKind, ProtocolObserver, ProtocolOptions};
use detector::eval::ProtocolResult;
use detector::train::{Observer, TrainState};
use detector::{Error, Result, TrainConfig};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-budgets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        ..TrainConfig::default()
    }
}

fn options(eval_at: &[usize]) -> ProtocolOptions {
    ProtocolOptions {
        eval_at: eval_at.to_vec(),
        ..ProtocolOptions::default()
    }
}

/// Stops the run (as a kill would, after the epoch's checkpoint) once it has saved `epoch`.
struct StopAfter(usize);
struct StopObserver(usize);

impl Observer for StopObserver {
    fn state_saved(&mut self, state: &TrainState) -> Result<()> {
        if state.epoch >= self.0 {
            return Err(Error::Cancelled { epoch: state.epoch });
        }
        Ok(())
    }
}

impl ProtocolObserver for StopAfter {
    fn class_started(&mut self, _class: u8) -> Box<dyn Observer + '_> {
        Box::new(StopObserver(self.0))
    }
}

fn run(
    out: &Path,
    epochs: usize,
    opts: ProtocolOptions,
    observer: &mut dyn ProtocolObserver,
) -> Result<ProtocolResult> {
    run_protocol(
        DatasetKind::FashionMnist,
        &sample(),
        out,
        &[0],
        &config(epochs),
        opts,
        observer,
    )
}

fn silent() -> detector::eval::protocol::SilentProtocol {
    detector::eval::protocol::SilentProtocol
}

#[test]
fn a_budget_scores_what_a_run_stopped_there_selects() {
    let out = scratch("curve");
    let curve = run(&out, 3, options(&[1, 2, 3]), &mut silent()).unwrap();
    let class = &curve.classes[0];
    let epochs: Vec<usize> = class.budgets.iter().map(|b| b.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    assert_eq!(curve.budgets.len(), 3);
    // The last budget is the run's own result; an earlier one is what a shorter run gives.
    assert_eq!(class.budgets[2].auroc, class.auroc);
    let short_out = scratch("short");
    let short = run(&short_out, 1, options(&[]), &mut silent()).unwrap();
    assert_eq!(class.budgets[0].auroc, short.classes[0].auroc);
    assert_eq!(
        class.budgets[0].selected_epoch,
        short.classes[0].selected_epoch
    );
    assert!(short.budgets.is_empty() && short.classes[0].budgets.is_empty());
    assert_ne!(class.budgets[0].auroc, class.budgets[2].auroc);

    // Interrupted after epoch 2 (budget 2 evaluated, checkpoint saved), then resumed: the
    // same evaluations as the uninterrupted run, and the side file gone at the end.
    let resumed_out = scratch("resumed");
    let stopped = run(&resumed_out, 3, options(&[1, 2, 3]), &mut StopAfter(2));
    assert!(
        matches!(stopped, Err(Error::Cancelled { epoch: 2 })),
        "{stopped:?}"
    );
    let side = resumed_out.join("class_0.budgets.json");
    assert!(side.exists() && resumed_out.join("class_0.ckpt").exists());
    let resumed = run(&resumed_out, 3, options(&[1, 2, 3]), &mut silent()).unwrap();
    assert_eq!(resumed.classes[0].budgets, class.budgets);
    assert_eq!(resumed.budgets, curve.budgets);
    assert!(!side.exists());

    // A finished class is reused for budgets it evaluated, and refused for others.
    let reused = run(&out, 3, options(&[2]), &mut silent()).unwrap();
    assert_eq!(reused.classes[0].budgets, class.budgets[1..2]);
    let e = run(&out, 3, options(&[2, 3, 1]), &mut silent());
    assert!(e.is_ok(), "the same budgets in another order: {e:?}");
    let e = run(&out, 3, options(&[]), &mut silent()).unwrap();
    assert!(e.classes[0].budgets.is_empty());
    for d in [out, short_out, resumed_out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn budgets_an_earlier_run_did_not_evaluate_are_refused() {
    let out = scratch("missed");
    let stopped = run(&out, 3, options(&[3]), &mut StopAfter(2));
    assert!(matches!(stopped, Err(Error::Cancelled { .. })));
    // Resuming at epoch 2 with a budget at 1 it never evaluated.
    let e = run(&out, 3, options(&[1, 3]), &mut silent()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("after the budget 1") && text.contains("--fresh"),
        "{text}"
    );
    // With --fresh it trains again and evaluates both.
    let fresh = ProtocolOptions {
        fresh: true,
        ..options(&[1, 3])
    };
    let done = run(&out, 3, fresh, &mut silent()).unwrap();
    assert_eq!(done.classes[0].budgets.len(), 2);
    // Finished without budget 2: reusing it for budget 2 is refused.
    let e = run(&out, 3, options(&[2]), &mut silent()).unwrap_err();
    assert!(
        e.to_string().contains("without evaluating epoch(s) 2"),
        "{e}"
    );
    // Out of range.
    for bad in [[0], [4]] {
        let e = run(&out, 3, options(&bad), &mut silent()).unwrap_err();
        assert!(e.to_string().contains("eval-at"), "{e}");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_budget_after_an_early_stop_reuses_the_stopped_model() {
    let out = scratch("patience");
    let cfg = TrainConfig {
        epochs: 40,
        patience: Some(1),
        ..TrainConfig::default()
    };
    let r = run_protocol(
        DatasetKind::FashionMnist,
        &sample(),
        &out,
        &[0],
        &cfg,
        options(&[1, 40]),
        &mut silent(),
    )
    .unwrap();
    let class = &r.classes[0];
    assert!(
        class.epochs_run < 40,
        "patience 1 did not stop the sample's run early ({} epochs)",
        class.epochs_run
    );
    assert!(!class.budgets[0].stopped);
    let last = class.budgets[1];
    assert!(last.stopped);
    assert_eq!(last.auroc, class.auroc);
    assert_eq!(last.selected_epoch, class.selected_epoch);
    let _ = std::fs::remove_dir_all(out);
}
