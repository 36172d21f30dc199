//! Training one GradCon model: the epoch loop, validation selection, early stopping, the
//! saturation monitor with restarts, and checkpoints that a killed run resumes from bit for bit.
//!
//! [`Trainer`] is the entry point: it takes a validated [`TrainConfig`], optionally a checkpoint
//! file to save to and resume from, a starting [`Detector`] and a [`Cancel`] flag, and reports
//! progress to an [`Observer`] instead of printing.
//!
//! ```
//! use detector::data::Dataset;
//! use detector::train::{Silent, TrainConfig, Trainer};
//! # let pixels = vec![128u8; 8 * 28 * 28];
//! let images = Dataset::new(pixels, vec![0; 8], 1, 28, 28)?; // eight grey 28x28 images
//! let config = TrainConfig { epochs: 2, batch_size: 4, ..TrainConfig::default() };
//! let trained = Trainer::new(config)?.fit(&images, &Dataset::empty(1, 28, 28), &mut Silent)?;
//! assert_eq!(trained.epochs_run, 2);
//! let score = trained.detector.score_dataset(&images, &[0])?;
//! # Ok::<(), detector::Error>(())
//! ```

pub mod optim;
pub mod pin;
pub mod saturation;
pub(crate) mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::{Detector, Error, Result};
use saturation::{Remedy, Saturated, SaturationRule};

pub use pin::Pin;
pub use state::TrainState;

/// Every option of a training run (PAPER.md's values by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Weight of the gradient-alignment loss (finite, at least 0).
    pub alpha: f64,
    /// Adam's learning rate (finite, above 0).
    pub lr: f64,
    /// Images per batch (at least 1; the last partial batch is kept).
    pub batch_size: usize,
    /// Maximum number of epochs (at least 1).
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: Option<usize>,
    /// Fraction of the training images held out for validation, in `[0, 1)`.
    pub val_fraction: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Re-initialisations allowed when the output saturates.
    pub restarts: usize,
    /// Reshuffle the training images every epoch.
    pub shuffle: bool,
    /// When an output counts as saturated.
    pub saturation: SaturationRule,
    /// What the fresh attempt after a saturated one changes.
    #[serde(default = "Remedy::unrecorded")]
    pub remedy: Remedy,
    /// Validation selection compares epochs 1, 1 + n, 1 + 2n, ... and the epoch training stops
    /// at (n = 1: every epoch; the authors' code compares every 5th, the epochs it
    /// checkpoints). See [`TrainConfig::compares_epoch`].
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub select_every: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            alpha: 0.03,
            lr: 1e-3,
            batch_size: 64,
            epochs: 1000,
            patience: None,
            val_fraction: 0.1,
            seed: 0,
            restarts: 0,
            shuffle: true,
            saturation: SaturationRule::default(),
            remedy: Remedy::default(),
            select_every: 1,
        }
    }
}

impl TrainConfig {
    /// Checks every option; the error names the first one out of range (by its field name,
    /// which the CLI spells as its flag).
    pub fn validate(&self) -> Result<()> {
        let bad = |option: &'static str, value: String, expected: &'static str| {
            Err(Error::InvalidOption {
                option,
                value,
                expected,
            })
        };
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha", self.alpha.to_string(), "a finite number >= 0");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "a finite number > 0");
        }
        if self.batch_size == 0 {
            return bad("batch", "0".into(), "at least 1");
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.patience == Some(0) {
            return bad("patience", "0".into(), "at least 1");
        }
        if self.select_every == 0 {
            return bad("select-every", "0".into(), "at least 1");
        }
        if !(self.val_fraction.is_finite() && (0.0..1.0).contains(&self.val_fraction)) {
            return bad(
                "val-fraction",
                self.val_fraction.to_string(),
                "a number in [0, 1)",
            );
        }
        self.saturation.validate()
    }
}

impl TrainConfig {
    /// Whether validation selection compares epoch `epoch` (from 1) as training passes it:
    /// `(epoch - 1) % select_every == 0`. The epoch training stops at is compared as well,
    /// when the selected model is asked for ([`TrainState::selected`]), so a run stopped at
    /// any epoch selects what a run of that many epochs would.
    pub fn compares_epoch(&self, epoch: usize) -> bool {
        epoch >= 1 && (epoch - 1).is_multiple_of(self.select_every.max(1))
    }
}

/// The epoch validation selection keeps after training stopped at the last of `val_losses`
/// (the validation loss of epochs 1, 2, ...), comparing every `select_every`-th epoch and the
/// last: the lowest loss, the earliest on ties. The specification [`TrainState`] follows as it
/// trains (it keeps the selected weights, not the losses); `None` for no epochs.
pub fn selected_epoch(val_losses: &[f64], select_every: usize) -> Option<usize> {
    let config = TrainConfig {
        select_every,
        ..TrainConfig::default()
    };
    let last = val_losses.len();
    let mut best: Option<(usize, f64)> = None;
    for (i, &loss) in val_losses.iter().enumerate() {
        let epoch = i + 1;
        if config.compares_epoch(epoch) && best.is_none_or(|(_, b)| loss < b) {
            best = Some((epoch, loss));
        }
    }
    match (best, val_losses.last()) {
        (Some((_, b)), Some(&l)) if l < b => Some(last),
        (Some((e, _)), _) => Some(e),
        (None, Some(_)) => Some(last),
        (None, None) => None,
    }
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub attempt: usize,
    pub epoch: usize,
    /// Mean training `J` and MSE over the epoch's batches, weighted by batch size.
    pub train_loss: f64,
    pub train_mse: f64,
    /// Validation `J` and MSE (absent without a validation split).
    pub val_loss: Option<f64>,
    pub val_mse: Option<f64>,
    /// Reconstruction spread across inputs and mean sigmoid derivative (see `saturation`).
    pub spread: f64,
    pub sigmoid_derivative: f64,
    /// MSE on the images the saturation monitor watches (validation, or training without).
    pub health_mse: f64,
}

/// Callbacks for progress display; every method has a silent default.
pub trait Observer {
    /// An epoch of `batches` batches begins (`epoch` counts from 1 within the attempt).
    fn epoch_started(&mut self, _attempt: usize, _epoch: usize, _batches: usize) {}
    /// A batch of `images` images was trained on, with loss `J`.
    fn batch_done(&mut self, _loss: f64, _images: usize) {}
    /// An epoch ended (after validation).
    fn epoch_done(&mut self, _record: &EpochRecord) {}
    /// The output saturated and training starts attempt `next_attempt` afresh.
    fn restarted(&mut self, _why: &Saturated, _next_attempt: usize) {}
    /// The output saturated and no restarts are left: training goes on.
    fn saturated_without_restart(&mut self, _why: &Saturated) {}
    /// Training resumed from a checkpoint after `epoch` completed epochs of `attempt`.
    fn resumed(&mut self, _path: &Path, _attempt: usize, _epoch: usize) {}
    /// The loss became NaN or infinite at `epoch`, `step`; training starts attempt
    /// `next_attempt` afresh.
    fn diverged(&mut self, _epoch: usize, _step: usize, _next_attempt: usize) {}
    /// The state after an epoch has been judged and checkpointed, and once more on resuming
    /// (the state then is the checkpoint's). [`TrainState::selected`] is the model the run
    /// would return if it stopped here. An error stops the run (its checkpoint is kept).
    fn state_saved(&mut self, _state: &TrainState) -> crate::Result<()> {
        Ok(())
    }
}

/// An observer that shows nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Observer for Silent {}

/// A flag that stops a training run between two batches: clone it, hand one copy to the
/// [`Trainer`] and call [`Cancel::cancel`] on another from any thread. The run then returns
/// [`Error::Cancelled`]; its checkpoint (of the last completed epoch) is kept for a resume.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where training starts from.
#[derive(Debug, Clone)]
pub enum Init {
    /// PyTorch-default initialisation from a generator derived from (seed, stream, attempt).
    Seeded,
    /// Given weights (and their reference gradients when they have a history).
    From(Box<Detector>),
}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The selected model: the lowest validation loss's, or the last epoch's without a
    /// validation split.
    pub detector: Detector,
    /// Epoch of the selected model (within its attempt).
    pub selected_epoch: usize,
    /// Epochs run in the last attempt.
    pub epochs_run: usize,
    /// Re-initialisations after a saturated output, and why.
    pub restart_reasons: Vec<String>,
    /// Every epoch of every attempt.
    pub history: Vec<EpochRecord>,
}

impl Trained {
    /// Number of restarts.
    pub fn restarts(&self) -> usize {
        self.restart_reasons.len()
    }

    fn of(state: &TrainState) -> Self {
        Self {
            detector: state.selected(),
            selected_epoch: state.selected_epoch(),
            epochs_run: state.epoch,
            restart_reasons: state.restarts.clone(),
            history: state.history.clone(),
        }
    }
}

/// A training run to be started: its validated configuration and where it saves, starts from
/// and can be stopped.
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    stream: u64,
    source: String,
    init: Init,
    checkpoint: Option<PathBuf>,
    cancel: Cancel,
    beta: f64,
    fpr: f64,
}

impl Trainer {
    /// A run of `config`, which is validated here ([`TrainConfig::validate`]).
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            stream: 0,
            source: "the given images".into(),
            init: Init::Seeded,
            checkpoint: None,
            cancel: Cancel::new(),
            beta: crate::DEFAULT_BETA,
            fpr: crate::eval::threshold::DEFAULT_FPR,
        })
    }

    /// The decision the trained detector makes: its score weight `beta`, and the target
    /// false-positive rate `fpr` its threshold is calibrated at on the validation images
    /// (defaults: [`crate::DEFAULT_BETA`], 5%). Neither changes the weights, so neither is
    /// pinned.
    pub fn decision(mut self, beta: f64, fpr: f64) -> Result<Self> {
        crate::ScoreSettings {
            beta,
            ..crate::ScoreSettings::default()
        }
        .validate()?;
        crate::eval::threshold::check_fpr(fpr)?;
        (self.beta, self.fpr) = (beta, fpr);
        Ok(self)
    }

    /// The stream of the run's seeded generators (the protocol uses the class), so that runs
    /// of one seed on different data draw different numbers.
    pub fn stream(mut self, stream: u64) -> Self {
        self.stream = stream;
        self
    }

    /// Where the training images come from, as the run's [`Pin`] records it for messages
    /// (e.g. `fashion-mnist class 3`, or a file name).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Start from `detector`'s weights (and reference gradients) instead of a seeded
    /// initialisation.
    pub fn init_from(mut self, detector: Detector) -> Self {
        self.init = Init::From(Box::new(detector));
        self
    }

    /// Save the training state to `path` after every epoch, and resume from it when it exists
    /// and records the same options and data (see [`Pin`]).
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Stop between two batches once `cancel` is raised.
    pub fn cancel_on(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The pin of a run of this trainer on `train` and `val`.
    pub fn pin(&self, train: &Dataset, val: &Dataset) -> Pin {
        let mut pin = Pin::new(&self.config, self.stream, self.source.clone(), train, val);
        if let Init::From(d) = &self.init {
            pin.init = Some(pin::digest_bytes(&d.to_bytes()));
        }
        pin
    }

    /// Trains on `train`, validating on `val` when it is not empty.
    pub fn fit(
        &self,
        train: &Dataset,
        val: &Dataset,
        observer: &mut dyn Observer,
    ) -> Result<Trained> {
        let state = self.fit_state(train, val, observer)?;
        let mut trained = Trained::of(&state);
        trained.detector = self.finish(&state, val)?;
        Ok(trained)
    }

    /// The detector a finished `state` selected, with this trainer's `beta`, its threshold
    /// calibrated on the normal images `val` (none without them).
    pub fn finish(&self, state: &TrainState, val: &Dataset) -> Result<Detector> {
        let mut d = state.selected();
        d.set_beta(self.beta)?;
        if !val.is_empty() {
            d.calibrate(val, self.fpr)?;
        }
        Ok(d)
    }

    /// [`Trainer::fit`], returning the whole final training state.
    pub fn fit_state(
        &self,
        train: &Dataset,
        val: &Dataset,
        observer: &mut dyn Observer,
    ) -> Result<TrainState> {
        let pin = self.pin(train, val);
        state::run(
            &self.config,
            &pin,
            train,
            val,
            &self.init,
            self.checkpoint.as_deref(),
            &self.cancel,
            observer,
        )
    }
}
