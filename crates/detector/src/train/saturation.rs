//! Detection of the saturated-output trap (PAPER.md, "A trap in the authors' settings").
//!
//! With MSE on a sigmoid output, Adam at lr 1e-3 can drive the last layer's pre-activations so
//! negative that the sigmoid's derivative vanishes: every input is then reconstructed as the
//! same nearly black image, and training never recovers. A rule on the validation MSE alone
//! ("still near the all-black MSE") also fires on healthy models of mostly black classes, so the
//! monitor looks at what saturation *is*, measured on the validation images after each epoch:
//!
//! - **spread**: how much the reconstruction varies across inputs, relative to the inputs:
//!   `mean_p std_n(x'_np) / mean_p std_n(x_np)` (pixels `p`, images `n`). A saturated model
//!   gives the same image for every input: the spread is near 0. A healthy one is near 1.
//! - **sigmoid derivative**: `mean s (1 - s)` over every output value. Saturated pre-activations
//!   make it collapse (about `1e-4` and below); a healthy model keeps its background outputs
//!   small but not vanishing, because the MSE gradient itself fades as they approach 0.
//! - **stall**: the relative change of the validation MSE over the last epoch.
//!
//! The monitor fires at the end of an epoch in `check_from..=check_until` when the spread is
//! below `max_spread` *and* either the derivative has collapsed below `max_sigmoid_derivative` or
//! the loss has stalled below `max_relative_change`. All thresholds are options.
//!
//! A saturated attempt is replaced by a fresh one (while `--restarts` remain), changed by the
//! run's [`Remedy`]: by default its output layer's bias starts at the logit of the training
//! images' mean pixel, so the output begins at the data's mean intensity instead of at 0.5 and
//! the first steps no longer have to drive every output from 0.5 towards black, the push that
//! saturates the sigmoid.

/// What the trainer measures on the validation images after an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochHealth {
    pub epoch: usize,
    pub val_mse: f64,
    /// `mean_p std_n(x') / mean_p std_n(x)`.
    pub spread: f64,
    /// `mean s (1 - s)` over the outputs.
    pub sigmoid_derivative: f64,
}

/// Thresholds of the saturation rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaturationRule {
    pub check_from: usize,
    pub check_until: usize,
    pub max_spread: f64,
    pub max_sigmoid_derivative: f64,
    pub max_relative_change: f64,
}

impl Default for SaturationRule {
    fn default() -> Self {
        Self {
            check_from: 2,
            check_until: 3,
            max_spread: 0.05,
            max_sigmoid_derivative: 1e-3,
            max_relative_change: 1e-3,
        }
    }
}

/// What a fresh attempt after a saturated one changes (`--remedy`). Only attempts that follow a
/// detected saturation are changed: a run that never saturates is the same with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remedy {
    /// A new initialisation from the next attempt's derived seed, and nothing else (the only
    /// remedy before this option existed: files that record none mean this one).
    Reseed,
    /// The new initialisation, with the output layer's bias `b_c = logit(m_c)` for each
    /// channel `c`, `m_c` the mean of the training images' pixels in that channel (clamped to
    /// `[1e-3, 1 - 1e-3]`): the sigmoid output starts at the data's mean intensity.
    #[default]
    OutputBias,
}

impl Remedy {
    /// The remedy of a file that records none (written before there was a choice).
    pub fn unrecorded() -> Self {
        Self::Reseed
    }

    /// The name the command line uses (`--remedy`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Reseed => "reseed",
            Self::OutputBias => "output-bias",
        }
    }
}

/// `logit(m_c)` for each channel's mean pixel `m_c` of `images` (`n` images of `channels`
/// planes of `plane` 8-bit values each), `m_c` clamped to `[1e-3, 1 - 1e-3]`: the output bias
/// of [`Remedy::OutputBias`].
pub fn mean_logits(images: &[u8], channels: usize, plane: usize) -> Vec<f32> {
    let image = channels * plane;
    let n = images.len() / image.max(1);
    (0..channels)
        .map(|c| {
            let sum: u64 = (0..n)
                .flat_map(|i| &images[i * image + c * plane..i * image + (c + 1) * plane])
                .map(|&v| u64::from(v))
                .sum();
            let mean = sum as f64 / (255.0 * (n * plane).max(1) as f64);
            let m = mean.clamp(1e-3, 1.0 - 1e-3);
            (m / (1.0 - m)).ln() as f32
        })
        .collect()
}

/// Why the monitor judged a model saturated, for the user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saturated {
    pub health: EpochHealth,
    pub relative_change: f64,
}

impl std::fmt::Display for Saturated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "saturated output after epoch {}: reconstructions barely vary across inputs \
             (spread {:.4}), sigmoid derivative {:.2e}, validation MSE {:.5} (changed {:.2e})",
            self.health.epoch,
            self.health.spread,
            self.health.sigmoid_derivative,
            self.health.val_mse,
            self.relative_change
        )
    }
}

impl SaturationRule {
    /// Checks that every threshold is a finite number at least 0 (the error names the CLI
    /// option).
    pub fn validate(&self) -> crate::Result<()> {
        for (option, v) in [
            ("sat-spread", self.max_spread),
            ("sat-derivative", self.max_sigmoid_derivative),
            ("sat-stall", self.max_relative_change),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(crate::Error::InvalidOption {
                    option,
                    value: v.to_string(),
                    expected: "a finite number >= 0",
                });
            }
        }
        Ok(())
    }

    /// Judges the epoch `now` given the previous epoch's measurements (if any).
    pub fn judge(&self, previous: Option<&EpochHealth>, now: &EpochHealth) -> Option<Saturated> {
        if now.epoch < self.check_from || now.epoch > self.check_until {
            return None;
        }
        let relative_change = previous.map_or(f64::INFINITY, |p| {
            (p.val_mse - now.val_mse).abs() / p.val_mse.abs().max(1e-12)
        });
        let flat = now.spread < self.max_spread;
        let collapsed = now.sigmoid_derivative < self.max_sigmoid_derivative;
        let stalled = relative_change < self.max_relative_change;
        (flat && (collapsed || stalled)).then_some(Saturated {
            health: *now,
            relative_change,
        })
    }
}

/// Statistics of a batch of reconstructions against its inputs (`[n, values]` row-major each).
pub fn health_stats(inputs: &[f32], recons: &[f32], values_per_image: usize) -> (f64, f64) {
    let n = inputs.len() / values_per_image.max(1);
    let mean_std = |data: &[f32]| -> f64 {
        if n < 2 {
            return 0.0;
        }
        let mut total = 0.0;
        for p in 0..values_per_image {
            let (mut s, mut s2) = (0.0f64, 0.0f64);
            for i in 0..n {
                let v = data[i * values_per_image + p] as f64;
                s += v;
                s2 += v * v;
            }
            let mean = s / n as f64;
            total += (s2 / n as f64 - mean * mean).max(0.0).sqrt();
        }
        total / values_per_image as f64
    };
    let spread = mean_std(recons) / mean_std(inputs).max(1e-12);
    let dsig = recons
        .iter()
        .map(|&s| s as f64 * (1.0 - s as f64))
        .sum::<f64>()
        / recons.len().max(1) as f64;
    (spread, dsig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(epoch: usize, val_mse: f64, spread: f64, sigmoid_derivative: f64) -> EpochHealth {
        EpochHealth {
            epoch,
            val_mse,
            spread,
            sigmoid_derivative,
        }
    }

    #[test]
    fn fires_on_flat_collapsed_output_only_in_window() {
        let rule = SaturationRule::default();
        let sat = h(2, 0.118, 0.001, 2e-5);
        assert!(rule.judge(Some(&h(1, 0.118, 0.002, 3e-5)), &sat).is_some());
        assert!(rule.judge(None, &h(1, 0.118, 0.001, 2e-5)).is_none());
        assert!(rule.judge(None, &h(9, 0.118, 0.001, 2e-5)).is_none());
    }

    #[test]
    fn quiet_on_a_learning_dark_class() {
        // Mostly black images, MSE near the all-black value, but reconstructions vary.
        let rule = SaturationRule::default();
        let prev = h(1, 0.060, 0.40, 0.02);
        assert!(rule.judge(Some(&prev), &h(2, 0.058, 0.45, 0.02)).is_none());
        // Flat but still moving and with a live derivative: not yet judged saturated.
        assert!(rule.judge(Some(&prev), &h(2, 0.050, 0.03, 0.02)).is_none());
    }

    #[test]
    fn mean_logits_are_per_channel_and_clamped() {
        // Two images of two channels of two pixels: channel 0 holds 0, 255, 51, 51 (mean 0.35),
        // channel 1 only zeros (mean 0, clamped to 1e-3).
        let images = [0, 255, 0, 0, 51, 51, 0, 0];
        let l = mean_logits(&images, 2, 2);
        assert!((l[0] as f64 - (0.35f64 / 0.65).ln()).abs() < 1e-6, "{l:?}");
        assert!(
            (l[1] as f64 - (1e-3f64 / (1.0 - 1e-3)).ln()).abs() < 1e-5,
            "{l:?}"
        );
        assert_eq!(
            mean_logits(&[255; 4], 1, 4)[0],
            (0.999f64 / 0.001).ln() as f32
        );
    }

    #[test]
    fn stats_of_constant_and_identical_reconstructions() {
        let inputs = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5];
        let (spread, d) = health_stats(&inputs, &[0.2; 6], 2);
        assert_eq!(spread, 0.0);
        assert!((d - 0.16).abs() < 1e-6);
        let (spread, _) = health_stats(&inputs, &inputs, 2);
        assert!((spread - 1.0).abs() < 1e-12);
    }
}
