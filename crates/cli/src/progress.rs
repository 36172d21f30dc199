//! Progress on stderr: a bar over each epoch's batches, a line per epoch, restarts, and a
//! line per finished class of the protocol.

use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use detector::eval::protocol::ProtocolObserver;
use detector::eval::ClassResult;
use detector::train::saturation::Saturated;
use detector::train::{EpochRecord, Observer};

/// Progress on stderr: a bar over each epoch's batches, a line per epoch, restarts.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    quiet: bool,
    started: Instant,
    images: usize,
}

impl Progress {
    pub fn new(label: impl Into<String>, quiet: bool) -> Self {
        Self {
            bar: None,
            label: label.into(),
            quiet,
            started: Instant::now(),
            images: 0,
        }
    }
}

impl Observer for Progress {
    fn epoch_started(&mut self, attempt: usize, epoch: usize, batches: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{} attempt {attempt} epoch {epoch}", self.label));
        self.started = Instant::now();
        self.images = 0;
        self.bar = Some(bar);
    }

    fn batch_done(&mut self, loss: f64, images: usize) {
        self.images += images;
        if let Some(bar) = &self.bar {
            let rate = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("J {loss:.5}  {rate:.0} img/s"));
            bar.inc(1);
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let val = match (r.val_loss, r.val_mse) {
            (Some(j), Some(m)) => format!("val J {j:.5} mse {m:.5}"),
            _ => "no validation".into(),
        };
        eprintln!(
            "{} attempt {} epoch {}: train J {:.5} mse {:.5}, {val}, recon spread {:.3}, \
             sigmoid' {:.2e}",
            self.label,
            r.attempt,
            r.epoch,
            r.train_loss,
            r.train_mse,
            r.spread,
            r.sigmoid_derivative
        );
    }

    fn resumed(&mut self, path: &Path, attempt: usize, epoch: usize) {
        if !self.quiet {
            eprintln!(
                "{}: resuming from {} (attempt {attempt}, {epoch} epochs done)",
                self.label,
                path.display()
            );
        }
    }

    fn diverged(&mut self, epoch: usize, step: usize, next: usize) {
        eprintln!(
            "{}: the training loss became NaN or infinite at epoch {epoch}, step {step}; \
             re-initialising (attempt {next})",
            self.label
        );
    }

    fn restarted(&mut self, why: &Saturated, next: usize) {
        eprintln!("{}: {why}; re-initialising (attempt {next})", self.label);
    }

    fn saturated_without_restart(&mut self, why: &Saturated) {
        eprintln!(
            "{}: warning: {why}; no restarts left (--restarts), training goes on",
            self.label
        );
    }
}

/// The protocol's progress: each class's training as [`Progress`], and its AUROCs when done.
pub struct ProtocolProgress {
    quiet: bool,
}

impl ProtocolProgress {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }
}

impl ProtocolObserver for ProtocolProgress {
    fn class_started(&mut self, class: u8) -> Box<dyn Observer + '_> {
        Box::new(Progress::new(format!("class {class}"), self.quiet))
    }

    fn class_reused(&mut self, r: &ClassResult, path: &Path) {
        if !self.quiet {
            eprintln!(
                "class {}: done earlier with these options and data ({}), reused",
                r.class,
                path.display()
            );
        }
    }

    fn class_done(&mut self, r: &ClassResult) {
        if !self.quiet {
            eprintln!(
                "class {}: AUROC GradCon {:.4}, recon {:.4}, grad {:.4} ({} restarts, {:.1} s)",
                r.class, r.auroc.gradcon, r.auroc.recon, r.auroc.grad, r.restarts, r.seconds
            );
        }
    }
}
