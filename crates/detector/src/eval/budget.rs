//! Evaluation at training budgets (`protocol --eval-at 10,20,50`): at each listed epoch, the
//! model the protocol would select if training stopped there (lowest validation loss so far in
//! the attempt; the epoch's own model without validation images) scores the class's test
//! split, in the same run.
//!
//! The evaluations of a class in training are kept in `class_<c>.budgets.json` beside its
//! checkpoint, written after the checkpoint of each listed epoch, so an interrupted run
//! resumes with them; the class's result then carries them and the file goes. A budget after
//! an early stop (`--patience`) reuses the stopped model and says so (`stopped`). Budgets are an
//! evaluation option: they are not part of what pins a run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::auroc::Aurocs;
use crate::io::fs::{remove_if_present, write_atomic};
use crate::train::saturation::Saturated;
use crate::train::{EpochRecord, Observer, Pin, TrainState};
use crate::{Error, Result};

/// Most budgets one run evaluates.
pub const MAX_BUDGETS: usize = 64;

/// The AUROCs of the model selected at one budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetResult {
    /// The budget: epochs trained (in the attempt kept).
    pub epoch: usize,
    /// The epoch of the model selected at that point.
    pub selected_epoch: usize,
    pub auroc: Aurocs,
    /// Training had stopped early before this budget: the stopped run's model was scored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// The mean over classes of each AUROC at one budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetMean {
    pub epoch: usize,
    pub mean: Aurocs,
}

/// The budgets to evaluate: sorted, without repeats, each from 1 to `epochs`.
pub fn check_budgets(eval_at: &[usize], epochs: usize) -> Result<Vec<usize>> {
    let bad = |v: usize| Error::InvalidOption {
        option: "eval-at",
        value: v.to_string(),
        expected: "epochs from 1 to --epochs",
    };
    if let Some(&v) = eval_at.iter().find(|&&v| v == 0 || v > epochs) {
        return Err(bad(v));
    }
    let mut budgets = eval_at.to_vec();
    budgets.sort_unstable();
    budgets.dedup();
    if budgets.len() > MAX_BUDGETS {
        return Err(Error::InvalidOption {
            option: "eval-at",
            value: format!("{} epochs", budgets.len()),
            expected: "at most 64 epochs",
        });
    }
    Ok(budgets)
}

/// One evaluation during training: of which attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Record {
    attempt: usize,
    #[serde(flatten)]
    result: BudgetResult,
}

/// The file of a class's evaluations so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Partial {
    /// The run the evaluations belong to.
    pin: Pin,
    records: Vec<Record>,
}

/// Where class `class`'s evaluations in training are kept.
pub(crate) fn partial_path(out: &Path, class: u8) -> PathBuf {
    out.join(format!("class_{class}.budgets.json"))
}

/// Scores one model on the class's test split.
pub(crate) type Evaluate<'a> = dyn Fn(crate::Detector) -> Result<Aurocs> + 'a;

/// An observer that evaluates the listed budgets as training reaches them, passing every event
/// on to `inner`.
pub(crate) struct BudgetObserver<'a> {
    inner: &'a mut dyn Observer,
    budgets: &'a [usize],
    evaluate: &'a Evaluate<'a>,
    path: PathBuf,
    partial: Partial,
    class: u8,
}

impl<'a> BudgetObserver<'a> {
    /// Starts from the evaluations in `path` if they belong to `pin`'s run and a checkpoint
    /// is there to resume (`resuming`); otherwise from none.
    pub(crate) fn new(
        inner: &'a mut dyn Observer,
        budgets: &'a [usize],
        evaluate: &'a Evaluate<'a>,
        path: PathBuf,
        pin: &Pin,
        resuming: bool,
        class: u8,
    ) -> Result<Self> {
        let kept = if resuming {
            read_partial(&path)?.filter(|p| p.pin == *pin)
        } else {
            None
        };
        if kept.is_none() {
            remove_if_present(&path)?;
        }
        Ok(Self {
            inner,
            budgets,
            evaluate,
            path,
            partial: kept.unwrap_or(Partial {
                pin: pin.clone(),
                records: Vec::new(),
            }),
            class,
        })
    }

    /// The evaluations made, for [`Evaluated::results`].
    pub(crate) fn evaluated(self) -> Evaluated {
        Evaluated {
            budgets: self.budgets.to_vec(),
            records: self.partial.records,
        }
    }

    fn has(&self, attempt: usize, epoch: usize) -> bool {
        self.partial
            .records
            .iter()
            .any(|r| r.attempt == attempt && r.result.epoch == epoch)
    }
}

/// The evaluations of a finished training run.
#[derive(Debug, Default)]
pub(crate) struct Evaluated {
    budgets: Vec<usize>,
    records: Vec<Record>,
}

impl Evaluated {
    /// The evaluations of `state`'s attempt, one per budget, those past an early stop scored
    /// on the stopped model (`final_aurocs`).
    pub(crate) fn results(&self, state: &TrainState, final_aurocs: Aurocs) -> Vec<BudgetResult> {
        self.budgets
            .iter()
            .map(|&epoch| {
                self.records
                    .iter()
                    .find(|r| r.attempt == state.attempt && r.result.epoch == epoch)
                    .map(|r| r.result)
                    .unwrap_or(BudgetResult {
                        epoch,
                        selected_epoch: state.selected_epoch(),
                        auroc: final_aurocs,
                        stopped: true,
                    })
            })
            .collect()
    }
}

fn read_partial(path: &Path) -> Result<Option<Partial>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::format(
                path.display().to_string(),
                format!("not a budget evaluation file: {e}"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "read", e)),
    }
}

impl Observer for BudgetObserver<'_> {
    fn epoch_started(&mut self, attempt: usize, epoch: usize, batches: usize) {
        self.inner.epoch_started(attempt, epoch, batches)
    }
    fn batch_done(&mut self, loss: f64, images: usize) {
        self.inner.batch_done(loss, images)
    }
    fn epoch_done(&mut self, record: &EpochRecord) {
        self.inner.epoch_done(record)
    }
    fn restarted(&mut self, why: &Saturated, next_attempt: usize) {
        self.inner.restarted(why, next_attempt)
    }
    fn saturated_without_restart(&mut self, why: &Saturated) {
        self.inner.saturated_without_restart(why)
    }
    fn resumed(&mut self, path: &Path, attempt: usize, epoch: usize) {
        self.inner.resumed(path, attempt, epoch)
    }
    fn diverged(&mut self, epoch: usize, step: usize, next_attempt: usize) {
        self.inner.diverged(epoch, step, next_attempt)
    }
    fn state_saved(&mut self, state: &TrainState) -> Result<()> {
        let (attempt, epoch) = (state.attempt, state.epoch);
        // A budget this attempt passed without an evaluation: a resumed run that asks for
        // budgets its first run did not.
        if let Some(&missed) = self
            .budgets
            .iter()
            .find(|&&b| b < epoch && !self.has(attempt, b))
        {
            return Err(Error::invalid(
                "eval-at",
                format!(
                    "class {} resumes at epoch {epoch}, after the budget {missed} that its \
                     earlier run did not evaluate; add --fresh to retrain it",
                    self.class
                ),
            ));
        }
        if epoch > 0 && self.budgets.contains(&epoch) && !self.has(attempt, epoch) {
            let auroc = (self.evaluate)(state.selected())?;
            self.partial.records.retain(|r| r.attempt == attempt);
            self.partial.records.push(Record {
                attempt,
                result: BudgetResult {
                    epoch,
                    selected_epoch: state.selected_epoch(),
                    auroc,
                    stopped: false,
                },
            });
            let json = serde_json::to_string_pretty(&self.partial).expect("plain data");
            write_atomic(&self.path, json.as_bytes())?;
        }
        self.inner.state_saved(state)
    }
}
