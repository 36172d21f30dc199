//! Decisions: a threshold on the anomaly score calibrated on normal images at a target
//! false-positive rate, and the confusion matrix of the decisions it gives.
//!
//! An image is **anomalous** when its anomaly score (`-gradcon`, higher is more anomalous) is
//! strictly above the threshold. Calibrated on `n` normal validation scores `s_(1) <= ... <=
//! s_(n)` at a target rate `a`, the threshold is `s_(k)` with `k = ceil((1 - a) n)`: the
//! empirical `(1 - a)`-quantile, taking the higher rank. At most `floor(a n)` validation images
//! lie above it, so the false-positive rate on them is at most `a`, and at least `a - 1/n`
//! when no two scores tie. With one image the threshold is its score (rate 0); with none there
//! is no threshold.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Default target false-positive rate of the calibration.
pub const DEFAULT_FPR: f64 = 0.05;

/// The threshold for a target false-positive rate `fpr` (in `[0, 1)`) over the anomaly scores
/// of normal images (see the module documentation).
pub fn quantile_threshold(normal_scores: &[f64], fpr: f64) -> Result<f64> {
    check_fpr(fpr)?;
    if let Some(s) = normal_scores.iter().find(|s| !s.is_finite()) {
        return Err(Error::invalid(
            "threshold",
            format!("a validation score is {s}"),
        ));
    }
    let mut sorted = normal_scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Err(Error::invalid(
            "threshold",
            "no validation images to calibrate on",
        ));
    }
    let k = (((1.0 - fpr) * n as f64).ceil() as usize).clamp(1, n);
    Ok(sorted[k - 1])
}

/// An error naming `--fpr` unless `fpr` is in `[0, 1)`.
pub fn check_fpr(fpr: f64) -> Result<()> {
    if fpr.is_finite() && (0.0..1.0).contains(&fpr) {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            option: "fpr",
            value: fpr.to_string(),
            expected: "a rate in [0, 1)",
        })
    }
}

/// How a detector's threshold was calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Images with an anomaly score above this are anomalous.
    pub threshold: f64,
    /// The score weight the anomaly scores were computed with: the threshold applies to
    /// scores of this `beta` only.
    pub beta: f64,
    /// The target false-positive rate.
    pub target_fpr: f64,
    /// Normal validation images it was calibrated on, and the rate of them above it.
    pub images: usize,
    pub fpr: f64,
}

impl Calibration {
    /// Calibrates on the anomaly scores (computed with `beta`) of normal images.
    pub fn new(normal_scores: &[f64], beta: f64, target_fpr: f64) -> Result<Self> {
        let threshold = quantile_threshold(normal_scores, target_fpr)?;
        let above = normal_scores.iter().filter(|&&s| s > threshold).count();
        Ok(Self {
            threshold,
            beta,
            target_fpr,
            images: normal_scores.len(),
            fpr: above as f64 / normal_scores.len() as f64,
        })
    }
}

/// Counts of decisions against the truth, anomalous being the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Anomalous images decided anomalous.
    pub true_positives: usize,
    /// Normal images decided anomalous.
    pub false_positives: usize,
    /// Normal images decided normal.
    pub true_negatives: usize,
    /// Anomalous images decided normal.
    pub false_negatives: usize,
}

impl Confusion {
    /// Decisions (`anomalous[i]`) against the truth (`is_anomalous[i]`).
    pub fn of(anomalous: &[bool], is_anomalous: &[bool]) -> Self {
        let mut c = Self::default();
        for (&decided, &truth) in anomalous.iter().zip(is_anomalous) {
            match (decided, truth) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// `tp / (tp + fp)` (0 when nothing was decided anomalous).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `tp / (tp + fn)`, the true-positive rate (0 without anomalous images).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// The harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// `fp / (fp + tn)` (0 without normal images).
    pub fn fpr(&self) -> f64 {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Precision, recall, F1 and false-positive rate at a threshold, with their counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fpr: f64,
    pub confusion: Confusion,
}

impl AtThreshold {
    /// The decisions `anomaly_score > threshold` against the truth.
    pub fn of(anomaly_scores: &[f64], is_anomalous: &[bool], threshold: f64) -> Self {
        let decided: Vec<bool> = anomaly_scores.iter().map(|&s| s > threshold).collect();
        let c = Confusion::of(&decided, is_anomalous);
        Self {
            threshold,
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            fpr: c.fpr(),
            confusion: c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibrated_rate_is_within_one_over_n_of_the_target() {
        let mut rng = core_tensor::Rng::seed_from_u64(3);
        for n in [1usize, 2, 7, 19, 20, 21, 100, 333] {
            let scores: Vec<f64> = (0..n).map(|_| rng.below(1 << 30) as f64).collect();
            for target in [0.0, 0.01, 0.05, 0.1, 0.5, 0.9] {
                let c = Calibration::new(&scores, 0.12, target).unwrap();
                assert!(
                    c.fpr <= target + 1e-12 && c.fpr >= target - 1.0 / n as f64 - 1e-12,
                    "n {n}, target {target}: rate {}",
                    c.fpr
                );
            }
        }
        assert!(quantile_threshold(&[], 0.05).is_err());
        assert!(check_fpr(1.0).is_err() && check_fpr(f64::NAN).is_err());
    }

    #[test]
    fn precision_recall_and_f1_follow_a_hand_counted_matrix() {
        // Scores and truth: above 0.5 is anomalous.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.55, 0.45];
        let truth = [
            true, true, false, true, true, false, false, false, false, true,
        ];
        // Decided anomalous: 0.9 (T), 0.8 (T), 0.7 (F), 0.6 (T), 0.55 (F): tp 3, fp 2.
        // Decided normal: 0.4 (T), 0.3, 0.2, 0.1 (F), 0.45 (T): fn 2, tn 3.
        let m = AtThreshold::of(&scores, &truth, 0.5);
        assert_eq!(
            m.confusion,
            Confusion {
                true_positives: 3,
                false_positives: 2,
                true_negatives: 3,
                false_negatives: 2
            }
        );
        assert_eq!(m.precision, 3.0 / 5.0);
        assert_eq!(m.recall, 3.0 / 5.0);
        assert!((m.f1 - 0.6).abs() < 1e-15);
        assert_eq!(m.fpr, 2.0 / 5.0);
    }
}
