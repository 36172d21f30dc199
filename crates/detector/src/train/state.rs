//! The training state and the epoch loop behind [`super::Trainer`].

use std::path::Path;
use std::time::Instant;

use autograd::Tape;
use core_tensor::{Rng, Tensor};

use super::optim::{Adam, AdamConfig};
use super::pin::Pin;
use super::saturation::{health_stats, mean_logits, EpochHealth, Remedy};
use super::{Cancel, EpochRecord, Init, Observer, TrainConfig};
use crate::data::Dataset;
use crate::io::checkpoint::Checkpoint;
use crate::model::{gradcon, Autoencoder, ReferenceGradients};
use crate::{Detector, Error, Result};

/// Stream tags for the seeded generators.
const TAG_INIT: u64 = 0x494e_4954; // "INIT"
const TAG_SHUFFLE: u64 = 0x5348_5546; // "SHUF"

/// Images used to judge saturation when there is no validation split.
const HEALTH_IMAGES_WITHOUT_VAL: usize = 512;

/// The selected (lowest validation loss) weights and reference gradients so far.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Best {
    pub(crate) model: Autoencoder,
    pub(crate) reference: ReferenceGradients,
    pub(crate) val_loss: f64,
    pub(crate) epoch: usize,
}

/// Everything a resumed run needs; saved after every epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    pub config: TrainConfig,
    /// Stream of this run's seeded generators (the class, in the protocol).
    pub stream: u64,
    pub model: Autoencoder,
    pub adam: Adam,
    /// `r_l` and the number of updates they average (`None` before the first step).
    pub refs: Option<ReferenceGradients>,
    /// Completed epochs of the current attempt.
    pub epoch: usize,
    pub(crate) best: Option<Best>,
    pub since_best: usize,
    pub attempt: usize,
    pub shuffle_rng: Rng,
    pub history: Vec<EpochRecord>,
    /// Why each restart happened.
    pub restarts: Vec<String>,
    pub finished: bool,
    /// The options and data of the run (absent in checkpoints written before runs were
    /// pinned).
    pub pin: Option<Pin>,
    /// Wall time of training so far, summed over resumed runs, in seconds.
    pub seconds: f64,
    /// Where the current attempt's loss stopped being finite (epoch, step), if it did.
    pub(crate) diverged: Option<(usize, usize)>,
}

impl TrainState {
    /// A fresh attempt: new weights, zero Adam state, no reference gradients.
    pub fn fresh(
        config: &TrainConfig,
        channels: usize,
        stream: u64,
        attempt: usize,
        init: &Init,
    ) -> Self {
        let (model, refs) = match init {
            Init::From(d) if attempt == 0 => (
                d.autoencoder().clone(),
                (d.reference().count > 0).then(|| d.reference().clone()),
            ),
            _ => {
                let mut rng = Rng::derive(&[config.seed, TAG_INIT, stream, attempt as u64]);
                (Autoencoder::init(channels, &mut rng), None)
            }
        };
        let shapes: Vec<&[usize]> = model.params.iter().map(Tensor::shape).collect();
        let adam = Adam::new(
            AdamConfig {
                lr: config.lr,
                ..AdamConfig::default()
            },
            &shapes,
        );
        Self {
            config: config.clone(),
            stream,
            model,
            adam,
            refs,
            epoch: 0,
            best: None,
            since_best: 0,
            attempt,
            shuffle_rng: Rng::derive(&[config.seed, TAG_SHUFFLE, stream, attempt as u64]),
            history: Vec::new(),
            restarts: Vec::new(),
            finished: false,
            pin: None,
            seconds: 0.0,
            diverged: None,
        }
    }

    /// The current parameters on `tape` and GradCon's loss of the batch `x` built on it.
    fn loss_on<'t>(
        &self,
        tape: &'t Tape<f32>,
        x: Tensor<f32>,
        create_graph: bool,
    ) -> Result<(Vec<autograd::Var<'t, f32>>, gradcon::Loss<'t>)> {
        let params: Vec<_> = self
            .model
            .params
            .iter()
            .map(|p| tape.param(p.clone()))
            .collect();
        let refs: Option<Vec<_>> = self
            .refs
            .as_ref()
            .map(|r| r.grads.iter().map(|t| tape.constant(t.clone())).collect());
        let x = tape.constant(x);
        let loss = gradcon::loss(&params, x, refs.as_deref(), self.config.alpha, create_graph)?;
        Ok((params, loss))
    }

    /// One optimisation step on the batch `x`; returns `(J, mse)`.
    pub fn step(&mut self, x: &Tensor<f32>) -> Result<(f64, f64)> {
        // The step's parallel regions follow each other closely: keep the other workers awake.
        let _busy = crate::parallel::BusyWorkers::start();
        let tape = Tape::new();
        let (params, loss) = self.loss_on(&tape, x.clone(), true)?;
        let (j, mse) = (
            loss.total.value().to_scalar()? as f64,
            loss.mse.value().to_scalar()? as f64,
        );
        let grads = autograd::grad_tensors(loss.total, &params)?;
        drop(tape);
        self.update_refs(&grads);
        self.adam.update(&mut self.model.params, &grads);
        Ok((j, mse))
    }

    /// `r <- (r k + dJ/dW) / (k + 1)` for the four decoder weights; `k <- k + 1`.
    fn update_refs(&mut self, grads: &[Tensor<f32>]) {
        match &mut self.refs {
            Some(refs) => refs.update(grads),
            None => self.refs = Some(ReferenceGradients::first(grads)),
        }
    }

    /// Validation `J` and MSE over consecutive batches (weighted by batch size), and the
    /// reconstruction statistics of the saturation monitor.
    pub fn evaluate(&self, data: &Dataset, indices: &[usize]) -> Result<(f64, f64, f64, f64)> {
        let (mut j_sum, mut mse_sum) = (0.0, 0.0);
        let mut inputs = Vec::new();
        let mut recons = Vec::new();
        let _busy = crate::parallel::BusyWorkers::start();
        for chunk in indices.chunks(self.config.batch_size) {
            let x = data.batch_tensor(chunk)?;
            let tape = Tape::new();
            let (_, loss) = self.loss_on(&tape, x.clone(), false)?;
            j_sum += loss.total.value().to_scalar()? as f64 * chunk.len() as f64;
            mse_sum += loss.mse.value().to_scalar()? as f64 * chunk.len() as f64;
            inputs.extend_from_slice(x.data());
            recons.extend_from_slice(loss.reconstruction()?.data());
        }
        let n = indices.len().max(1) as f64;
        let (spread, dsig) = health_stats(&inputs, &recons, data.image_len());
        Ok((j_sum / n, mse_sum / n, spread, dsig))
    }

    /// The model training selected if it stopped now: the lowest validation loss among the
    /// epochs compared ([`TrainConfig::compares_epoch`]) and the current one; the current
    /// epoch's without validation.
    pub fn selected(&self) -> Detector {
        let mut d = match self.kept_best() {
            Some(b) => Detector::new(b.model.clone(), b.reference.clone()),
            None => self.current(),
        };
        d.set_provenance(self.pin.as_ref().map(|pin| crate::Provenance {
            pin: pin.clone(),
            selected_epoch: self.selected_epoch(),
            epochs_run: self.epoch,
            restarts: self.restarts.clone(),
            history: self.history.clone(),
        }));
        d
    }

    /// Epoch of the selected model.
    pub fn selected_epoch(&self) -> usize {
        self.kept_best().map_or(self.epoch, |b| b.epoch)
    }

    /// The kept best, unless the current epoch (which stopping here makes the last, always
    /// compared) has a lower validation loss. With every epoch compared the kept best already
    /// holds it when it is lower, so this is the kept best.
    fn kept_best(&self) -> Option<&Best> {
        let current = self
            .history
            .iter()
            .rev()
            .find(|r| r.attempt == self.attempt && r.epoch == self.epoch)
            .and_then(|r| r.val_loss);
        self.best
            .as_ref()
            .filter(|b| current.is_none_or(|v| v >= b.val_loss))
    }

    /// The current weights and reference gradients (zeros before the first step).
    pub fn current(&self) -> Detector {
        Detector::new(self.model.clone(), self.current_reference())
    }

    pub(crate) fn current_reference(&self) -> ReferenceGradients {
        self.refs
            .clone()
            .unwrap_or_else(|| ReferenceGradients::zeros(self.model.channels))
    }
}

/// Trains on `train` (validating on `val` when it is not empty) from `init`, saving a
/// checkpoint to `checkpoint` after every epoch and resuming from it when it exists and `pin`
/// matches what it records.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    config: &TrainConfig,
    pin: &Pin,
    train: &Dataset,
    val: &Dataset,
    init: &Init,
    checkpoint: Option<&Path>,
    cancel: &Cancel,
    observer: &mut dyn Observer,
) -> Result<TrainState> {
    if train.is_empty() {
        return Err(Error::invalid("train", "the training set is empty"));
    }
    config.validate()?;
    let started = Instant::now();
    let mut state = match checkpoint.filter(|p| p.exists()) {
        Some(path) => {
            let s = TrainState::from_checkpoint(&Checkpoint::read(path)?)?;
            let s = s.resumable(config, pin, path)?;
            observer.resumed(path, s.attempt, s.epoch);
            s
        }
        None => TrainState::fresh(config, train.channels(), pin.stream, 0, init),
    };
    state.pin = Some(pin.clone());
    if state.epoch > 0 {
        observer.state_saved(&state)?;
    }
    let seconds_before = state.seconds;
    let run = Run {
        config,
        train,
        val,
        init,
        health_idx: if val.is_empty() {
            (0..train.len().min(HEALTH_IMAGES_WITHOUT_VAL)).collect()
        } else {
            (0..val.len()).collect()
        },
        output_bias: (config.remedy == Remedy::OutputBias).then(|| {
            let plane = train.height() * train.width();
            mean_logits(train.images(), train.channels(), plane)
        }),
    };
    let mut order: Vec<usize> = (0..train.len()).collect();
    while !state.finished && state.epoch < config.epochs {
        match run.epoch(&mut state, &mut order, cancel, observer)? {
            Some(record) => run.judge(&mut state, record, observer),
            None => run.restart_after_divergence(&mut state, observer)?,
        }
        if config.patience.is_some_and(|p| state.since_best >= p) {
            state.finished = true;
        }
        state.seconds = seconds_before + started.elapsed().as_secs_f64();
        if let Some(path) = checkpoint {
            state.to_checkpoint().write_atomic(path)?;
        }
        observer.state_saved(&state)?;
    }
    state.finished = true;
    state.seconds = seconds_before + started.elapsed().as_secs_f64();
    Ok(state)
}

/// One training run's fixed inputs.
struct Run<'a> {
    config: &'a TrainConfig,
    train: &'a Dataset,
    val: &'a Dataset,
    init: &'a Init,
    /// The images the saturation monitor watches (of `val`, or of `train` without one).
    health_idx: Vec<usize>,
    /// The output layer's bias of an attempt after a saturated one ([`Remedy::OutputBias`]).
    output_bias: Option<Vec<f32>>,
}

impl Run<'_> {
    /// Trains one epoch and validates; `None` when a batch's loss was not finite (the state
    /// then records where, in `diverged`).
    fn epoch(
        &self,
        state: &mut TrainState,
        order: &mut [usize],
        cancel: &Cancel,
        observer: &mut dyn Observer,
    ) -> Result<Option<EpochRecord>> {
        let (config, train, val) = (self.config, self.train, self.val);
        order.sort_unstable();
        if config.shuffle {
            state.shuffle_rng.shuffle(order);
        }
        let batches = order.len().div_ceil(config.batch_size);
        observer.epoch_started(state.attempt, state.epoch + 1, batches);
        let (mut j_sum, mut mse_sum) = (0.0, 0.0);
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let (j, mse) = state.step(&train.batch_tensor(chunk)?)?;
            if !(j.is_finite() && mse.is_finite()) {
                state.diverged = Some((state.epoch + 1, step + 1));
                return Ok(None);
            }
            j_sum += j * chunk.len() as f64;
            mse_sum += mse * chunk.len() as f64;
            observer.batch_done(j, chunk.len());
            if cancel.is_cancelled() {
                return Err(Error::Cancelled { epoch: state.epoch });
            }
        }
        state.epoch += 1;
        let health_set = if val.is_empty() { train } else { val };
        let (vj, vmse, spread, dsig) = state.evaluate(health_set, &self.health_idx)?;
        if !(vj.is_finite() && vmse.is_finite()) {
            state.diverged = Some((state.epoch, batches));
            return Ok(None);
        }
        Ok(Some(EpochRecord {
            attempt: state.attempt,
            epoch: state.epoch,
            train_loss: j_sum / train.len() as f64,
            train_mse: mse_sum / train.len() as f64,
            val_loss: (!val.is_empty()).then_some(vj),
            val_mse: (!val.is_empty()).then_some(vmse),
            spread,
            sigmoid_derivative: dsig,
            health_mse: vmse,
        }))
    }

    /// Validation selection and the saturation monitor after an epoch.
    fn judge(&self, state: &mut TrainState, record: EpochRecord, observer: &mut dyn Observer) {
        if let Some(vj) = record.val_loss {
            let compared = self.config.compares_epoch(state.epoch);
            if compared && state.best.as_ref().is_none_or(|b| vj < b.val_loss) {
                state.best = Some(Best {
                    model: state.model.clone(),
                    reference: state.current_reference(),
                    val_loss: vj,
                    epoch: state.epoch,
                });
                state.since_best = 0;
            } else {
                state.since_best += 1;
            }
        }
        let previous = state
            .history
            .iter()
            .rev()
            .find(|r| r.attempt == state.attempt)
            .map(health_of);
        let verdict = self
            .config
            .saturation
            .judge(previous.as_ref(), &health_of(&record));
        observer.epoch_done(&record);
        state.history.push(record);
        if let Some(why) = verdict {
            if state.attempt < self.config.restarts {
                observer.restarted(&why, state.attempt + 1);
                let mut reason = format!("attempt {}: {why}", state.attempt);
                if let Some(bias) = &self.output_bias {
                    let logits: Vec<String> = bias.iter().map(|b| format!("{b:.3}")).collect();
                    reason += &format!(
                        "; remedy output-bias: attempt {} starts its output bias at the logit \
                         of the training images' mean pixel ({})",
                        state.attempt + 1,
                        logits.join(", ")
                    );
                }
                self.restart(state, reason);
                if let Some(bias) = &self.output_bias {
                    state
                        .model
                        .output_bias_mut()
                        .data_mut()
                        .copy_from_slice(bias);
                }
            } else {
                observer.saturated_without_restart(&why);
            }
        }
    }

    /// After a non-finite loss: a fresh attempt while restarts remain, an error naming the
    /// epoch and step otherwise.
    fn restart_after_divergence(
        &self,
        state: &mut TrainState,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let (epoch, step) = state.diverged.unwrap_or((state.epoch, 0));
        if state.attempt >= self.config.restarts {
            return Err(Error::Diverged {
                attempt: state.attempt,
                epoch,
                step,
            });
        }
        observer.diverged(epoch, step, state.attempt + 1);
        let reason = format!(
            "attempt {}: the training loss became NaN or infinite at epoch {epoch}, step {step}",
            state.attempt
        );
        self.restart(state, reason);
        Ok(())
    }

    /// Replaces `state` by the next attempt's fresh state, keeping the history.
    fn restart(&self, state: &mut TrainState, reason: String) {
        let mut next = TrainState::fresh(
            self.config,
            self.train.channels(),
            state.stream,
            state.attempt + 1,
            self.init,
        );
        next.history = std::mem::take(&mut state.history);
        next.restarts = std::mem::take(&mut state.restarts);
        next.restarts.push(reason);
        next.pin = state.pin.take();
        next.seconds = state.seconds;
        *state = next;
    }
}

/// The monitor's view of an epoch.
fn health_of(r: &EpochRecord) -> EpochHealth {
    EpochHealth {
        epoch: r.epoch,
        val_mse: r.health_mse,
        spread: r.spread,
        sigmoid_derivative: r.sigmoid_derivative,
    }
}

impl TrainState {
    /// This state if a rerun with `config` and `pin` continues it: the same pinned options
    /// and data, and at least as many epochs (more extend a run that stopped at its last
    /// epoch). Otherwise an error naming the checkpoint and every difference.
    fn resumable(mut self, config: &TrainConfig, pin: &Pin, path: &Path) -> Result<Self> {
        let recorded = match &self.pin {
            Some(p) => p.clone(),
            // Written before runs were pinned: only the options can be compared.
            None => Pin {
                config: self.config.clone(),
                stream: self.stream,
                ..pin.clone()
            },
        };
        let differences = recorded.differences(pin);
        if !differences.is_empty() {
            return Err(Error::Pinned {
                file: path.display().to_string(),
                differences,
            });
        }
        if config.epochs < self.config.epochs && self.epoch > config.epochs {
            return Err(Error::Pinned {
                file: path.display().to_string(),
                differences: vec![format!(
                    "--epochs was {}, now {}: the run is past epoch {}, so it cannot be \
                     shortened",
                    self.config.epochs, config.epochs, config.epochs
                )],
            });
        }
        let stopped_early = config.patience.is_some_and(|p| self.since_best >= p);
        if self.finished && self.epoch < config.epochs && !stopped_early {
            self.finished = false; // a larger --epochs extends the run
        }
        self.config.epochs = config.epochs;
        Ok(self)
    }
}
