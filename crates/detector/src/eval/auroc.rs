//! Area under the ROC curve, with ties counting one half.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::gradcon::Score;

/// Why an AUROC could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum AurocError {
    /// A score is NaN (index into the scores given).
    NanScore { index: usize },
    /// The labels hold no positive or no negative example.
    OneClass { positives: usize, negatives: usize },
    /// Scores and labels differ in length.
    LengthMismatch { scores: usize, labels: usize },
}

impl fmt::Display for AurocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NanScore { index } => write!(f, "AUROC: score {index} is NaN"),
            Self::OneClass {
                positives,
                negatives,
            } => write!(
                f,
                "AUROC needs both classes, got {positives} positives and {negatives} negatives"
            ),
            Self::LengthMismatch { scores, labels } => {
                write!(f, "AUROC: {scores} scores but {labels} labels")
            }
        }
    }
}

impl std::error::Error for AurocError {}

/// `P(score(normal) > score(anomaly)) + P(equal) / 2` over all pairs (Mann-Whitney U / (P N)).
///
/// `positive[i]` marks the normal (inlier) examples, ranked by `scores` with higher meaning more
/// normal. Equals scikit-learn's `roc_auc_score(positive, scores)`. Runs in `O(n log n)` through
/// average ranks of tied groups.
///
/// ```
/// use detector::eval::auroc::auroc;
/// let a = auroc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
/// assert_eq!(a, 0.875); // 3 pairs won, 1 tied, out of 4
/// ```
pub fn auroc(scores: &[f64], positive: &[bool]) -> Result<f64, AurocError> {
    if scores.len() != positive.len() {
        return Err(AurocError::LengthMismatch {
            scores: scores.len(),
            labels: positive.len(),
        });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(AurocError::NanScore { index });
    }
    let positives = positive.iter().filter(|&&p| p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(AurocError::OneClass {
            positives,
            negatives,
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_pos = order[start..end].iter().filter(|&&i| positive[i]).count();
        rank_sum += mean_rank * tied_pos as f64;
        start = end;
    }
    let p = positives as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// AUROCs of the three scores (normal images positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aurocs {
    pub gradcon: f64,
    pub recon: f64,
    pub grad: f64,
}

impl Aurocs {
    /// The AUROC of each score, `normal[i]` telling whether image `i` is normal.
    pub fn of(scores: &[Score], normal: &[bool]) -> crate::Result<Self> {
        let a = |f: fn(&Score) -> f64| {
            let s: Vec<f64> = scores.iter().map(f).collect();
            auroc(&s, normal).map_err(|e| crate::Error::invalid("auroc", e.to_string()))
        };
        Ok(Self {
            gradcon: a(|s| s.gradcon)?,
            recon: a(|s| s.recon)?,
            grad: a(|s| s.grad)?,
        })
    }

    /// The mean of each AUROC over `items` (zeros for none).
    pub fn mean(items: &[Aurocs]) -> Self {
        let n = items.len().max(1) as f64;
        let mean = |f: fn(&Aurocs) -> f64| items.iter().map(f).sum::<f64>() / n;
        Self {
            gradcon: mean(|a| a.gradcon),
            recon: mean(|a| a.recon),
            grad: mean(|a| a.grad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, over all pairs.
    fn pairwise(scores: &[f64], positive: &[bool]) -> f64 {
        let (mut won, mut pairs) = (0.0, 0.0);
        for (i, &pi) in positive.iter().enumerate() {
            for (j, &pj) in positive.iter().enumerate() {
                if pi && !pj {
                    pairs += 1.0;
                    if scores[i] > scores[j] {
                        won += 1.0;
                    } else if scores[i] == scores[j] {
                        won += 0.5;
                    }
                }
            }
        }
        won / pairs
    }

    proptest! {
        #[test]
        fn equals_pairwise_definition(
            pairs in prop::collection::vec((0u8..6, any::<bool>()), 2..60)
        ) {
            let scores: Vec<f64> = pairs.iter().map(|&(s, _)| s as f64 * 0.25).collect();
            let labels: Vec<bool> = pairs.iter().map(|&(_, l)| l).collect();
            prop_assume!(labels.iter().any(|&l| l) && labels.iter().any(|&l| !l));
            let fast = auroc(&scores, &labels).unwrap();
            prop_assert!((fast - pairwise(&scores, &labels)).abs() < 1e-12);
        }
    }

    #[test]
    fn perfect_reversed_and_constant() {
        let labels = [true, true, false, false];
        assert_eq!(auroc(&[4.0, 3.0, 2.0, 1.0], &labels).unwrap(), 1.0);
        assert_eq!(auroc(&[1.0, 2.0, 3.0, 4.0], &labels).unwrap(), 0.0);
        assert_eq!(auroc(&[7.0; 4], &labels).unwrap(), 0.5);
    }

    #[test]
    fn matches_scikit_learn_value() {
        // sklearn.metrics.roc_auc_score([1,0,1,1,0,0,1], [.3,.2,.9,.3,.3,.8,.5]) == 0.6666666666666667 (8 of 12 pairs)
        let labels = [true, false, true, true, false, false, true];
        let scores = [0.3, 0.2, 0.9, 0.3, 0.3, 0.8, 0.5];
        assert!((auroc(&scores, &labels).unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn errors() {
        assert_eq!(
            auroc(&[1.0, f64::NAN], &[true, false]),
            Err(AurocError::NanScore { index: 1 })
        );
        assert!(matches!(
            auroc(&[1.0, 2.0], &[true, true]),
            Err(AurocError::OneClass { .. })
        ));
        assert!(matches!(
            auroc(&[1.0], &[true, false]),
            Err(AurocError::LengthMismatch { .. })
        ));
    }
}
