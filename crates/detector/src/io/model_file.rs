//! The model file (`.gcm`) and the training checkpoint (`.ckpt`): how a [`Detector`] and a
//! [`TrainState`] map onto the checkpoint container ([`super::checkpoint`]).
//!
//! A model file holds `kind = "gradcon-model/1"`, `channels`, the 16 parameters under the
//! authors' names, `ref_grad.{0..3}` and `ref_grad_count`, and, when training wrote it,
//! `provenance`: how it was trained, as JSON ([`crate::Provenance`]), and `calibration`: its
//! decision threshold ([`crate::eval::threshold::Calibration`]). Entries are only ever
//! added, so older files keep loading and older readers skip what they do not know. A checkpoint holds
//! `kind = "gradcon-train-state/1"` and everything a resume needs; its `best.*` entries are the
//! selected model, which [`Detector`] loads from a checkpoint too.

use core_tensor::Rng;

use super::checkpoint::Checkpoint;
use crate::model::{Autoencoder, ReferenceGradients};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::state::Best;
use crate::train::{TrainConfig, TrainState};
use crate::{Detector, Error, Result};

/// Checkpoint layout version of [`TrainState`] (inside the container's own format version).
const STATE_KIND: &str = "gradcon-train-state/1";
/// Layout of a trained model file.
const MODEL_KIND: &str = "gradcon-model/1";
/// The entry holding the reference gradients' count.
const REF_COUNT: &str = crate::io::safetensors::REF_COUNT_NAME;

fn put_model(c: &mut Checkpoint, prefix: &str, model: &Autoencoder, r: &ReferenceGradients) {
    for (name, p) in Autoencoder::param_names(model.channels)
        .iter()
        .zip(&model.params)
    {
        c.put_tensor(format!("{prefix}{name}"), p.clone());
    }
    for (name, g) in ReferenceGradients::names().iter().zip(&r.grads) {
        c.put_tensor(format!("{prefix}{name}"), g.clone());
    }
    c.put_u64(format!("{prefix}{REF_COUNT}"), r.count);
}

fn get_model(
    c: &Checkpoint,
    prefix: &str,
    channels: usize,
) -> Result<(Autoencoder, ReferenceGradients)> {
    let names = Autoencoder::param_names(channels);
    let shapes = Autoencoder::param_shapes(channels);
    let params = names
        .iter()
        .zip(&shapes)
        .map(|(n, s)| Ok(c.get_tensor_shaped(&format!("{prefix}{n}"), s)?.clone()))
        .collect::<Result<Vec<_>>>()?;
    let grads = ReferenceGradients::names()
        .iter()
        .zip(Autoencoder::grad_layer_shapes(channels))
        .map(|(n, s)| Ok(c.get_tensor_shaped(&format!("{prefix}{n}"), &s)?.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        Autoencoder { channels, params },
        ReferenceGradients {
            grads,
            count: c.get_u64(&format!("{prefix}{REF_COUNT}"))?,
        },
    ))
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

impl Detector {
    /// The model as a checkpoint container (written with [`Checkpoint::write_atomic`]).
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint::new();
        c.put_str("kind", MODEL_KIND);
        c.put_u64("channels", self.channels() as u64);
        put_model(&mut c, "", self.autoencoder(), self.reference());
        if let Some(p) = self.provenance() {
            c.put_str("provenance", serde_json::to_string(p).expect("plain data"));
        }
        if let Some(cal) = self.calibration() {
            c.put_str(
                "calibration",
                serde_json::to_string(cal).expect("plain data"),
            );
        }
        c
    }

    /// Reads a model written by [`Detector::to_checkpoint`], or the selected model of a
    /// training checkpoint.
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
        let (model, reference) = get_model(c, "", channels)?;
        let mut detector = Detector::new(model, reference);
        if c.contains("provenance") {
            let p = serde_json::from_str(c.get_str("provenance")?)
                .map_err(|e| json_error(c, "provenance", e))?;
            detector.set_provenance(Some(p));
        }
        if c.contains("calibration") {
            let cal = serde_json::from_str(c.get_str("calibration")?)
                .map_err(|e| json_error(c, "calibration", e))?;
            detector.set_calibration(Some(cal));
        }
        Ok(detector)
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
        put_model(&mut c, "", &self.model, &self.current_reference());
        c.put_u64("has_refs", self.refs.is_some() as u64);
        for (i, (m, v)) in self.adam.m.iter().zip(&self.adam.v).enumerate() {
            c.put_tensor(format!("adam.m.{i}"), m.clone());
            c.put_tensor(format!("adam.v.{i}"), v.clone());
        }
        c.put_u64("adam.step", self.adam.step);
        c.put_u64("epoch", self.epoch as u64);
        if let Some(b) = &self.best {
            put_model(&mut c, "best.", &b.model, &b.reference);
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
        if let Some(pin) = &self.pin {
            c.put_str("pin", serde_json::to_string(pin).expect("plain data"));
        }
        c.put_f64("seconds", self.seconds);
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
        let (model, current_ref) = get_model(c, "", channels)?;
        let shapes = Autoencoder::param_shapes(channels);
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
            let (model, reference) = get_model(c, "best.", channels)?;
            Some(Best {
                model,
                reference,
                val_loss: c.get_f64("best.val_loss")?,
                epoch: c.get_u64("best.epoch")? as usize,
            })
        } else {
            None
        };
        Ok(Self {
            stream: c.get_u64("stream")?,
            model,
            refs: (c.get_u64("has_refs")? != 0).then_some(current_ref),
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
            pin: match c.contains("pin") {
                true => Some(
                    serde_json::from_str(c.get_str("pin")?).map_err(|e| json_error(c, "pin", e))?,
                ),
                false => None,
            },
            seconds: if c.contains("seconds") {
                c.get_f64("seconds")?
            } else {
                0.0
            },
            diverged: None,
            config,
        })
    }
}
