//! The one-class protocol of PAPER.md: for every class a model trained on that class alone and
//! tested against the other classes, with AUROC per class for the three scores and their mean.
//!
//! A run writes into its output folder, after each epoch, `class_<c>.ckpt` (the training
//! state), and at the end of each class `class_<c>.gcm` (the selected model) and
//! `class_<c>.json` (its results). Rerunning with the same options skips finished classes and
//! resumes the class in progress from its checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use super::auroc::Aurocs;
use super::budget::{
    check_budgets, partial_path, BudgetMean, BudgetObserver, BudgetResult, Evaluated,
};
use super::split::{fold_split, holdout_split, OneClassSplit};
use super::threshold::AtThreshold;
use crate::data::{load_cifar10, load_fashion_mnist, load_mnist, Dataset, Split, NUM_CLASSES};
use crate::io::fs::{remove_if_present, remove_stale_temporaries, write_atomic, OutputLock};
use crate::model::gradcon::Score;
use crate::train::{Observer, Pin, TrainConfig, Trainer};
use crate::{Error, Result, ScoreSettings};

/// The data sets the protocol knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
}

impl DatasetKind {
    /// An error naming `--class` unless `class` is one of the data set's classes.
    pub fn check_class(self, class: u8) -> Result<()> {
        if usize::from(class) < NUM_CLASSES {
            Ok(())
        } else {
            Err(Error::InvalidOption {
                option: "class",
                value: class.to_string(),
                expected: "a class of the data set, 0 to 9",
            })
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Cifar10 => "cifar10",
        }
    }
}

/// Training and test images of a data set, pooled (training first).
#[derive(Debug, Clone)]
pub struct Pool {
    pub kind: DatasetKind,
    pub images: Dataset,
    pub n_train: usize,
}

impl Pool {
    /// Loads both official splits from `dir`.
    pub fn load(kind: DatasetKind, dir: &Path) -> Result<Self> {
        let load = |split| match kind {
            DatasetKind::Mnist => load_mnist(dir, split),
            DatasetKind::FashionMnist => load_fashion_mnist(dir, split),
            DatasetKind::Cifar10 => load_cifar10(dir, split),
        };
        let train = load(Split::Train)?;
        let test = load(Split::Test)?;
        Ok(Self {
            kind,
            n_train: train.len(),
            images: train.concat(&test)?,
        })
    }

    /// The split of PAPER.md for `class`.
    pub fn split(&self, class: u8, val_fraction: f64, seed: u64) -> OneClassSplit {
        let labels = self.images.labels();
        match self.kind {
            DatasetKind::FashionMnist => fold_split(labels, 10, class, val_fraction > 0.0, seed),
            _ => holdout_split(
                &labels[..self.n_train],
                &labels[self.n_train..],
                class,
                val_fraction,
                seed,
            ),
        }
    }
}

/// The results of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: u8,
    pub auroc: Aurocs,
    /// Re-initialisations after a saturated output, and why.
    pub restarts: usize,
    pub restart_reasons: Vec<String>,
    /// Epoch of the selected model, and epochs run in its attempt.
    pub selected_epoch: usize,
    pub epochs_run: usize,
    pub best_val_loss: Option<f64>,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    /// Wall time of this class (training and scoring) in seconds, summed over resumed runs.
    pub seconds: f64,
    /// Precision, recall, F1 and false-positive rate on the test images at the threshold
    /// calibrated on the validation images (absent without validation images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_threshold: Option<AtThreshold>,
    /// The options and data the class was trained with (absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    /// The AUROCs at each budget of `--eval-at`, in epoch order (none without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetResult>,
    /// The data set and the weight of the gradient term the class was scored with (absent in
    /// older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

/// The whole protocol's results (the JSON schema of `results.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolResult {
    pub engine: String,
    pub dataset: DatasetKind,
    pub config: TrainConfig,
    pub beta: f64,
    pub threads: usize,
    pub classes: Vec<ClassResult>,
    pub mean: Aurocs,
    pub total_restarts: usize,
    pub wall_seconds: f64,
    /// The mean AUROCs at each budget of `--eval-at` (none without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetMean>,
}

/// Where one class's files go.
fn class_path(out: &Path, class: u8, ext: &str) -> PathBuf {
    out.join(format!("class_{class}.{ext}"))
}

/// Options of a protocol run that are not training options.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolOptions {
    /// Weight of the gradient term in the score.
    pub beta: f64,
    /// Retrain classes whose files in the output folder were written with other inputs.
    pub fresh: bool,
    /// Also score, at each of these epochs, the model selected at that point (see
    /// [`super::budget`]).
    pub eval_at: Vec<usize>,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        Self {
            beta: crate::DEFAULT_BETA,
            fresh: false,
            eval_at: Vec::new(),
        }
    }
}

/// Runs (or resumes) one class into `out`, holding the class's lock.
///
/// Its files: `class_<c>.ckpt` while training (resumed when it records the same options and
/// data, removed once the result is written), `class_<c>.gcm` (the selected model) and
/// `class_<c>.json` (the result, which records the options and data too: a rerun that
/// matches reuses it, one with a larger `--epochs` retrains the class, any other is refused
/// unless `fresh`).
pub fn run_class(
    pool: &Pool,
    class: u8,
    config: &TrainConfig,
    options: &ProtocolOptions,
    out: &Path,
    observer: &mut dyn ProtocolObserver,
) -> Result<ClassResult> {
    let result_path = class_path(out, class, "json");
    let ckpt = class_path(out, class, "ckpt");
    let model_path = class_path(out, class, "gcm");
    let partial = partial_path(out, class);
    let budgets = check_budgets(&options.eval_at, config.epochs)?;
    let _lock = OutputLock::acquire(&result_path)?;
    for p in [&ckpt, &model_path, &partial] {
        remove_stale_temporaries(p)?;
    }
    let split = pool.split(class, config.val_fraction, config.seed);
    let train_set = pool.images.take(&split.train)?;
    let val_set = pool.images.take(&split.val)?;
    let trainer = Trainer::new(config.clone())?
        .stream(u64::from(class))
        .source(format!("{} class {class}", pool.kind.name()))
        .checkpoint(&ckpt)
        .decision(options.beta, crate::eval::threshold::DEFAULT_FPR)?;
    let pin = trainer.pin(&train_set, &val_set);
    if options.fresh {
        remove_if_present(&ckpt)?;
        remove_if_present(&result_path)?;
        remove_if_present(&partial)?;
    }
    if let Some(done) = finished_result(&result_path, &pin)? {
        let done = with_budgets(done, &budgets, &result_path)?;
        observer.class_reused(&done, &result_path);
        return Ok(done);
    }
    let test_scores = |model: &crate::Detector| -> Result<Vec<Score>> {
        let scores = model.score_dataset(&pool.images, &split.test)?;
        match scores.iter().position(|s| !s.gradcon.is_finite()) {
            Some(i) => Err(Error::invalid(
                "protocol",
                format!(
                    "class {class}: the model scores NaN on test image {}",
                    split.test[i]
                ),
            )),
            None => Ok(scores),
        }
    };
    let evaluate = |mut model: crate::Detector| -> Result<Aurocs> {
        model.set_beta(options.beta)?;
        Aurocs::of(&test_scores(&model)?, &split.test_is_normal)
    };
    let resuming = ckpt.exists();
    let (state, evaluated) = {
        let mut progress = observer.class_started(class);
        if budgets.is_empty() {
            let state = trainer.fit_state(&train_set, &val_set, &mut *progress)?;
            (state, Evaluated::default())
        } else {
            let mut with_budgets = BudgetObserver::new(
                &mut *progress,
                &budgets,
                &evaluate,
                partial.clone(),
                &pin,
                resuming,
                class,
            )?;
            let state = trainer.fit_state(&train_set, &val_set, &mut with_budgets)?;
            (state, with_budgets.evaluated())
        }
    };
    let scoring = Instant::now();
    let model = trainer.finish(&state, &val_set)?;
    model.check_finite(&model_path.display().to_string())?;
    model.save(&model_path)?;
    let scores = test_scores(&model)?;
    let budget_results = evaluated.results(&state, Aurocs::of(&scores, &split.test_is_normal)?);
    let result = ClassResult {
        class,
        auroc: Aurocs::of(&scores, &split.test_is_normal)?,
        restarts: state.attempt,
        restart_reasons: state.restarts.clone(),
        selected_epoch: state.selected_epoch(),
        epochs_run: state.epoch,
        best_val_loss: state
            .history
            .iter()
            .filter(|r| r.attempt == state.attempt)
            .filter_map(|r| r.val_loss)
            .min_by(f64::total_cmp),
        train_images: split.train.len(),
        val_images: split.val.len(),
        test_images: split.test.len(),
        // Training time summed over resumed runs, and this run's scoring.
        at_threshold: model.threshold().map(|t| {
            let anomaly: Vec<f64> = scores.iter().map(|s| s.anomaly_score).collect();
            let truth: Vec<bool> = split.test_is_normal.iter().map(|n| !n).collect();
            AtThreshold::of(&anomaly, &truth, t)
        }),
        seconds: state.seconds + scoring.elapsed().as_secs_f64(),
        pin: Some(pin),
        budgets: budget_results,
        dataset: Some(pool.kind),
        beta: Some(options.beta),
    };
    let json = serde_json::to_string_pretty(&result).expect("plain data");
    write_atomic(&result_path, json.as_bytes())?;
    remove_if_present(&partial)?;
    remove_if_present(&ckpt)?;
    Ok(result)
}

/// A finished class's result with the evaluations at `budgets` alone; an error naming the
/// budgets it lacks (its run did not evaluate them).
fn with_budgets(mut done: ClassResult, budgets: &[usize], path: &Path) -> Result<ClassResult> {
    let missing: Vec<String> = budgets
        .iter()
        .filter(|&&b| !done.budgets.iter().any(|r| r.epoch == b))
        .map(|b| b.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "eval-at",
            format!(
                "{} was trained without evaluating epoch(s) {}; add --fresh to retrain it",
                path.display(),
                missing.join(", ")
            ),
        ));
    }
    done.budgets.retain(|r| budgets.contains(&r.epoch));
    Ok(done)
}

/// The result in `path` if it records the run of `pin`; `None` when there is none or a larger
/// `--epochs` asks for more; an error naming the differences otherwise.
fn finished_result(path: &Path, pin: &Pin) -> Result<Option<ClassResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "read", e)),
    };
    let done: ClassResult = serde_json::from_str(&text).map_err(|e| {
        Error::format(
            path.display().to_string(),
            format!("not a class result: {e}"),
        )
    })?;
    let pinned = |differences: Vec<String>| Error::Pinned {
        file: path.display().to_string(),
        differences,
    };
    let Some(recorded) = &done.pin else {
        return Err(pinned(vec![
            "it records no training options (written by an older version)".into(),
        ]));
    };
    let differences = recorded.differences(pin);
    if !differences.is_empty() {
        return Err(pinned(differences));
    }
    match recorded.epochs_change(pin) {
        None => Ok(Some(done)),
        Some((was, now)) if now > was => Ok(None),
        Some((was, now)) => Err(pinned(vec![format!(
            "--epochs was {was}, now {now}: a finished class is not shortened"
        )])),
    }
}

/// What a protocol run reports besides each class's training progress.
pub trait ProtocolObserver {
    /// The observer of class `class`'s training.
    fn class_started(&mut self, class: u8) -> Box<dyn Observer + '_>;
    /// Class `class` is done (trained now, or found finished in the output folder).
    fn class_done(&mut self, _result: &ClassResult) {}
    /// A class's result in the output folder records this run: it is reused.
    fn class_reused(&mut self, _result: &ClassResult, _path: &Path) {}
}

/// A protocol observer that shows nothing.
#[derive(Debug, Default)]
pub struct SilentProtocol;

impl ProtocolObserver for SilentProtocol {
    fn class_started(&mut self, _class: u8) -> Box<dyn Observer + '_> {
        Box::new(crate::train::Silent)
    }
}

/// Runs (or resumes) every class in `classes` into `out` and collects the results.
pub fn run_protocol(
    kind: DatasetKind,
    dir: &Path,
    out: &Path,
    classes: &[u8],
    config: &TrainConfig,
    options: ProtocolOptions,
    observer: &mut dyn ProtocolObserver,
) -> Result<ProtocolResult> {
    let started = Instant::now();
    config.validate()?;
    let beta = options.beta;
    ScoreSettings {
        beta,
        ..ScoreSettings::default()
    }
    .validate()?;
    if let Some(&c) = classes.iter().find(|&&c| usize::from(c) >= NUM_CLASSES) {
        return Err(Error::InvalidOption {
            option: "classes",
            value: c.to_string(),
            expected: "classes from 0 to 9",
        });
    }
    check_budgets(&options.eval_at, config.epochs)?;
    let pool = Pool::load(kind, dir)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "create folder", e))?;
    let mut rows = Vec::new();
    for &c in classes {
        let r = run_class(&pool, c, config, &options, out, observer)?;
        observer.class_done(&r);
        rows.push(r);
    }
    Ok(ProtocolResult {
        engine: format!("gradcon-rs {}", env!("CARGO_PKG_VERSION")),
        dataset: kind,
        config: config.clone(),
        beta,
        threads: rayon::current_num_threads(),
        mean: mean_aurocs(&rows),
        total_restarts: rows.iter().map(|r| r.restarts).sum(),
        budgets: budget_means(&rows),
        classes: rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The means over `classes` at each budget they all have, in budget order.
pub fn budget_means(classes: &[ClassResult]) -> Vec<BudgetMean> {
    let Some(first) = classes.first() else {
        return Vec::new();
    };
    first
        .budgets
        .iter()
        .map(|b| b.epoch)
        .filter(|&e| {
            classes
                .iter()
                .all(|c| c.budgets.iter().any(|b| b.epoch == e))
        })
        .map(|epoch| {
            let at: Vec<Aurocs> = classes
                .iter()
                .filter_map(|c| c.budgets.iter().find(|b| b.epoch == epoch))
                .map(|b| b.auroc)
                .collect();
            BudgetMean {
                epoch,
                mean: Aurocs::mean(&at),
            }
        })
        .collect()
}

/// Mean of each AUROC over the classes.
pub fn mean_aurocs(classes: &[ClassResult]) -> Aurocs {
    Aurocs::mean(&classes.iter().map(|c| c.auroc).collect::<Vec<_>>())
}

/// The results as a table for a terminal.
pub fn table(result: &ProtocolResult) -> String {
    let mut s = format!(
        "{:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>6}\n",
        "class", "GradCon", "recon", "grad", "restarts", "epoch"
    );
    for c in &result.classes {
        s += &format!(
            "{:>5}  {:>8.4}  {:>8.4}  {:>8.4}  {:>8}  {:>6}\n",
            c.class, c.auroc.gradcon, c.auroc.recon, c.auroc.grad, c.restarts, c.selected_epoch
        );
    }
    s += &format!(
        "{:>5}  {:>8.4}  {:>8.4}  {:>8.4}  {:>8}\n",
        "mean", result.mean.gradcon, result.mean.recon, result.mean.grad, result.total_restarts
    );
    s += "AUROC on each class's test split of the GradCon score, its reconstruction term and its\n\
          gradient term; restarts after a saturated output; epoch of the selected model.\n";
    if !result.budgets.is_empty() {
        s += &format!(
            "\n{:>6}  {:>8}  {:>8}  {:>8}\n",
            "epochs", "GradCon", "recon", "grad"
        );
        for b in &result.budgets {
            let stopped = result
                .classes
                .iter()
                .any(|c| c.budgets.iter().any(|r| r.epoch == b.epoch && r.stopped));
            s += &format!(
                "{:>6}  {:>8.4}  {:>8.4}  {:>8.4}{}\n",
                b.epoch,
                b.mean.gradcon,
                b.mean.recon,
                b.mean.grad,
                if stopped {
                    "  (some classes had stopped early: their stopped model)"
                } else {
                    ""
                }
            );
        }
        s += "Mean AUROC over the classes of the model selected after each number of epochs.\n";
    }
    s
}
