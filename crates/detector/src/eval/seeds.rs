//! The spread of protocol results over seeds: runs of one protocol that differ only in
//! `--seed`, summarised per class and for the mean as the mean and the sample standard
//! deviation (n - 1) over the runs, for the three AUROCs and the restart counts.
//!
//! The runs are compared after the same number of epochs: a run of that many epochs, or a
//! longer run's `--eval-at` evaluation at it (the model a run of that length selects, see
//! [`super::budget`]). Restarts are the run's: the saturation check restarts an attempt in its
//! first epochs, before any budget.

use serde::{Deserialize, Serialize};

use super::protocol::{Aurocs, ClassResult, DatasetKind, ProtocolResult};
use crate::{Error, Result};

/// The mean and the sample standard deviation (n - 1) of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

impl MeanSd {
    /// Of at least two values.
    pub fn of(values: &[f64]) -> Self {
        assert!(values.len() >= 2, "a spread needs at least two values");
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let ss = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        Self {
            mean,
            sd: (ss / (n - 1.0)).sqrt(),
        }
    }
}

/// [`MeanSd`] of each of the three AUROCs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AurocSpread {
    pub gradcon: MeanSd,
    pub recon: MeanSd,
    pub grad: MeanSd,
}

impl AurocSpread {
    fn of(runs: &[Aurocs]) -> Self {
        let field = |f: fn(&Aurocs) -> f64| MeanSd::of(&runs.iter().map(f).collect::<Vec<_>>());
        Self {
            gradcon: field(|a| a.gradcon),
            recon: field(|a| a.recon),
            grad: field(|a| a.grad),
        }
    }
}

/// One class over the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSpread {
    pub class: u8,
    /// The AUROCs of each run, in the runs' order.
    pub runs: Vec<Aurocs>,
    pub auroc: AurocSpread,
    pub restarts: MeanSd,
}

/// The spread of a protocol's results over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedSpread {
    pub dataset: DatasetKind,
    /// The epochs after which every run is compared.
    pub epochs: usize,
    /// Each run's seed and name (its folder), in the order given.
    pub seeds: Vec<u64>,
    pub names: Vec<String>,
    pub classes: Vec<ClassSpread>,
    /// Each run's mean over the classes.
    pub run_means: Vec<Aurocs>,
    /// Over the runs, of the mean over the classes.
    pub mean: AurocSpread,
    /// Over the runs, of the mean GradCon AUROC less the mean reconstruction AUROC.
    pub gradcon_minus_recon: MeanSd,
    /// Over the runs, of the restarts summed over the classes.
    pub total_restarts: MeanSd,
}

/// A line of the spread's table: a class, or the mean over the classes.
#[derive(Debug)]
pub struct SpreadRow<'a> {
    /// `None` for the mean over the classes.
    pub class: Option<u8>,
    pub auroc: &'a AurocSpread,
    /// Of the class's restarts, or of the restarts summed over the classes.
    pub restarts: MeanSd,
    /// Each run's GradCon AUROC: the class's, or the run's mean over the classes.
    pub runs: Vec<f64>,
}

impl SeedSpread {
    /// The table's lines: each class, then the mean.
    pub fn rows(&self) -> impl Iterator<Item = SpreadRow<'_>> {
        let classes = self.classes.iter().map(|c| SpreadRow {
            class: Some(c.class),
            auroc: &c.auroc,
            restarts: c.restarts,
            runs: c.runs.iter().map(|a| a.gradcon).collect(),
        });
        classes.chain(std::iter::once(SpreadRow {
            class: None,
            auroc: &self.mean,
            restarts: self.total_restarts,
            runs: self.run_means.iter().map(|a| a.gradcon).collect(),
        }))
    }

    /// Each run's seed and its mean GradCon AUROC less its mean reconstruction AUROC.
    pub fn differences(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.seeds
            .iter()
            .zip(&self.run_means)
            .map(|(&seed, m)| (seed, m.gradcon - m.recon))
    }
}

/// The spread over `runs` (each a name, such as its folder, and its result) after `epochs`
/// epochs (by default the runs' common `--epochs`). Refuses fewer than two runs, a repeated
/// seed, runs of other data sets, classes, options or `--beta`, and a run that has no result
/// after `epochs` epochs, naming the run.
pub fn seed_spread(runs: &[(String, ProtocolResult)], epochs: Option<usize>) -> Result<SeedSpread> {
    let refuse = |msg: String| Error::invalid("seeds", msg);
    let [(first_name, first), rest @ ..] = runs else {
        return Err(refuse("no runs given".into()));
    };
    if rest.is_empty() {
        return Err(refuse(format!(
            "only one run ({first_name}): a spread over seeds needs at least two"
        )));
    }
    let epochs = match epochs {
        Some(e) => e,
        None => {
            let e = first.config.epochs;
            if let Some((name, r)) = rest.iter().find(|(_, r)| r.config.epochs != e) {
                return Err(refuse(format!(
                    "{first_name} trained {e} epochs and {name} {}: give --epochs to compare \
                     them after the same number",
                    r.config.epochs
                )));
            }
            e
        }
    };
    let classes: Vec<u8> = first.classes.iter().map(|c| c.class).collect();
    let mut seen = Vec::new();
    for (name, r) in runs {
        if let Some((other, _)) = runs
            .iter()
            .take(seen.len())
            .find(|(_, o)| o.config.seed == r.config.seed)
        {
            return Err(refuse(format!(
                "{name} and {other} both ran seed {}: the runs must differ in their seed",
                r.config.seed
            )));
        }
        seen.push(r.config.seed);
        if r.dataset != first.dataset {
            return Err(refuse(format!(
                "{name} is a run on {}, {first_name} on {}",
                r.dataset.name(),
                first.dataset.name()
            )));
        }
        let these: Vec<u8> = r.classes.iter().map(|c| c.class).collect();
        if these != classes {
            return Err(refuse(format!(
                "{name} holds classes {these:?}, {first_name} {classes:?}"
            )));
        }
        if r.beta != first.beta {
            return Err(refuse(format!(
                "{name} was scored with --beta {}, {first_name} with {}",
                r.beta, first.beta
            )));
        }
        for (c, base) in r.classes.iter().zip(&first.classes) {
            let differences = pin_differences(base, c);
            if !differences.is_empty() {
                return Err(refuse(format!(
                    "class {} of {name} differs from {first_name} in more than the seed: {}",
                    c.class,
                    differences.join("; ")
                )));
            }
        }
    }
    let mut per_run: Vec<Vec<Aurocs>> = Vec::with_capacity(runs.len());
    for (name, r) in runs {
        let at = r
            .classes
            .iter()
            .map(|c| auroc_after(c, epochs, r.config.epochs, name))
            .collect::<Result<Vec<_>>>()?;
        per_run.push(at);
    }
    let class_spreads = classes
        .iter()
        .enumerate()
        .map(|(i, &class)| {
            let at: Vec<Aurocs> = per_run.iter().map(|run| run[i]).collect();
            let restarts: Vec<f64> = runs
                .iter()
                .map(|(_, r)| r.classes[i].restarts as f64)
                .collect();
            ClassSpread {
                class,
                auroc: AurocSpread::of(&at),
                restarts: MeanSd::of(&restarts),
                runs: at,
            }
        })
        .collect();
    let run_means: Vec<Aurocs> = per_run.iter().map(|run| Aurocs::mean(run)).collect();
    let diffs: Vec<f64> = run_means.iter().map(|m| m.gradcon - m.recon).collect();
    let totals: Vec<f64> = runs
        .iter()
        .map(|(_, r)| r.classes.iter().map(|c| c.restarts).sum::<usize>() as f64)
        .collect();
    Ok(SeedSpread {
        dataset: first.dataset,
        epochs,
        seeds: seen,
        names: runs.iter().map(|(n, _)| n.clone()).collect(),
        classes: class_spreads,
        mean: AurocSpread::of(&run_means),
        gradcon_minus_recon: MeanSd::of(&diffs),
        total_restarts: MeanSd::of(&totals),
        run_means,
    })
}

/// How class result `c` differs from `base` in its options, the seed and the seed's split
/// of the training images left out (and `--epochs`, which [`auroc_after`] deals with).
fn pin_differences(base: &ClassResult, c: &ClassResult) -> Vec<String> {
    match (&base.pin, &c.pin) {
        (Some(a), Some(b)) => {
            let mut like = b.clone();
            like.config.seed = a.config.seed;
            like.digest = a.digest.clone();
            a.differences(&like)
        }
        _ => vec!["no training options recorded (written by an older version)".into()],
    }
}

/// The AUROCs of class result `c` of a run of `trained` epochs after `epochs` epochs.
fn auroc_after(c: &ClassResult, epochs: usize, trained: usize, name: &str) -> Result<Aurocs> {
    if trained == epochs {
        return Ok(c.auroc);
    }
    c.budgets
        .iter()
        .find(|b| b.epoch == epochs)
        .map(|b| b.auroc)
        .ok_or_else(|| {
            Error::invalid(
                "seeds",
                format!(
                    "class {} of {name} has no result after {epochs} epochs (it trained {trained} \
                     and was evaluated at {:?}; --eval-at {epochs} would record it)",
                    c.class,
                    c.budgets.iter().map(|b| b.epoch).collect::<Vec<_>>()
                ),
            )
        })
}

/// The spread as a table for a terminal.
pub fn table(s: &SeedSpread) -> String {
    let ms = |m: MeanSd| format!("{:.4} ± {:.4}", m.mean, m.sd);
    let mut t = format!(
        "{} runs of the {} protocol (seeds {}) after {} epochs: mean ± sample standard \
         deviation over the runs.\n{:>5}  {:>15}  {:>15}  {:>15}  {:>11}\n",
        s.seeds.len(),
        s.dataset.name(),
        s.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        s.epochs,
        "class",
        "GradCon",
        "recon",
        "grad",
        "restarts"
    );
    for r in s.rows() {
        t += &format!(
            "{:>5}  {:>15}  {:>15}  {:>15}  {:>4.1} ± {:>4.1}{}\n",
            r.class.map_or("mean".into(), |c| c.to_string()),
            ms(r.auroc.gradcon),
            ms(r.auroc.recon),
            ms(r.auroc.grad),
            r.restarts.mean,
            r.restarts.sd,
            if r.class.is_none() { " in all" } else { "" }
        );
    }
    t += &format!(
        "Mean GradCon less mean reconstruction AUROC: {} ({}). The authors report a mean \
         GradCon AUROC of {:.3} on {}.\n",
        ms(s.gradcon_minus_recon),
        s.differences()
            .map(|(seed, d)| format!("seed {seed}: {d:+.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        authors_reported(s.dataset),
        s.dataset.name()
    );
    t
}

/// The mean GradCon AUROC the authors report for a data set (their ICLR 2020 submission of
/// the same work, "Characterizing Missing Information in Deep Networks Using Backpropagated
/// Gradients", abstract; see PAPER.md).
pub fn authors_reported(dataset: DatasetKind) -> f64 {
    match dataset {
        DatasetKind::Mnist => 0.973,
        DatasetKind::FashionMnist => 0.934,
        DatasetKind::Cifar10 => 0.664,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_the_sample_standard_deviation() {
        let s = MeanSd::of(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(s.mean, 3.0);
        // Squared deviations 4 + 1 + 0 + 9 = 14, over n - 1 = 3.
        assert!((s.sd - (14.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(MeanSd::of(&[0.5, 0.5]).sd, 0.0);
    }
}
