//! Progress on stderr: one bar per training run (a class of the protocol) over its epochs,
//! with the latest losses; restarts and resumes as lines; with `--epoch-lines`, a line per
//! epoch as well; and a line per finished class of the protocol.

use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use detector::eval::protocol::ProtocolObserver;
use detector::eval::ClassResult;
use detector::train::saturation::Saturated;
use detector::train::{EpochRecord, Observer};

/// How much progress to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// Nothing but warnings.
    pub quiet: bool,
    /// A line per epoch besides the bar.
    pub epoch_lines: bool,
}

/// One training run's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    show: Verbosity,
    epochs: usize,
    started: Instant,
    images: usize,
}

impl Progress {
    /// The progress of a run of at most `epochs` epochs, its lines prefixed by `label`.
    pub fn new(label: impl Into<String>, show: Verbosity, epochs: usize) -> Self {
        Self {
            bar: None,
            label: label.into(),
            show,
            epochs,
            started: Instant::now(),
            images: 0,
        }
    }

    fn bar(&mut self) -> Option<&ProgressBar> {
        if self.show.quiet {
            return None;
        }
        if self.bar.is_none() {
            let bar = ProgressBar::new(self.epochs as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] epoch {pos}/{len}  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(self.label.clone());
            self.bar = Some(bar);
        }
        self.bar.as_ref()
    }

    /// A line above the bar; alone where no bar is drawn (quiet, or stderr not a terminal,
    /// where indicatif hides the bar and would drop the line with it).
    fn line(&mut self, text: String) {
        match self.bar() {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn epoch_started(&mut self, attempt: usize, epoch: usize, _batches: usize) {
        self.started = Instant::now();
        self.images = 0;
        if let Some(bar) = self.bar() {
            bar.set_position(epoch as u64 - 1);
            if attempt > 0 {
                bar.set_prefix(format!("{} (attempt {attempt})", bar.prefix()));
            }
        }
    }

    fn batch_done(&mut self, loss: f64, images: usize) {
        self.images += images;
        let rate = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("J {loss:.5}  {rate:.0} img/s"));
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord) {
        let val = match (r.val_loss, r.val_mse) {
            (Some(j), Some(m)) => format!("val J {j:.5} mse {m:.5}"),
            _ => "no validation".into(),
        };
        if let Some(bar) = self.bar() {
            bar.set_position(r.epoch as u64);
            bar.set_message(format!("train J {:.5}, {val}", r.train_loss));
        }
        if self.show.epoch_lines && !self.show.quiet {
            let text = format!(
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
            self.line(text);
        }
    }

    fn resumed(&mut self, path: &Path, attempt: usize, epoch: usize) {
        if !self.show.quiet {
            let text = format!(
                "{}: resuming from {} (attempt {attempt}, {epoch} epochs done)",
                self.label,
                path.display()
            );
            self.line(text);
        }
    }

    fn diverged(&mut self, epoch: usize, step: usize, next: usize) {
        let text = format!(
            "{}: the training loss became NaN or infinite at epoch {epoch}, step {step}; \
             re-initialising (attempt {next})",
            self.label
        );
        self.line(text);
    }

    fn restarted(&mut self, why: &Saturated, next: usize) {
        let text = format!("{}: {why}; re-initialising (attempt {next})", self.label);
        self.line(text);
    }

    fn saturated_without_restart(&mut self, why: &Saturated) {
        let text = format!(
            "{}: warning: {why}; no restarts left (--restarts), training goes on",
            self.label
        );
        self.line(text);
    }
}

/// The protocol's progress: each class's training as [`Progress`], and its AUROCs when done.
pub struct ProtocolProgress {
    show: Verbosity,
    epochs: usize,
}

impl ProtocolProgress {
    pub fn new(show: Verbosity, epochs: usize) -> Self {
        Self { show, epochs }
    }
}

impl ProtocolObserver for ProtocolProgress {
    fn class_started(&mut self, class: u8) -> Box<dyn Observer + '_> {
        Box::new(Progress::new(
            format!("class {class}"),
            self.show,
            self.epochs,
        ))
    }

    fn class_reused(&mut self, r: &ClassResult, path: &Path) {
        if !self.show.quiet {
            eprintln!(
                "class {}: done earlier with these options and data ({}), reused",
                r.class,
                path.display()
            );
        }
    }

    fn class_done(&mut self, r: &ClassResult) {
        if !self.show.quiet {
            eprintln!(
                "class {}: AUROC GradCon {:.4}, recon {:.4}, grad {:.4} ({} restarts, {:.1} s)",
                r.class, r.auroc.gradcon, r.auroc.recon, r.auroc.grad, r.restarts, r.seconds
            );
        }
    }
}
