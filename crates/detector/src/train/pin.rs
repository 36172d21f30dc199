//! What produced a training run: its options and a digest of its data, recorded in its
//! checkpoint, its model file and the protocol's per-class results, so that a rerun with other
//! inputs is refused instead of passing for the old run.
//!
//! Pinned: every [`TrainConfig`] option but `epochs` (a larger `--epochs` extends a finished
//! run, a smaller one is refused), the stream, the channels, and the training and validation
//! images (a digest of their pixels and labels, and their counts). Not pinned: the thread
//! count, progress display, and scoring, report and evaluation options.

use serde::{Deserialize, Serialize};

use super::TrainConfig;
use crate::data::Dataset;

/// The options and data of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    /// The training options (`epochs` as last asked for).
    pub config: TrainConfig,
    /// Stream of the run's seeded generators (the class, in the protocol).
    pub stream: u64,
    /// Image channels.
    pub channels: usize,
    /// Where the images came from, for messages (e.g. `fashion-mnist class 3`).
    pub source: String,
    /// Training and validation images.
    pub train_images: usize,
    pub val_images: usize,
    /// Digest of the training and validation images' sizes, pixels and labels.
    pub digest: String,
    /// Digest of the starting weights when training started from a given model.
    #[serde(default)]
    pub init: Option<String>,
}

impl Pin {
    /// The pin of a run of `config` on `stream` over `train` and `val`.
    pub fn new(
        config: &TrainConfig,
        stream: u64,
        source: impl Into<String>,
        train: &Dataset,
        val: &Dataset,
    ) -> Self {
        Self {
            config: config.clone(),
            stream,
            channels: train.channels(),
            source: source.into(),
            train_images: train.len(),
            val_images: val.len(),
            digest: digest(&[train, val]),
            init: None,
        }
    }

    /// How `now` differs from this recorded pin, in the command line's words, leaving out
    /// `epochs` (see [`Pin::epochs_change`]); empty when a rerun continues this run.
    pub fn differences(&self, now: &Pin) -> Vec<String> {
        let (a, b) = (&self.config, &now.config);
        let mut out = Vec::new();
        let mut option = |flag: &str, was: String, is: String| {
            if was != is {
                out.push(format!("--{flag} was {was}, now {is}"));
            }
        };
        option("alpha", a.alpha.to_string(), b.alpha.to_string());
        option("lr", a.lr.to_string(), b.lr.to_string());
        option("batch", a.batch_size.to_string(), b.batch_size.to_string());
        let patience = |p: Option<usize>| p.map_or("unset".into(), |p| p.to_string());
        option("patience", patience(a.patience), patience(b.patience));
        option(
            "val-fraction",
            a.val_fraction.to_string(),
            b.val_fraction.to_string(),
        );
        option("seed", a.seed.to_string(), b.seed.to_string());
        option("restarts", a.restarts.to_string(), b.restarts.to_string());
        let shuffle = |s: bool| if s { "off" } else { "on" }.to_string();
        option("no-shuffle", shuffle(a.shuffle), shuffle(b.shuffle));
        let (sa, sb) = (&a.saturation, &b.saturation);
        option(
            "sat-spread",
            sa.max_spread.to_string(),
            sb.max_spread.to_string(),
        );
        option(
            "sat-derivative",
            sa.max_sigmoid_derivative.to_string(),
            sb.max_sigmoid_derivative.to_string(),
        );
        option(
            "sat-stall",
            sa.max_relative_change.to_string(),
            sb.max_relative_change.to_string(),
        );
        option(
            "sat-until",
            sa.check_until.to_string(),
            sb.check_until.to_string(),
        );
        option("remedy", a.remedy.name().into(), b.remedy.name().into());
        option(
            "select-every",
            a.select_every.to_string(),
            b.select_every.to_string(),
        );
        if sa.check_from != sb.check_from {
            out.push(format!(
                "the saturation check's first epoch was {}, now {}",
                sa.check_from, sb.check_from
            ));
        }
        if self.channels != now.channels {
            out.push(format!(
                "the images had {} channels, now {}",
                self.channels, now.channels
            ));
        }
        if self.stream != now.stream {
            out.push(format!(
                "the stream (class) was {}, now {}",
                self.stream, now.stream
            ));
        }
        if self.init != now.init {
            let name = |i: &Option<String>| match i {
                Some(_) => "given weights (--init)",
                None => "a seeded initialisation",
            };
            out.push(format!(
                "the run started from {}, now from {}",
                name(&self.init),
                name(&now.init)
            ));
        }
        if (self.train_images, self.val_images) != (now.train_images, now.val_images) {
            out.push(format!(
                "the run had {} training and {} validation images ({}), now {} and {} ({})",
                self.train_images,
                self.val_images,
                self.source,
                now.train_images,
                now.val_images,
                now.source
            ));
        } else if self.digest != now.digest {
            out.push(format!(
                "the training images differ ({}, now {})",
                self.source, now.source
            ));
        }
        out
    }

    /// `Some((was, now))` when the rerun asks for another number of epochs.
    pub fn epochs_change(&self, now: &Pin) -> Option<(usize, usize)> {
        (self.config.epochs != now.config.epochs).then_some((self.config.epochs, now.config.epochs))
    }
}

/// A digest of bytes, in the format of [`digest`] (the `--init` weights' file bytes).
pub fn digest_bytes(bytes: &[u8]) -> String {
    let mut d = Digest::new();
    d.feed(bytes);
    d.finish()
}

/// A 128-bit digest (two FNV-1a 64 streams of different offsets, and CRC-32 of the bytes) of
/// the data sets' sizes, pixels and labels, in hex.
pub fn digest(sets: &[&Dataset]) -> String {
    let mut d = Digest::new();
    for set in sets {
        for n in [set.len(), set.channels(), set.height(), set.width()] {
            d.feed(&(n as u64).to_le_bytes());
        }
        d.feed(set.images());
        d.feed(set.labels());
    }
    d.finish()
}

/// The running state of [`digest`].
struct Digest {
    h1: u64,
    h2: u64,
    crc: crc32fast::Hasher,
}

impl Digest {
    fn new() -> Self {
        Self {
            h1: 0xcbf2_9ce4_8422_2325,
            h2: 0x6c62_272e_07bb_0142,
            crc: crc32fast::Hasher::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.h1 = (self.h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            self.h2 = (self.h2 ^ u64::from(b.rotate_left(3))).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.crc.update(bytes);
    }

    fn finish(self) -> String {
        format!(
            "{:016x}{:016x}-{:08x}",
            self.h1,
            self.h2,
            self.crc.finalize()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: u8) -> Dataset {
        Dataset::new(vec![v; 8], vec![0, 1], 1, 2, 2).unwrap()
    }

    #[test]
    fn differences_are_named_in_the_command_line_words() {
        let empty = Dataset::empty(1, 2, 2);
        let config = TrainConfig::default();
        let a = Pin::new(&config, 0, "a.idx", &data(1), &empty);
        assert!(a.differences(&a.clone()).is_empty());
        let b = Pin::new(
            &TrainConfig {
                lr: 0.01,
                epochs: 5,
                ..config.clone()
            },
            0,
            "b.idx",
            &data(2),
            &empty,
        );
        let d = a.differences(&b);
        assert_eq!(d[0], "--lr was 0.001, now 0.01");
        assert!(d[1].starts_with("the training images differ"), "{d:?}");
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(a.epochs_change(&b), Some((1000, 5)));
    }

    #[test]
    fn the_remedy_and_the_selection_rule_are_pinned_and_older_pins_read_as_before() {
        use crate::train::saturation::Remedy;
        let empty = Dataset::empty(1, 2, 2);
        let a = Pin::new(&TrainConfig::default(), 0, "a", &data(1), &empty);
        let b = Pin::new(
            &TrainConfig {
                remedy: Remedy::Reseed,
                select_every: 5,
                ..TrainConfig::default()
            },
            0,
            "a",
            &data(1),
            &empty,
        );
        assert_eq!(
            a.differences(&b),
            [
                "--remedy was output-bias, now reseed",
                "--select-every was 1, now 5"
            ]
        );
        // A pin written before either option existed: the behaviour it ran with.
        let mut old = serde_json::to_value(&a).unwrap();
        let config = old["config"].as_object_mut().unwrap();
        config.remove("remedy");
        assert!(!config.contains_key("select_every"), "1 is not written");
        let old: Pin = serde_json::from_value(old).unwrap();
        assert_eq!(old.config.remedy, Remedy::Reseed);
        assert_eq!(old.config.select_every, 1);
    }

    #[test]
    fn the_digest_sees_every_pixel_and_label() {
        let base = digest(&[&data(1)]);
        assert_ne!(base, digest(&[&data(2)]));
        let relabelled = Dataset::new(vec![1; 8], vec![0, 2], 1, 2, 2).unwrap();
        assert_ne!(base, digest(&[&relabelled]));
        let reshaped = Dataset::new(vec![1; 8], vec![0, 1], 1, 1, 4).unwrap();
        assert_ne!(base, digest(&[&reshaped]));
        assert_eq!(base, digest(&[&data(1)]));
    }
}
