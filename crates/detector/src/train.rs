//! Training one GradCon model: the epoch loop, validation selection, early stopping, the
//! saturation monitor with restarts, and checkpoints that a killed run resumes from bit for bit.

use std::path::Path;

use autograd::Tape;
use core_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::data::Dataset;
use crate::gradcon;
use crate::model::{GradConModel, GRAD_LAYER_PARAMS};
use crate::optim::{Adam, AdamConfig};
use crate::saturation::{health_stats, EpochHealth, Saturated, SaturationRule};
use crate::{Error, Result};

/// Every option of a training run (PAPER.md's values by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub alpha: f64,
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: Option<usize>,
    pub val_fraction: f64,
    pub seed: u64,
    /// Re-initialisations allowed when the output saturates.
    pub restarts: usize,
    pub shuffle: bool,
    pub saturation: SaturationRule,
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
        }
    }
}

/// Stream tags for the seeded generators.
const TAG_INIT: u64 = 0x494e_4954; // "INIT"
const TAG_SHUFFLE: u64 = 0x5348_5546; // "SHUF"

/// Images used to judge saturation when there is no validation split.
const HEALTH_IMAGES_WITHOUT_VAL: usize = 512;

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

/// A model and its reference gradients: what training produces and scoring needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedModel {
    pub model: GradConModel,
    /// `r_l` for the four decoder weights.
    pub refs: Vec<Tensor<f32>>,
    pub ref_count: u64,
}

/// The selected (lowest validation loss) weights and reference gradients so far.
#[derive(Debug, Clone, PartialEq)]
struct Best {
    trained: TrainedModel,
    val_loss: f64,
    epoch: usize,
}

/// Everything a resumed run needs; saved after every epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    pub config: TrainConfig,
    /// Stream of this run's seeded generators (the class, in the protocol).
    pub stream: u64,
    pub model: GradConModel,
    pub adam: Adam,
    /// `r_l` and the number of updates they average (`None` before the first step).
    pub refs: Option<Vec<Tensor<f32>>>,
    pub ref_count: u64,
    /// Completed epochs of the current attempt.
    pub epoch: usize,
    best: Option<Best>,
    pub since_best: usize,
    pub attempt: usize,
    pub shuffle_rng: Rng,
    pub history: Vec<EpochRecord>,
    /// Why each restart happened.
    pub restarts: Vec<String>,
    pub finished: bool,
}

/// Callbacks for progress display; every method has a silent default.
pub trait Observer {
    fn epoch_started(&mut self, _attempt: usize, _epoch: usize, _batches: usize) {}
    fn batch_done(&mut self, _loss: f64, _images: usize) {}
    fn epoch_done(&mut self, _record: &EpochRecord) {}
    fn restarted(&mut self, _why: &Saturated, _next_attempt: usize) {}
    fn saturated_without_restart(&mut self, _why: &Saturated) {}
}

/// An observer that shows nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Observer for Silent {}

/// Where training starts from.
#[derive(Debug, Clone)]
pub enum Init {
    /// PyTorch-default initialisation from a generator derived from (seed, stream, attempt).
    Seeded,
    /// Given weights (and optionally reference gradients with their count).
    From(TrainedModel),
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
        let (model, refs, ref_count) = match init {
            Init::From(t) if attempt == 0 => (
                t.model.clone(),
                (t.ref_count > 0).then(|| t.refs.clone()),
                t.ref_count,
            ),
            _ => {
                let mut rng = Rng::derive(&[config.seed, TAG_INIT, stream, attempt as u64]);
                (GradConModel::init(channels, &mut rng), None, 0)
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
            ref_count,
            epoch: 0,
            best: None,
            since_best: 0,
            attempt,
            shuffle_rng: Rng::derive(&[config.seed, TAG_SHUFFLE, stream, attempt as u64]),
            history: Vec::new(),
            restarts: Vec::new(),
            finished: false,
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
            .map(|r| r.iter().map(|t| tape.constant(t.clone())).collect());
        let x = tape.constant(x);
        let loss = gradcon::loss(&params, x, refs.as_deref(), self.config.alpha, create_graph)?;
        Ok((params, loss))
    }

    /// One optimisation step on the batch `x`; returns `(J, mse)`.
    pub fn step(&mut self, x: &Tensor<f32>) -> Result<(f64, f64)> {
        // The step's parallel regions follow each other closely: keep the other workers awake.
        let _busy = crate::busy::BusyWorkers::start();
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
        let k = self.ref_count as f32;
        match &mut self.refs {
            Some(refs) => {
                for (r, &i) in refs.iter_mut().zip(&GRAD_LAYER_PARAMS) {
                    for (rv, &g) in r.data_mut().iter_mut().zip(grads[i].data()) {
                        *rv = (*rv * k + g) / (k + 1.0);
                    }
                }
            }
            None => {
                self.refs = Some(
                    GRAD_LAYER_PARAMS
                        .iter()
                        .map(|&i| grads[i].clone())
                        .collect(),
                )
            }
        }
        self.ref_count += 1;
    }

    /// Validation `J` and MSE over consecutive batches (weighted by batch size), and the
    /// reconstruction statistics of the saturation monitor.
    pub fn evaluate(&self, data: &Dataset, indices: &[usize]) -> Result<(f64, f64, f64, f64)> {
        let (mut j_sum, mut mse_sum) = (0.0, 0.0);
        let mut inputs = Vec::new();
        let mut recons = Vec::new();
        let _busy = crate::busy::BusyWorkers::start();
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

    /// The model training selected: the best-validation epoch's, or the last without validation.
    pub fn selected(&self) -> TrainedModel {
        match &self.best {
            Some(b) => b.trained.clone(),
            None => self.current(),
        }
    }

    /// Epoch of the selected model.
    pub fn selected_epoch(&self) -> usize {
        self.best.as_ref().map_or(self.epoch, |b| b.epoch)
    }

    fn current(&self) -> TrainedModel {
        TrainedModel {
            model: self.model.clone(),
            refs: self.refs.clone().unwrap_or_else(|| {
                GradConModel::grad_layer_shapes(self.model.channels)
                    .iter()
                    .map(|s| Tensor::zeros(s))
                    .collect()
            }),
            ref_count: self.ref_count,
        }
    }
}

/// Trains on `train` (validating on `val` when it is not empty) from `init`, saving a
/// checkpoint to `checkpoint` after every epoch and resuming from it when it exists.
pub fn train(
    config: &TrainConfig,
    train: &Dataset,
    val: &Dataset,
    stream: u64,
    init: &Init,
    checkpoint: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainState> {
    if train.is_empty() {
        return Err(Error::invalid("train", "the training set is empty"));
    }
    if config.batch_size == 0 {
        return Err(Error::invalid("train", "the batch size must be at least 1"));
    }
    let channels = train.channels();
    let mut state = match checkpoint.filter(|p| p.exists()) {
        Some(path) => {
            let s = TrainState::from_checkpoint(&Checkpoint::read(path)?)?;
            s.check_resumable(config, stream, path)?
        }
        None => TrainState::fresh(config, channels, stream, 0, init),
    };
    state.config.epochs = config.epochs;
    state.config.patience = config.patience;
    let val_idx: Vec<usize> = (0..val.len()).collect();
    let health_idx: Vec<usize> = if val.is_empty() {
        (0..train.len().min(HEALTH_IMAGES_WITHOUT_VAL)).collect()
    } else {
        val_idx.clone()
    };
    let health_set = if val.is_empty() { train } else { val };
    let mut order: Vec<usize> = (0..train.len()).collect();
    while !state.finished && state.epoch < config.epochs {
        order.sort_unstable();
        if config.shuffle {
            state.shuffle_rng.shuffle(&mut order);
        }
        let batches = order.len().div_ceil(config.batch_size);
        observer.epoch_started(state.attempt, state.epoch + 1, batches);
        let (mut j_sum, mut mse_sum) = (0.0, 0.0);
        for chunk in order.chunks(config.batch_size) {
            let (j, mse) = state.step(&train.batch_tensor(chunk)?)?;
            j_sum += j * chunk.len() as f64;
            mse_sum += mse * chunk.len() as f64;
            observer.batch_done(j, chunk.len());
        }
        state.epoch += 1;
        let (vj, vmse, spread, dsig) = state.evaluate(health_set, &health_idx)?;
        let record = EpochRecord {
            attempt: state.attempt,
            epoch: state.epoch,
            train_loss: j_sum / train.len() as f64,
            train_mse: mse_sum / train.len() as f64,
            val_loss: (!val.is_empty()).then_some(vj),
            val_mse: (!val.is_empty()).then_some(vmse),
            spread,
            sigmoid_derivative: dsig,
            health_mse: vmse,
        };
        if !val.is_empty() {
            if state.best.as_ref().is_none_or(|b| vj < b.val_loss) {
                state.best = Some(Best {
                    trained: state.current(),
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
        let now = EpochHealth {
            epoch: state.epoch,
            val_mse: vmse,
            spread,
            sigmoid_derivative: dsig,
        };
        let verdict = config.saturation.judge(previous.as_ref(), &now);
        observer.epoch_done(&record);
        state.history.push(record);
        if let Some(why) = verdict {
            if state.attempt < config.restarts {
                observer.restarted(&why, state.attempt + 1);
                let mut next = TrainState::fresh(config, channels, stream, state.attempt + 1, init);
                next.history = std::mem::take(&mut state.history);
                next.restarts = std::mem::take(&mut state.restarts);
                next.restarts
                    .push(format!("attempt {}: {why}", state.attempt));
                state = next;
            } else {
                observer.saturated_without_restart(&why);
            }
        }
        if config.patience.is_some_and(|p| state.since_best >= p) {
            state.finished = true;
        }
        if let Some(path) = checkpoint {
            state.to_checkpoint().write_atomic(path)?;
        }
    }
    state.finished = true;
    Ok(state)
}

/// The monitor's view of an earlier epoch.
fn health_of(r: &EpochRecord) -> EpochHealth {
    EpochHealth {
        epoch: r.epoch,
        val_mse: r.health_mse,
        spread: r.spread,
        sigmoid_derivative: r.sigmoid_derivative,
    }
}

/// Checkpoint layout version of [`TrainState`] (inside the container's own format version).
const STATE_KIND: &str = "gradcon-train-state/1";
/// Layout of a trained model file.
const MODEL_KIND: &str = "gradcon-model/1";

fn put_model(c: &mut Checkpoint, prefix: &str, t: &TrainedModel) {
    for (name, p) in GradConModel::param_names(t.model.channels)
        .iter()
        .zip(&t.model.params)
    {
        c.put_tensor(format!("{prefix}{name}"), p.clone());
    }
    for (l, r) in t.refs.iter().enumerate() {
        c.put_tensor(format!("{prefix}ref_grad.{l}"), r.clone());
    }
    c.put_u64(format!("{prefix}ref_grad_count"), t.ref_count);
}

fn get_model(c: &Checkpoint, prefix: &str, channels: usize) -> Result<TrainedModel> {
    let names = GradConModel::param_names(channels);
    let shapes = GradConModel::param_shapes(channels);
    let params = names
        .iter()
        .zip(&shapes)
        .map(|(n, s)| Ok(c.get_tensor_shaped(&format!("{prefix}{n}"), s)?.clone()))
        .collect::<Result<Vec<_>>>()?;
    let refs = GradConModel::grad_layer_shapes(channels)
        .iter()
        .enumerate()
        .map(|(l, s)| {
            Ok(c.get_tensor_shaped(&format!("{prefix}ref_grad.{l}"), s)?
                .clone())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrainedModel {
        model: GradConModel { channels, params },
        refs,
        ref_count: c.get_u64(&format!("{prefix}ref_grad_count"))?,
    })
}

fn channels_of(c: &Checkpoint) -> Result<usize> {
    match c.get_u64("channels")? {
        ch @ (1 | 3) => Ok(ch as usize),
        ch => Err(Error::format(
            c.source(),
            format!("{ch} channels (1 or 3 expected)"),
        )),
    }
}

fn json_error(c: &Checkpoint, key: &str, e: serde_json::Error) -> Error {
    Error::format(c.source(), format!("entry {key:?} is not valid: {e}"))
}

impl TrainedModel {
    /// The model as a checkpoint container (written with [`Checkpoint::write_atomic`]).
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint::new();
        c.put_str("kind", MODEL_KIND);
        c.put_u64("channels", self.model.channels as u64);
        put_model(&mut c, "", self);
        c
    }

    /// Reads a model written by [`TrainedModel::to_checkpoint`].
    pub fn from_checkpoint(c: &Checkpoint) -> Result<Self> {
        let kind = c.get_str("kind")?;
        if kind != MODEL_KIND && kind != STATE_KIND {
            return Err(Error::format(
                c.source(),
                format!("holds a {kind:?}, not a model"),
            ));
        }
        let channels = channels_of(c)?;
        if kind == STATE_KIND {
            return Ok(TrainState::from_checkpoint(c)?.selected());
        }
        get_model(c, "", channels)
    }
}

impl TrainState {
    /// Everything a resume needs, as a checkpoint container.
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint::new();
        c.put_str("kind", STATE_KIND);
        c.put_str(
            "config",
            serde_json::to_string(&self.config).expect("plain data"),
        );
        c.put_u64("channels", self.model.channels as u64);
        c.put_u64("stream", self.stream);
        put_model(&mut c, "", &self.current());
        c.put_u64("has_refs", self.refs.is_some() as u64);
        for (i, (m, v)) in self.adam.m.iter().zip(&self.adam.v).enumerate() {
            c.put_tensor(format!("adam.m.{i}"), m.clone());
            c.put_tensor(format!("adam.v.{i}"), v.clone());
        }
        c.put_u64("adam.step", self.adam.step);
        c.put_u64("epoch", self.epoch as u64);
        if let Some(b) = &self.best {
            put_model(&mut c, "best.", &b.trained);
            c.put_f64("best.val_loss", b.val_loss);
            c.put_u64("best.epoch", b.epoch as u64);
        }
        c.put_u64("since_best", self.since_best as u64);
        c.put_u64("attempt", self.attempt as u64);
        c.put_u64_array("shuffle_rng", &self.shuffle_rng.state());
        c.put_str(
            "history",
            serde_json::to_string(&self.history).expect("plain data"),
        );
        c.put_str(
            "restarts",
            serde_json::to_string(&self.restarts).expect("plain data"),
        );
        c.put_u64("finished", self.finished as u64);
        c
    }

    /// Restores a state written by [`TrainState::to_checkpoint`].
    pub fn from_checkpoint(c: &Checkpoint) -> Result<Self> {
        let kind = c.get_str("kind")?;
        if kind != STATE_KIND {
            return Err(Error::format(
                c.source(),
                format!("holds a {kind:?}, not a training state"),
            ));
        }
        let config: TrainConfig =
            serde_json::from_str(c.get_str("config")?).map_err(|e| json_error(c, "config", e))?;
        let channels = channels_of(c)?;
        let current = get_model(c, "", channels)?;
        let shapes = GradConModel::param_shapes(channels);
        let mut adam = Adam::new(
            AdamConfig {
                lr: config.lr,
                ..AdamConfig::default()
            },
            &shapes.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        );
        for (i, s) in shapes.iter().enumerate() {
            adam.m[i] = c.get_tensor_shaped(&format!("adam.m.{i}"), s)?.clone();
            adam.v[i] = c.get_tensor_shaped(&format!("adam.v.{i}"), s)?.clone();
        }
        adam.step = c.get_u64("adam.step")?;
        let best = if c.contains("best.val_loss") {
            Some(Best {
                trained: get_model(c, "best.", channels)?,
                val_loss: c.get_f64("best.val_loss")?,
                epoch: c.get_u64("best.epoch")? as usize,
            })
        } else {
            None
        };
        Ok(Self {
            stream: c.get_u64("stream")?,
            model: current.model,
            refs: (c.get_u64("has_refs")? != 0).then_some(current.refs),
            ref_count: current.ref_count,
            adam,
            epoch: c.get_u64("epoch")? as usize,
            best,
            since_best: c.get_u64("since_best")? as usize,
            attempt: c.get_u64("attempt")? as usize,
            shuffle_rng: Rng::from_state(c.get_u64_array_fixed::<4>("shuffle_rng")?),
            history: serde_json::from_str(c.get_str("history")?)
                .map_err(|e| json_error(c, "history", e))?,
            restarts: serde_json::from_str(c.get_str("restarts")?)
                .map_err(|e| json_error(c, "restarts", e))?,
            finished: c.get_u64("finished")? != 0,
            config,
        })
    }

    /// This state if it continues a run of `config` on `stream` (the number of epochs and the
    /// patience may differ), or an error naming the checkpoint and the difference.
    fn check_resumable(self, config: &TrainConfig, stream: u64, path: &Path) -> Result<Self> {
        let mut a = self.config.clone();
        let mut b = config.clone();
        (a.epochs, a.patience) = (0, None);
        (b.epochs, b.patience) = (0, None);
        if a != b || self.stream != stream {
            return Err(Error::invalid(
                "resume",
                format!(
                    "checkpoint {} was written by another configuration ({:?}, stream {}); \
                     remove it or use the same options",
                    path.display(),
                    self.config,
                    self.stream
                ),
            ));
        }
        Ok(self)
    }
}
