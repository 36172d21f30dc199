//! Combining classes trained as separate jobs into one protocol result.
//!
//! Per-class training is independent, so the classes of one protocol run can be run as
//! separate processes (`gradcon protocol --classes C --shard --out DIR`, one per class, on one
//! machine or several sharing `DIR`); each writes only its class's files, under the class's
//! lock. [`merge`] then reads every `class_<c>.json` of the folder and gives the result a
//! single process would have written, refusing classes trained on other data sets, with other
//! options (seed included), scored with another `--beta` or evaluated at other budgets.

use std::path::Path;

use super::protocol::{budget_means, mean_aurocs, ClassResult, DatasetKind, ProtocolResult};
use crate::{Error, Result};

/// The protocol result of the class results in `dir`, in class order.
pub fn merge(dir: &Path) -> Result<ProtocolResult> {
    let mut found: Vec<(u8, std::path::PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "read folder", e))?;
        let name = entry.file_name();
        let Some(class) = name
            .to_str()
            .and_then(|n| n.strip_prefix("class_"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|c| c.parse::<u8>().ok())
        else {
            continue;
        };
        found.push((class, entry.path()));
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::invalid(
            "merge",
            format!("{} holds no class results (class_<c>.json)", dir.display()),
        ));
    }
    let mut classes: Vec<(ClassResult, String)> = Vec::new();
    for (_, path) in &found {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let result: ClassResult = serde_json::from_str(&text).map_err(|e| {
            Error::format(
                path.display().to_string(),
                format!("not a class result: {e}"),
            )
        })?;
        classes.push((result, path.display().to_string()));
    }
    let (first, first_name) = &classes[0];
    let describe = |c: &ClassResult, name: &str| -> Result<Described> {
        let pin = c.pin.clone().ok_or_else(|| {
            Error::invalid(
                "merge",
                format!("{name} records no training options (written by an older version)"),
            )
        })?;
        let dataset = match c.dataset {
            Some(d) => d,
            None => dataset_of_source(&pin.source)
                .ok_or_else(|| Error::invalid("merge", format!("{name}: no data set recorded")))?,
        };
        Ok(Described { pin, dataset })
    };
    let base = describe(first, first_name)?;
    for (c, name) in &classes[1..] {
        let this = describe(c, name)?;
        let mut differences = Vec::new();
        if this.dataset != base.dataset {
            differences.push(format!(
                "the data set is {}, in {first_name} {}",
                this.dataset.name(),
                base.dataset.name()
            ));
        }
        // The options alone: the class's own stream, images and source are expected to differ.
        let mut like = this.pin.clone();
        like.stream = base.pin.stream;
        like.source = base.pin.source.clone();
        like.train_images = base.pin.train_images;
        like.val_images = base.pin.val_images;
        like.digest = base.pin.digest.clone();
        differences.extend(
            base.pin
                .differences(&like)
                .into_iter()
                .map(|d| format!("{d} (was: {first_name})")),
        );
        if let Some((was, now)) = base.pin.epochs_change(&like) {
            differences.push(format!("--epochs was {was} in {first_name}, here {now}"));
        }
        if c.beta != first.beta {
            differences.push(format!(
                "--beta is {}, in {first_name} {}",
                show(c.beta),
                show(first.beta)
            ));
        }
        let epochs = |r: &ClassResult| r.budgets.iter().map(|b| b.epoch).collect::<Vec<_>>();
        if epochs(c) != epochs(first) {
            differences.push(format!(
                "--eval-at is {:?}, in {first_name} {:?}",
                epochs(c),
                epochs(first)
            ));
        }
        if !differences.is_empty() {
            return Err(Error::Pinned {
                file: name.clone(),
                differences,
            });
        }
    }
    let rows: Vec<ClassResult> = classes.into_iter().map(|(c, _)| c).collect();
    Ok(ProtocolResult {
        engine: format!("gradcon-rs {}", env!("CARGO_PKG_VERSION")),
        dataset: base.dataset,
        config: base.pin.config.clone(),
        beta: rows[0].beta.unwrap_or(crate::DEFAULT_BETA),
        threads: rayon::current_num_threads(),
        mean: mean_aurocs(&rows),
        total_restarts: rows.iter().map(|r| r.restarts).sum(),
        budgets: budget_means(&rows),
        wall_seconds: rows.iter().map(|r| r.seconds).sum(),
        classes: rows,
    })
}

struct Described {
    pin: crate::train::Pin,
    dataset: DatasetKind,
}

fn show(beta: Option<f64>) -> String {
    beta.map_or("unrecorded".into(), |b| b.to_string())
}

/// The data set a pin's source names (`"mnist class 3"`).
fn dataset_of_source(source: &str) -> Option<DatasetKind> {
    let name = source.split_whitespace().next()?;
    [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
    ]
    .into_iter()
    .find(|k| k.name() == name)
}
