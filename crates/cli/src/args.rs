//! The `gradcon` command line: argument definitions and dispatch.
//!
//! Exit codes: 0 success, 1 runtime error (bad file, failed training, ...), 2 usage error
//! (clap's own code for an unknown option or a missing argument).

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use detector::data::Fit;
use detector::eval::DatasetKind;
use detector::train::saturation::{Remedy, SaturationRule};
use detector::{Error, Result, ScoreSettings, TrainConfig, DEFAULT_BETA};

/// Parses a command line (the program name first). `--lr -1` parses as a value, which the
/// checks then refuse with a message naming the option, rather than as an unknown flag `-1`.
pub fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = Cli::command()
        .allow_negative_numbers(true)
        .mut_subcommands(|s| s.allow_negative_numbers(true));
    Cli::from_arg_matches(&command.try_get_matches_from(args)?)
}

fn bad(option: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::InvalidOption {
        option,
        value: value.to_string(),
        expected,
    }
}

fn check_beta(beta: f64) -> Result<()> {
    ScoreSettings {
        beta,
        ..ScoreSettings::default()
    }
    .validate()
}

fn check_channels(channels: usize) -> Result<()> {
    match channels {
        1 | 3 => Ok(()),
        c => Err(bad("channels", c, "1 or 3")),
    }
}

/// Most images `bench` scores.
pub const MAX_BENCH_IMAGES: usize = 1 << 24;
/// Most timed training steps `bench` takes.
pub const MAX_BENCH_STEPS: usize = 1_000_000;
/// Largest training batch `bench` times.
pub const MAX_BENCH_BATCH: usize = 4096;
/// Most single-image calls `bench` times.
pub const MAX_BENCH_CALLS: usize = 10_000_000;

impl Cli {
    /// Checks every option of the command line before any work, with the library's own
    /// checks where it has them: each refusal names the option.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.global.threads {
            detector::parallel::check_threads(t)?;
        }
        if self.global.max_file_mb == 0 {
            return Err(bad("max-file-mb", 0, "at least 1"));
        }
        if self.global.max_megapixels == 0 {
            return Err(bad("max-megapixels", 0, "at least 1"));
        }
        match &self.command {
            Command::Demo(a) => TrainConfig {
                epochs: a.epochs,
                ..TrainConfig::default()
            }
            .validate(),
            Command::Train(a) => {
                a.train.config(0).validate()?;
                check_beta(a.beta)?;
                detector::eval::threshold::check_fpr(a.fpr)?;
                check_channels(a.channels)?;
                if let (Some(fit), true) = (a.fit, a.images.is_empty()) {
                    return Err(bad("fit", fit.name(), "--fit with --images"));
                }
                if let (Some(d), Some(c)) = (a.data.dataset, a.class) {
                    DatasetKind::from(d).check_class(c)?;
                }
                Ok(())
            }
            Command::Score(a) => {
                check_beta(a.beta)?;
                if let Some(t) = a.threshold.filter(|t| !t.is_finite()) {
                    return Err(bad("threshold", t, "a finite number"));
                }
                if let Some(c) = a.normal_class {
                    DatasetKind::Mnist
                        .check_class(c)
                        .map_err(|_| bad("normal-class", c, "a class of the labels, 0 to 9"))?;
                }
                if a.labels.is_some() != a.normal_class.is_some() {
                    return Err(bad(
                        "normal-class",
                        a.normal_class.map_or("(missing)".into(), |c| c.to_string()),
                        "--labels and --normal-class together",
                    ));
                }
                Ok(())
            }
            Command::Eval(a) => {
                check_beta(a.beta)?;
                if let Some(t) = a.threshold.filter(|t| !t.is_finite()) {
                    return Err(bad("threshold", t, "a finite number"));
                }
                match (a.data.dataset, a.class, a.normal_dir.is_empty()) {
                    (Some(d), Some(c), true) => DatasetKind::from(d).check_class(c),
                    (None, None, false) => Ok(()),
                    _ => Err(bad(
                        "class",
                        a.class.map_or("(missing)".into(), |c| c.to_string()),
                        "--dataset with --class, or --normal-dir with --abnormal-dir",
                    )),
                }
            }
            Command::Merge(_) => Ok(()),
            Command::Seeds(a) => match a.epochs {
                Some(0) => Err(bad("epochs", 0, "at least 1")),
                _ => Ok(()),
            },
            Command::Protocol(a) => {
                a.train.config(5).validate()?;
                detector::eval::budget::check_budgets(&a.eval_at, a.train.epochs)?;
                check_beta(a.beta)?;
                let kind = DatasetKind::from(a.data.dataset);
                match &a.classes {
                    Some(c) if c.is_empty() => Err(bad("classes", "(none)", "classes 0 to 9")),
                    Some(c) => c.iter().try_for_each(|&c| kind.check_class(c)),
                    None => Ok(()),
                }
            }
            Command::Export(a) => {
                if a.out.extension().is_some_and(|e| e == "safetensors") {
                    Ok(())
                } else {
                    Err(bad(
                        "out",
                        a.out.display(),
                        "a file name ending in .safetensors",
                    ))
                }
            }
            Command::Bench(a) => {
                check_channels(a.channels)?;
                if !(1..=MAX_BENCH_STEPS).contains(&a.steps) {
                    return Err(bad("steps", a.steps, "1 to 1000000"));
                }
                if !(1..=MAX_BENCH_IMAGES).contains(&a.images) {
                    return Err(bad("images", a.images, "1 to 16777216"));
                }
                if !(1..=MAX_BENCH_BATCH).contains(&a.batch) {
                    return Err(bad("batch", a.batch, "1 to 4096"));
                }
                if !(1..=MAX_BENCH_CALLS).contains(&a.calls) {
                    return Err(bad("calls", a.calls, "1 to 10000000"));
                }
                Ok(())
            }
        }
    }
}

/// GradCon anomaly detection (Kwon et al., ECCV 2020) with a from-scratch Rust autograd engine.
#[derive(Debug, Parser)]
#[command(name = "gradcon", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Worker threads for the kernels (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// No progress bars or per-epoch lines on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// A line per epoch on stderr (losses, reconstruction spread, sigmoid derivative) above
    /// the one progress bar per training run.
    #[arg(long, global = true)]
    pub epoch_lines: bool,
    /// Largest input file read, in MiB (a larger file, or a stream past it, is refused).
    #[arg(long, global = true, default_value_t = 1024)]
    pub max_file_mb: u64,
    /// Most pixel values one load may decode or resize to, in millions (2^20).
    #[arg(long, global = true, default_value_t = 1024)]
    pub max_megapixels: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train, score and print a per-class AUROC table on the sample shipped in `data/`.
    Demo(DemoArgs),
    /// Train one model on one normal class.
    Train(TrainArgs),
    /// Score images with a trained model: per image (CSV or JSON) its anomaly_score
    /// (= -gradcon: HIGHER MEANS MORE ANOMALOUS), the decision `anomalous` (1 when the anomaly
    /// score is above the model's threshold, 0 below, empty without one), and the GradCon
    /// score with its reconstruction and gradient terms (higher means more normal). AUROC
    /// with --labels.
    Score(ScoreArgs),
    /// Evaluate a model: on its class's protocol test split (--dataset, --class), or on folders
    /// of normal and anomalous images (--normal-dir, --abnormal-dir): the three AUROCs, and
    /// precision, recall, F1 and the false-positive rate at the threshold (anomalous positive).
    Eval(EvalArgs),
    /// Run the one-class protocol: a model per class, AUROC per class and mean.
    Protocol(ProtocolArgs),
    /// Combine the classes of a protocol folder run as separate jobs (`protocol --shard`) into
    /// its results.json, refusing classes trained on other data, with other options or seeds,
    /// or scored otherwise.
    Merge(MergeArgs),
    /// The spread over seeds: protocol folders that differ only in --seed, summarised per
    /// class and for the mean as the mean and sample standard deviation (n-1) of the three
    /// AUROCs and of the restarts, after the same number of epochs.
    Seeds(SeedsArgs),
    /// Write a model as .safetensors with the authors' names (and reference gradients; see
    /// --torch for PyTorch's strict loading).
    Export(ExportArgs),
    /// Time a training step and scoring on this machine.
    Bench(BenchArgs),
}

/// The data sets of the protocol, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    Mnist,
    FashionMnist,
    Cifar10,
}

impl From<DatasetArg> for DatasetKind {
    fn from(d: DatasetArg) -> Self {
        match d {
            DatasetArg::Mnist => DatasetKind::Mnist,
            DatasetArg::FashionMnist => DatasetKind::FashionMnist,
            DatasetArg::Cifar10 => DatasetKind::Cifar10,
        }
    }
}

/// GradCon's training options (defaults: PAPER.md).
#[derive(Debug, Clone, Args)]
pub struct TrainOptions {
    /// Weight of the gradient-alignment loss.
    #[arg(long, default_value_t = 0.03)]
    pub alpha: f64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Images per training batch (the last partial batch is kept).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Maximum number of epochs (the authors train up to 1000).
    #[arg(long, default_value_t = 1000)]
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss (default: never).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Fraction of the training images held out for validation (MNIST, CIFAR-10); 0 keeps the
    /// last epoch instead of the best.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Seed of every random choice (splits, initialisation, shuffling, restarts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Re-initialisations allowed when the output saturates (0: the authors' exact behaviour).
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Keep the data order fixed (no reshuffle per epoch).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Saturation check: reconstruction spread across inputs below this ...
    #[arg(long, default_value_t = 0.05)]
    pub sat_spread: f64,
    /// ... and the mean sigmoid derivative below this, or ...
    #[arg(long, default_value_t = 1e-3)]
    pub sat_derivative: f64,
    /// ... the validation MSE's relative change below this.
    #[arg(long, default_value_t = 1e-3)]
    pub sat_stall: f64,
    /// Last epoch at which saturation is checked (from epoch 2 on).
    #[arg(long, default_value_t = 3)]
    pub sat_until: usize,
    /// What the fresh attempt after a saturated output changes: `output-bias` starts its
    /// output layer's bias at the logit of the training images' mean pixel (the output begins
    /// at the data's mean intensity instead of 0.5); `reseed` only draws new weights (the
    /// behaviour of runs that record no remedy). Runs that never saturate are the same with
    /// either.
    #[arg(long, value_enum, default_value_t = RemedyArg::OutputBias)]
    pub remedy: RemedyArg,
    /// Validation selection compares every Nth epoch (1, 1+N, 1+2N, ...) and the last: 1
    /// compares every epoch; 5 is the authors' code, which compares only the epochs it
    /// checkpoints.
    #[arg(long, default_value_t = 1)]
    pub select_every: usize,
}

/// `--remedy`, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RemedyArg {
    OutputBias,
    Reseed,
}

impl From<RemedyArg> for Remedy {
    fn from(r: RemedyArg) -> Self {
        match r {
            RemedyArg::OutputBias => Remedy::OutputBias,
            RemedyArg::Reseed => Remedy::Reseed,
        }
    }
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data set of the protocol.
    #[arg(long, value_enum, required = true)]
    pub dataset: DatasetArg,
    /// Folder holding the data set's files (default: `$GRADCON_DATA`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A data set that may be left out (when images are given directly).
#[derive(Debug, Args)]
pub struct OptionalDataArgs {
    /// Data set of the protocol.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,
    /// Folder holding the data set's files (default: $GRADCON_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder of the sample (default: the `data/fashion-mnist-sample` shipped with the project).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Epochs per class.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Seed of every random choice (splits, initialisation, shuffling, restarts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write a report page, DIR/index.html (ROC curves, score histograms with the
    /// threshold, training curves, and the most and least anomalous test images of each class).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: OptionalDataArgs,
    /// The normal class (with --dataset).
    #[arg(long)]
    pub class: Option<u8>,
    /// Train on your own images instead: files and folders of PNG, JPEG, IDX or CIFAR-10
    /// images.
    #[arg(
        long,
        num_args = 1..,
        value_name = "PATH",
        conflicts_with_all = ["dataset", "class"],
        long_help = TRAIN_IMAGES_HELP
    )]
    pub images: Vec<PathBuf>,
    /// Image channels of the model trained on --images (1 or 3).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// How non-square --images become the model's square input: stretch (default), crop or
    /// pad.
    #[arg(long, value_enum, long_help = FIT_HELP)]
    pub fit: Option<FitArg>,
    /// Where to write the trained model.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Start from these weights (and reference gradients) instead of a seeded initialisation.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Start over: ignore (and replace) an earlier run's checkpoint and model at --out.
    #[arg(long)]
    pub fresh: bool,
    /// Weight of the gradient term in the score the threshold is calibrated for.
    #[arg(long, default_value_t = DEFAULT_BETA)]
    pub beta: f64,
    /// Target false-positive rate of the decision threshold, calibrated on the held-out
    /// normal validation images: the threshold is their ceil((1 - fpr) n)-th smallest anomaly
    /// score, so at most floor(fpr n) of them are above it. No threshold with
    /// --val-fraction 0. Not pinned: it does not change the weights.
    #[arg(long, default_value_t = detector::eval::threshold::DEFAULT_FPR)]
    pub fpr: f64,
    /// Keep the checkpoint NAME.ckpt when training ends (by default it is removed, and the
    /// model file records how it was trained); a kept checkpoint lets a larger --epochs extend
    /// the run.
    #[arg(long)]
    pub keep_checkpoint: bool,
    #[command(flatten)]
    pub train: TrainOptions,
}

/// Output formats of per-image scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The trained model (.gcm or .safetensors).
    #[arg(long, short)]
    pub model: PathBuf,
    #[command(flatten)]
    pub images: ImageArgs,
    /// Labels (IDX) for the images, to report the AUROC with --normal-class.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The class counted as normal for the AUROC.
    #[arg(long)]
    pub normal_class: Option<u8>,
    /// Output format of the per-image scores.
    #[arg(long, value_enum, default_value_t = ScoreFormat::Csv)]
    pub format: ScoreFormat,
    /// Write the scores here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Weight of the gradient term in the score. A threshold stored with the model applies
    /// only to the beta it was calibrated for (the default unless trained with another).
    #[arg(long, default_value_t = DEFAULT_BETA)]
    pub beta: f64,
    /// Decide `anomalous` at this anomaly-score threshold instead of the model's.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Also write, for image i, DIR/NNNNNN.recon.png (its reconstruction at the model's
    /// 28x28, grey or RGB) and DIR/NNNNNN.error.png (the per-pixel error |x - x'|, the largest
    /// over the channels, as grey: white is an error of 1).
    #[arg(long, value_name = "DIR")]
    pub reconstructions: Option<PathBuf>,
}

/// Images to score: files and folders, and how they are fitted to the model's input.
#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// Images: files and folders of PNG, JPEG, IDX or CIFAR-10 images.
    #[arg(required = true, value_name = "IMAGES", long_help = SCORE_IMAGES_HELP)]
    pub paths: Vec<PathBuf>,
    /// How non-square images become the model's square input: stretch, crop or pad.
    #[arg(long, value_enum, default_value_t = FitArg::Stretch, long_help = FIT_HELP)]
    pub fit: FitArg,
}

/// The fit modes of `detector::data::Fit`, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FitArg {
    #[default]
    Stretch,
    Crop,
    Pad,
}

impl FitArg {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        Fit::from(self).name()
    }
}

impl From<FitArg> for Fit {
    fn from(f: FitArg) -> Self {
        match f {
            FitArg::Stretch => Fit::Stretch,
            FitArg::Crop => Fit::Crop,
            FitArg::Pad => Fit::Pad,
        }
    }
}

/// Which files of a folder are read, and how they become the model's input (the rules of
/// `detector::data::files`), for the help of `train --images` and `score IMAGES`.
macro_rules! files_help {
    () => {
        "A file given by name is read whatever its name, its format told by its first bytes \
(PNG, JPEG, IDX images plain or gzipped, else a CIFAR-10 batch; a .bin file is always \
CIFAR-10). A folder is read recursively, its files in the byte order of their relative paths; \
in it, names starting with '.' (hidden files and folders) are skipped, symbolic links are \
skipped (not followed), and files are taken by their extension, in any case: *-idx3-ubyte, \
*.idx, *.idx3 (each also .gz), *.bin, *.png, *.jpg, *.jpeg; other files are skipped, and one \
line on stderr says what was skipped.

Channels: PNG and JPEG images are converted to the model's channels (RGB to grey by PIL's \
luma, (19595 R + 38470 G + 7471 B + 2^15) >> 16; grey to RGB by copying it to each channel; \
CMYK and YCCK JPEGs become RGB first); IDX files (grey) and CIFAR-10 batches (RGB) must match \
the model's channels. Every image is then brought to 28x28 by --fit and PIL's Lanczos resize."
    };
}

const TRAIN_IMAGES_HELP: &str = concat!(
    "Train on your own images instead of --dataset: files and folders of PNG, JPEG, IDX or \
CIFAR-10 images, for a model of --channels channels, fitted by --fit.

Validation: round(--val-fraction x N) of the N images are held out, drawn by a shuffle seeded \
with --seed (the protocol's hold-out draw), not by file order; both parts keep the files' \
order.

",
    files_help!()
);

const SCORE_IMAGES_HELP: &str = concat!(
    "Images to score: files and folders of PNG, JPEG, IDX or CIFAR-10 images, scored in the \
order they are read (one CSV row or JSON entry each).

",
    files_help!()
);

/// The fit modes, for the help of `--fit` (the rules of `detector::data::fit`).
const FIT_HELP: &str = "How an image that is not square becomes the model's square input, \
before PIL's Lanczos resize to 28x28. With d the difference between its height and width:

stretch (the default): the whole image is resized; its aspect ratio is not kept.

crop: the centred square is kept: floor(d/2) rows (or columns) are cut from the top (left) and \
the rest, one more when d is odd, from the bottom (right).

pad: the image is put on a black (0) square of its longer side: floor(d/2) rows (or columns) \
of black above (left of) it and the rest, one more when d is odd, below (right of) it. The \
square may be at most 4096x4096.";

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: OptionalDataArgs,
    /// The trained model (.gcm or .safetensors).
    #[arg(long, short)]
    pub model: PathBuf,
    /// The normal class the model was trained on (with --dataset: its protocol test split).
    #[arg(long)]
    pub class: Option<u8>,
    /// Seed of the split (must be the one the model was trained with to avoid leakage).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Normal test images: files and folders (as `score` reads them), instead of --dataset.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["dataset", "class"], requires = "abnormal_dir")]
    pub normal_dir: Vec<PathBuf>,
    /// Anomalous test images: files and folders, with --normal-dir.
    #[arg(long, value_name = "PATH", requires = "normal_dir")]
    pub abnormal_dir: Vec<PathBuf>,
    /// How non-square images of --normal-dir and --abnormal-dir become the model's input.
    #[arg(long, value_enum, default_value_t = FitArg::Stretch, long_help = FIT_HELP)]
    pub fit: FitArg,
    /// Weight of the gradient term in the score.
    #[arg(long, default_value_t = DEFAULT_BETA)]
    pub beta: f64,
    /// Decide at this anomaly-score threshold instead of the model's.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Write every test image's result here as CSV: path,index,truth, then the columns of
    /// `score` (truth is 1 for an anomalous image).
    #[arg(long, value_name = "FILE")]
    pub per_image: Option<PathBuf>,
    /// Also write a report page, DIR/index.html (ROC curves, histograms, training curves,
    /// the most and least anomalous images).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProtocolArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Folder for checkpoints and per-class results; rerunning resumes from it.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Classes to run (default: all ten).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u8>>,
    /// Weight of the gradient term in the score.
    #[arg(long, default_value_t = DEFAULT_BETA)]
    pub beta: f64,
    #[command(flatten)]
    pub train: TrainOptions,
    /// Also write the results as JSON here (always written to `<out>/results.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Start over: retrain the classes whose results or checkpoints in --out were written
    /// with other options or data.
    #[arg(long)]
    pub fresh: bool,
    /// Also write a report page, DIR/index.html: a summary, and per class the ROC curves,
    /// score histograms with the threshold, training curves, and the most and least anomalous
    /// test images. Not pinned.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Also score, at each of these epochs (1 to --epochs), the model the protocol would
    /// select if training stopped there (lowest validation loss so far; the epoch's own model
    /// with --val-fraction 0; after an early stop by --patience, the stopped model, marked
    /// "stopped"), in the same run: the three AUROCs per class and budget go to the results
    /// and the report (AUROC against epochs). An evaluation option: not pinned, but a resumed
    /// or reused class must have evaluated them already.
    #[arg(long, value_delimiter = ',', value_name = "EPOCHS")]
    pub eval_at: Vec<usize>,
    /// Write only the classes' own files in --out (class_C.json and class_C.gcm; no results.json):
    /// for classes run as separate jobs into one folder, combined afterwards by
    /// `gradcon merge DIR`.
    #[arg(long)]
    pub shard: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The protocol folder holding the class results (class_C.json).
    pub dir: PathBuf,
    /// Also write the combined results as JSON here (always written to `<dir>/results.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SeedsArgs {
    /// Protocol folders (two or more) of runs that differ only in --seed; each folder's
    /// finished classes are read as `gradcon merge` reads them.
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Compare the runs after this many epochs: a run of that many, or a longer run's
    /// --eval-at evaluation at it (default: the runs' common --epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Also write the spread as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained page with the tables to DIR/index.html.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The model to export.
    #[arg(long, short)]
    pub model: PathBuf,
    /// The .safetensors file to write.
    #[arg(long, short)]
    pub out: PathBuf,
    /// For PyTorch's strict `load_state_dict`: --out holds the 16 parameters alone, and the
    /// reference gradients with their count (and the decision threshold, in its metadata) go
    /// to NAME.ref_grad.safetensors beside it.
    #[arg(long)]
    pub torch: bool,
    /// With --torch: prefix every parameter name with `module.`, as the authors' scripts save
    /// an nn.DataParallel model.
    #[arg(long, requires = "torch")]
    pub data_parallel: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image channels (1 or 3).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Timed training steps.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Images scored.
    #[arg(long, default_value_t = 2048)]
    pub images: usize,
    /// Images per timed training step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Single-image calls timed for the latency figures (each scores a batch of one).
    #[arg(long, default_value_t = 10_000)]
    pub calls: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

impl TrainOptions {
    /// The training configuration these options describe; `default_restarts` applies when
    /// `--restarts` is not given (5 in `protocol` and `demo`, 0 in `train`).
    pub fn config(&self, default_restarts: usize) -> TrainConfig {
        TrainConfig {
            alpha: self.alpha,
            lr: self.lr,
            batch_size: self.batch,
            epochs: self.epochs,
            patience: self.patience,
            val_fraction: self.val_fraction,
            seed: self.seed,
            restarts: self.restarts.unwrap_or(default_restarts),
            shuffle: !self.no_shuffle,
            saturation: SaturationRule {
                check_until: self.sat_until,
                max_spread: self.sat_spread,
                max_sigmoid_derivative: self.sat_derivative,
                max_relative_change: self.sat_stall,
                ..SaturationRule::default()
            },
            remedy: self.remedy.into(),
            select_every: self.select_every,
        }
    }
}
