//! [`Detector`]: a trained GradCon model, its reference gradients and its scoring settings, in
//! one type that loads, saves and scores.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::data::{Dataset, Image};
use crate::eval::threshold::Calibration;
use crate::io::checkpoint::{Checkpoint, MAGIC};
use crate::io::fs::{read_file, write_atomic};
use crate::io::safetensors::{looks_like_safetensors, StateDict};
use crate::model::gradcon::{score_batch, Score};
use crate::model::{Autoencoder, ReferenceGradients, IMAGE_SIDE};
use crate::parallel::WorkerPool;
use crate::train::{EpochRecord, Pin};
use crate::{Error, Result};

/// The weight `beta` of the gradient term in the GradCon score (PAPER.md: 0.12 for MNIST).
pub const DEFAULT_BETA: f64 = 0.12;
/// Images per batched scoring pass.
pub const DEFAULT_SCORE_BATCH: usize = 64;
/// What [`Detector::load`] says of a file that starts as none of the formats it reads.
pub const NOT_A_MODEL: &str = "not a GradCon model, checkpoint or safetensors file";
pub use crate::parallel::MAX_THREADS;

/// How a [`Detector`] scores: the score weight and the batch size of the batched passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreSettings {
    /// Weight of the gradient term: `gradcon = recon + beta * grad`.
    pub beta: f64,
    /// Images per batched forward and backward pass (at least 1). Scores do not depend on it:
    /// an image gets the same bits in a batch of any size.
    pub batch_size: usize,
    /// A threshold on the anomaly score that overrides the calibrated one.
    pub threshold: Option<f64>,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        Self {
            beta: DEFAULT_BETA,
            batch_size: DEFAULT_SCORE_BATCH,
            threshold: None,
        }
    }
}

impl ScoreSettings {
    /// Checks that `beta` is finite and the batch size at least 1.
    pub fn validate(&self) -> Result<()> {
        if !self.beta.is_finite() {
            return Err(Error::InvalidOption {
                option: "beta",
                value: self.beta.to_string(),
                expected: "a finite number",
            });
        }
        if self.batch_size == 0 {
            return Err(Error::InvalidOption {
                option: "score-batch",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if let Some(t) = self.threshold.filter(|t| !t.is_finite()) {
            return Err(Error::InvalidOption {
                option: "threshold",
                value: t.to_string(),
                expected: "a finite number",
            });
        }
        Ok(())
    }
}

/// A trained GradCon detector: the autoencoder's weights, the reference gradients of its
/// decoder weights, and how it scores.
///
/// It is `Send + Sync`: one loaded detector serves many threads at once. Scoring runs its
/// parallel kernels on the thread pool set by [`Detector::set_threads`], or else on the rayon
/// pool of the calling thread (the global pool, or the caller's own inside
/// `pool.install(..)`).
///
/// Dropping a detector (its last clone, for its worker threads) gives back what it used: its
/// own pool's workers have ended when the drop returns, and the buffers the kernels keep
/// between calls to be fast ([`core_tensor::trim`]: every thread's idle pooled buffers and
/// the packed weight panels) are freed. Other detectors and trainers of the process then
/// allocate theirs afresh once.
///
/// ```
/// use detector::{Detector, Image};
/// # let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/models/fashion-mnist-0.gcm");
/// let detector = Detector::load(model)?;
/// let image = Image::from_u8(1, 28, 28, vec![0; 28 * 28])?; // or any size, grey or RGB
/// let score = detector.score(&image)?;
/// assert!(score.gradcon.is_finite()); // higher means more normal
/// # Ok::<(), detector::Error>(())
/// ```
#[derive(Clone)]
pub struct Detector {
    autoencoder: Autoencoder,
    reference: ReferenceGradients,
    settings: ScoreSettings,
    provenance: Option<Provenance>,
    calibration: Option<Calibration>,
    pool: Option<Arc<WorkerPool>>,
    /// Last, so that it runs once the model's buffers are back in the pools and the pool's
    /// workers have ended.
    _trim: TrimOnDrop,
}

/// Frees the kernels' kept buffers when dropped ([`core_tensor::trim`]).
#[derive(Debug, Clone, Default)]
struct TrimOnDrop;

impl Drop for TrimOnDrop {
    fn drop(&mut self) {
        core_tensor::trim();
    }
}

/// How a model was trained: stored in its model file by training. It holds no times or
/// thread counts, so the same run gives the same file bytes on any machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The options and data of the run.
    pub pin: Pin,
    /// Epoch of the selected model (within its attempt), and epochs run in that attempt.
    pub selected_epoch: usize,
    pub epochs_run: usize,
    /// Why each restart happened.
    pub restarts: Vec<String>,
    /// Every epoch of every attempt.
    pub history: Vec<EpochRecord>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("channels", &self.channels())
            .field("reference_count", &self.reference.count)
            .field("settings", &self.settings)
            .field(
                "threads",
                &self.pool.as_ref().map(|p| p.current_num_threads()),
            )
            .finish_non_exhaustive()
    }
}

impl PartialEq for Detector {
    /// Equal weights, reference gradients, settings and calibration (the thread pool and the
    /// provenance are not compared).
    fn eq(&self, other: &Self) -> bool {
        self.autoencoder == other.autoencoder
            && self.reference == other.reference
            && self.settings == other.settings
            && self.calibration == other.calibration
    }
}

impl Detector {
    /// A detector of `autoencoder` with `reference` gradients and the default settings.
    pub fn new(autoencoder: Autoencoder, reference: ReferenceGradients) -> Self {
        Self {
            autoencoder,
            reference,
            settings: ScoreSettings::default(),
            provenance: None,
            calibration: None,
            pool: None,
            _trim: TrimOnDrop,
        }
    }

    /// How the decision threshold was calibrated (`None`: no threshold, e.g. trained without a
    /// validation split).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// Sets (or clears) the calibration.
    pub fn set_calibration(&mut self, calibration: Option<Calibration>) {
        self.calibration = calibration;
    }

    /// Calibrates the threshold on `normal` images at the target false-positive rate `fpr`
    /// (see [`crate::eval::threshold`]), for the current `beta`.
    pub fn calibrate(&mut self, normal: &Dataset, fpr: f64) -> Result<Calibration> {
        let idx: Vec<usize> = (0..normal.len()).collect();
        let scores: Vec<f64> = self
            .score_dataset(normal, &idx)?
            .iter()
            .map(|s| s.anomaly_score)
            .collect();
        let c = Calibration::new(&scores, self.beta(), fpr)?;
        self.calibration = Some(c);
        Ok(c)
    }

    /// The threshold scores are decided at: the settings' override, else the calibrated one
    /// when it was calibrated for the current `beta`.
    pub fn threshold(&self) -> Option<f64> {
        self.settings.threshold.or_else(|| {
            self.calibration
                .filter(|c| c.beta == self.settings.beta)
                .map(|c| c.threshold)
        })
    }

    /// How the model was trained (`None` for a model from elsewhere, or an older file).
    pub fn provenance(&self) -> Option<&Provenance> {
        self.provenance.as_ref()
    }

    /// Records how the model was trained.
    pub fn set_provenance(&mut self, provenance: Option<Provenance>) {
        self.provenance = provenance;
    }

    /// Loads a model file (`.gcm`), the selected model of a training checkpoint (`.ckpt`), or
    /// a `.safetensors` file in the authors' names (see [`crate::io::safetensors`]); the
    /// format is told by the file's first bytes. Errors name the file: a folder is an I/O
    /// error, a file that starts as none of the formats is [`NOT_A_MODEL`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&path.display().to_string(), &read_file(path)?)
    }

    /// [`Detector::load`] from bytes in memory; `name` names them in errors.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self> {
        let detector = if bytes.starts_with(&MAGIC) {
            Self::from_checkpoint(&Checkpoint::from_bytes(name, bytes)?)?
        } else if looks_like_safetensors(bytes) {
            Self::from(StateDict::from_safetensors_bytes(name, bytes)?)
        } else {
            return Err(Error::format(name, NOT_A_MODEL));
        };
        detector.check_finite(name)?;
        Ok(detector)
    }

    /// Saves the model: as `.safetensors` in the authors' names when `path` ends so, as a
    /// model file otherwise. The write is atomic: `path` holds its old contents or the new
    /// ones, never a mix.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = if path.extension().is_some_and(|e| e == "safetensors") {
            self.to_safetensors_bytes()?
        } else {
            self.to_bytes()
        };
        write_atomic(path, &bytes)
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_checkpoint().to_bytes()
    }

    /// A safetensors file's bytes: the parameters and reference gradients in the authors'
    /// names.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        StateDict::from(self).to_safetensors_bytes()
    }

    /// An error naming `name` and the tensor unless every weight and reference gradient is
    /// finite.
    pub fn check_finite(&self, name: &str) -> Result<()> {
        let bad = self
            .autoencoder
            .first_non_finite()
            .or_else(|| self.reference.first_non_finite());
        match bad {
            Some(tensor) => Err(Error::format(
                name,
                format!("`{tensor}` holds NaN or infinite values"),
            )),
            None => Ok(()),
        }
    }

    /// Image channels the model takes (1 or 3).
    pub fn channels(&self) -> usize {
        self.autoencoder.channels
    }

    /// Side of the square images the model takes (every image is brought to it).
    pub fn input_side(&self) -> usize {
        IMAGE_SIDE
    }

    /// The autoencoder's weights.
    pub fn autoencoder(&self) -> &Autoencoder {
        &self.autoencoder
    }

    /// The reference gradients (count 0: none, the gradient term is then zero).
    pub fn reference(&self) -> &ReferenceGradients {
        &self.reference
    }

    /// Whether the model has reference gradients (without them the gradient term is zero).
    pub fn has_reference(&self) -> bool {
        self.reference.count > 0
    }

    /// The scoring settings.
    pub fn settings(&self) -> ScoreSettings {
        self.settings
    }

    /// Sets how the detector scores; refused (and nothing changed) unless valid.
    pub fn set_settings(&mut self, settings: ScoreSettings) -> Result<()> {
        settings.validate()?;
        self.settings = settings;
        Ok(())
    }

    /// The weight `beta` of the gradient term.
    pub fn beta(&self) -> f64 {
        self.settings.beta
    }

    /// Sets `beta` (finite).
    pub fn set_beta(&mut self, beta: f64) -> Result<()> {
        self.set_settings(ScoreSettings {
            beta,
            ..self.settings
        })
    }

    /// Scores on a pool of its own of `threads` workers (1 to [`MAX_THREADS`]) from now on; no
    /// more workers are started than the process has cores ([`crate::parallel::workers_for`]).
    /// An earlier pool's workers have ended when it returns (unless a clone still uses it).
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.pool = Some(Arc::new(crate::parallel::thread_pool(threads)?));
        Ok(())
    }

    /// Worker threads of the detector's own pool (`None`: the caller's pool is used).
    pub fn threads(&self) -> Option<usize> {
        self.pool.as_ref().map(|p| p.current_num_threads())
    }

    /// Runs `f` on the detector's pool if it has one, on the calling thread otherwise.
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Scores one image of any size, grey or RGB (brought to the model's input by the rules
    /// of [`crate::data::image`]).
    pub fn score(&self, image: &Image) -> Result<Score> {
        let scores = self.score_batch(std::slice::from_ref(image))?;
        Ok(scores[0])
    }

    /// Scores images of any sizes, in batched passes; one score per image, in order. An
    /// image's score is the same to the bit whatever the other images of the call, its place
    /// among them, the batch size and the number of threads (it is [`Detector::score`]'s):
    /// see [`crate::model::gradcon::score_batch`].
    pub fn score_batch(&self, images: &[Image]) -> Result<Vec<Score>> {
        let (c, side) = (self.channels(), self.input_side());
        self.run(|| {
            let mut out = Vec::with_capacity(images.len());
            let _busy = crate::parallel::BusyWorkers::start();
            for chunk in images.chunks(self.settings.batch_size) {
                let mut data = Vec::with_capacity(chunk.len() * c * side * side);
                for img in chunk {
                    data.extend(img.to_input(c, side)?);
                }
                let x = core_tensor::Tensor::from_vec(data, &[chunk.len(), c, side, side])?;
                out.extend(self.score_tensor(&x)?);
            }
            Ok(out)
        })
    }

    /// Scores the images of `data` at `indices`, in batched passes. The images must have the
    /// model's channels and size (see [`Dataset::resized`]).
    pub fn score_dataset(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Score>> {
        let (c, side) = (self.channels(), self.input_side());
        if (data.channels(), data.height(), data.width()) != (c, side, side) {
            return Err(Error::invalid(
                "Detector::score_dataset",
                format!(
                    "images of {}x{}x{}; the model takes {c}x{side}x{side}",
                    data.channels(),
                    data.height(),
                    data.width()
                ),
            ));
        }
        self.run(|| {
            let mut out = Vec::with_capacity(indices.len());
            // Scoring, like a training step, is a chain of short parallel regions.
            let _busy = crate::parallel::BusyWorkers::start();
            for chunk in indices.chunks(self.settings.batch_size) {
                out.extend(self.score_tensor(&data.batch_tensor(chunk)?)?);
            }
            Ok(out)
        })
    }

    /// The reconstructions of the images of `data` at `indices` (each `C x 28 x 28` values
    /// in `[0, 1]`, CHW), in batched forward passes.
    pub fn reconstruct_dataset(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f32>>> {
        let per = self.channels() * IMAGE_SIDE * IMAGE_SIDE;
        self.run(|| {
            let mut out = Vec::with_capacity(indices.len());
            for chunk in indices.chunks(self.settings.batch_size) {
                let x = data.batch_tensor(chunk)?;
                let tape = autograd::Tape::new();
                let params: Vec<_> = self
                    .autoencoder
                    .params
                    .iter()
                    .map(|p| tape.constant(p.clone()))
                    .collect();
                let r = crate::model::gradcon::forward(&params, tape.constant(x))?;
                out.extend(r.value().data().chunks(per).map(<[f32]>::to_vec));
            }
            Ok(out)
        })
    }

    /// Scores a batch tensor `[B, C, 28, 28]` with values in `[0, 1]`.
    pub fn score_tensor(&self, x: &core_tensor::Tensor<f32>) -> Result<Vec<Score>> {
        let threshold = self.threshold();
        Ok(score_batch(
            &self.autoencoder.params,
            &self.reference.grads,
            x,
            self.settings.beta,
        )?
        .into_iter()
        .map(|s| s.decided(threshold))
        .collect())
    }
}

impl From<StateDict> for Detector {
    /// A state dict without reference gradients gets zeros (count 0).
    fn from(s: StateDict) -> Self {
        let channels = s.model.channels;
        let mut d = Self::new(
            s.model,
            s.reference
                .unwrap_or_else(|| ReferenceGradients::zeros(channels)),
        );
        d.calibration = s.calibration;
        d
    }
}

impl From<&Detector> for StateDict {
    fn from(d: &Detector) -> Self {
        Self {
            model: d.autoencoder.clone(),
            reference: Some(d.reference.clone()),
            calibration: d.calibration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_detector_is_shared_across_threads() {
        assert_send_sync::<Detector>();
    }
}
