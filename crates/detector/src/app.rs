//! The `gradcon` commands: what each subcommand does with its parsed arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{write_atomic, Checkpoint};
use crate::cli::{
    BenchArgs, Cli, Command, DataArgs, DemoArgs, EvalArgs, ExportArgs, ProtocolArgs, ScoreArgs,
    ScoreFormat, TrainArgs,
};
use crate::data::{
    idx::{read_idx_images, read_idx_labels},
    png::read_png,
    read_cifar_batch, resolve_data_dir, Dataset,
};
use crate::gradcon::Scores;
use crate::model::{GradConModel, IMAGE_SIDE};
use crate::protocol::{
    mean_aurocs, run_class, score_images, table, Aurocs, DatasetKind, Pool, ProtocolResult,
};
use crate::saturation::Saturated;
use crate::train::{train, EpochRecord, Init, Observer, TrainConfig, TrainedModel};
use crate::weights::GradConWeights;
use crate::{Error, Result};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(t) = cli.global.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| Error::invalid("--threads", e.to_string()))?;
    }
    let quiet = cli.global.quiet;
    // The command runs on a worker of the thread pool: each parallel kernel then starts on the
    // calling thread at once and the other workers steal from it, instead of every kernel being
    // handed to sleeping workers while the main thread waits.
    rayon::scope(move |_| match cli.command {
        Command::Demo(a) => demo(a, quiet),
        Command::Train(a) => train_cmd(a, quiet),
        Command::Score(a) => score_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Protocol(a) => protocol_cmd(a, quiet),
        Command::Export(a) => export_cmd(a),
        Command::Bench(a) => bench_cmd(a),
    })
}

/// Progress on stderr: a bar over each epoch's batches, a line per epoch, restarts.
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    quiet: bool,
    started: Instant,
    images: usize,
}

impl Progress {
    fn new(label: impl Into<String>, quiet: bool) -> Self {
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

fn data_dir(d: &DataArgs) -> Result<PathBuf> {
    resolve_data_dir(d.data_dir.as_deref())
}

/// The shipped sample, found from the source tree of this crate.
fn shipped_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample")
}

fn demo(a: DemoArgs, quiet: bool) -> Result<()> {
    let dir = a.data_dir.unwrap_or_else(shipped_sample);
    let config = TrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        restarts: 5,
        ..TrainConfig::default()
    };
    let out = std::env::temp_dir().join(format!("gradcon-demo-{}", std::process::id()));
    let result = run_protocol(
        DatasetKind::FashionMnist,
        &dir,
        &out,
        &(0..10).collect::<Vec<_>>(),
        &config,
        0.12,
        quiet,
    );
    let _ = std::fs::remove_dir_all(&out);
    let result = result?;
    print!("{}", table(&result));
    println!("wall time {:.1} s", result.wall_seconds);
    if let Some(path) = a.json {
        write_json(&path, &result)?;
    }
    Ok(())
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("plain data");
    write_atomic(path, text.as_bytes())
}

/// Runs every class in `classes` into `out` and collects the results.
pub fn run_protocol(
    kind: DatasetKind,
    dir: &Path,
    out: &Path,
    classes: &[u8],
    config: &TrainConfig,
    beta: f64,
    quiet: bool,
) -> Result<ProtocolResult> {
    let started = Instant::now();
    let pool = Pool::load(kind, dir)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "create folder", e))?;
    let mut rows = Vec::new();
    for &c in classes {
        if c > 9 {
            return Err(Error::invalid(
                "protocol",
                format!("class {c} (0-9 expected)"),
            ));
        }
        let mut progress = Progress::new(format!("class {c}"), quiet);
        let r = run_class(&pool, c, config, beta, out, &mut progress)?;
        if !quiet {
            eprintln!(
                "class {c}: AUROC GradCon {:.4}, recon {:.4}, grad {:.4} ({} restarts, {:.1} s)",
                r.auroc.gradcon, r.auroc.recon, r.auroc.grad, r.restarts, r.seconds
            );
        }
        rows.push(r);
    }
    Ok(ProtocolResult {
        engine: format!("gradcon-rs {}", env!("CARGO_PKG_VERSION")),
        dataset: kind,
        config: config.clone(),
        beta,
        threads: rayon::current_num_threads(),
        mean: mean_aurocs(&rows),
        total_restarts: rows.iter().map(|r| r.restarts).sum(),
        classes: rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

fn protocol_cmd(a: ProtocolArgs, quiet: bool) -> Result<()> {
    let dir = data_dir(&a.data)?;
    let classes = a.classes.clone().unwrap_or_else(|| (0..10).collect());
    let config = a.train.config(5);
    let result = run_protocol(
        a.data.dataset.into(),
        &dir,
        &a.out,
        &classes,
        &config,
        a.beta,
        quiet,
    )?;
    print!("{}", table(&result));
    write_json(&a.out.join("results.json"), &result)?;
    if let Some(path) = &a.json {
        write_json(path, &result)?;
    }
    Ok(())
}

/// Reads a model from a `.safetensors` file or the project's own model/checkpoint file.
pub fn load_model(path: &Path) -> Result<TrainedModel> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        Ok(GradConWeights::load_safetensors(path)?.into())
    } else {
        TrainedModel::from_checkpoint(&Checkpoint::read(path)?)
    }
}

/// Reads images to score: PNG files, CIFAR-10 batches (`.bin`) or IDX image files, as a data
/// set of `channels x 28 x 28` images (resized with PIL's Lanczos when another size).
pub fn load_images(paths: &[PathBuf], channels: usize) -> Result<Dataset> {
    let mut all: Option<Dataset> = None;
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let d = match ext {
            "png" | "PNG" => {
                let img = read_png(path, channels)?;
                Dataset::new(img.pixels, vec![0], img.channels, img.height, img.width)?
            }
            "bin" => read_cifar_batch(path)?,
            _ => {
                let idx = read_idx_images(path)?;
                let n = idx.count;
                Dataset::new(idx.pixels, vec![0; n], 1, idx.rows, idx.cols)?
            }
        };
        if d.channels() != channels {
            return Err(Error::format(
                path.display().to_string(),
                format!("{} channels, but the model takes {channels}", d.channels()),
            ));
        }
        let d = if (d.height(), d.width()) != (IMAGE_SIDE, IMAGE_SIDE) {
            d.resized(IMAGE_SIDE, IMAGE_SIDE)?
        } else {
            d
        };
        all = Some(match all {
            None => d,
            Some(a) => a.concat(&d)?,
        });
    }
    all.ok_or_else(|| Error::invalid("score", "no images given"))
}

/// Training data of `gradcon train`: the protocol's split for a class, or an image file.
fn train_cmd(a: TrainArgs, quiet: bool) -> Result<()> {
    // The model and its checkpoint go in the folder of --out: made now, not found missing
    // when the first epoch's checkpoint is written.
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    }
    let config = a.train.config(0);
    let (train_set, val_set, stream) = match &a.images {
        Some(path) => {
            let d = load_images(std::slice::from_ref(path), a.channels)?;
            let n_val = (config.val_fraction * d.len() as f64).round() as usize;
            let idx: Vec<usize> = (0..d.len()).collect();
            (d.take(&idx[n_val..])?, d.take(&idx[..n_val])?, 0)
        }
        None => {
            let (Some(kind), Some(class)) = (a.data.dataset, a.class) else {
                return Err(Error::invalid(
                    "train",
                    "give --dataset and --class, or --images".to_string(),
                ));
            };
            let dir = resolve_data_dir(a.data.data_dir.as_deref())?;
            let pool = Pool::load(kind.into(), &dir)?;
            let s = pool.split(class, config.val_fraction, config.seed);
            (
                pool.images.take(&s.train)?,
                pool.images.take(&s.val)?,
                class as u64,
            )
        }
    };
    let init = match &a.init {
        Some(p) => Init::From(load_model(p)?),
        None => Init::Seeded,
    };
    let ckpt = a.out.with_extension("ckpt");
    let mut progress = Progress::new("train", quiet);
    let state = train(
        &config,
        &train_set,
        &val_set,
        stream,
        &init,
        Some(&ckpt),
        &mut progress,
    )?;
    let model = state.selected();
    if a.out.extension().is_some_and(|e| e == "safetensors") {
        GradConWeights::from(&model).save_safetensors(&a.out)?;
    } else {
        model.to_checkpoint().write_atomic(&a.out)?;
    }
    if !quiet {
        eprintln!(
            "wrote {} (epoch {}, {} restarts)",
            a.out.display(),
            state.selected_epoch(),
            state.attempt
        );
    }
    Ok(())
}

fn score_cmd(a: ScoreArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let images = load_images(&a.images, model.model.channels)?;
    let idx: Vec<usize> = (0..images.len()).collect();
    let scores = score_images(&model, &images, &idx, a.beta, 64)?;
    let aurocs = match (&a.labels, a.normal_class) {
        (Some(path), Some(c)) => {
            let labels = read_idx_labels(path)?;
            if labels.len() != scores.len() {
                return Err(Error::format(
                    path.display().to_string(),
                    format!("{} labels for {} images", labels.len(), scores.len()),
                ));
            }
            let normal: Vec<bool> = labels.iter().map(|&l| l == c).collect();
            Some(Aurocs::of(&scores, &normal)?)
        }
        (None, None) => None,
        _ => {
            return Err(Error::invalid(
                "score",
                "--labels and --normal-class go together",
            ))
        }
    };
    let text = render_scores(&scores, aurocs.as_ref(), a.format);
    match &a.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("<stdout>", "write", e))?,
    }
    if let (Some(au), ScoreFormat::Csv) = (aurocs, a.format) {
        eprintln!(
            "AUROC GradCon {:.4}, recon {:.4}, grad {:.4}",
            au.gradcon, au.recon, au.grad
        );
    }
    Ok(())
}

fn render_scores(s: &Scores, aurocs: Option<&Aurocs>, format: ScoreFormat) -> String {
    match format {
        ScoreFormat::Csv => {
            let mut out = String::from("index,gradcon,recon,grad\n");
            for i in 0..s.len() {
                out += &format!("{i},{},{},{}\n", s.gradcon[i], s.recon[i], s.grad[i]);
            }
            out
        }
        ScoreFormat::Json => {
            let v = serde_json::json!({
                "gradcon": s.gradcon, "recon": s.recon, "grad": s.grad, "auroc": aurocs,
            });
            serde_json::to_string_pretty(&v).expect("plain data") + "\n"
        }
    }
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let dir = data_dir(&a.data)?;
    let pool = Pool::load(a.data.dataset.into(), &dir)?;
    let split = pool.split(a.class, 0.1, a.seed);
    let scores = score_images(&model, &pool.images, &split.test, a.beta, 64)?;
    let au = Aurocs::of(&scores, &split.test_is_normal)?;
    println!(
        "class {}: {} test images, AUROC GradCon {:.4}, recon {:.4}, grad {:.4}",
        a.class,
        split.test.len(),
        au.gradcon,
        au.recon,
        au.grad
    );
    Ok(())
}

fn export_cmd(a: ExportArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    GradConWeights::from(&model).save_safetensors(&a.out)
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    use core_tensor::Rng;
    if a.channels != 1 && a.channels != 3 {
        return Err(Error::invalid("bench", "--channels is 1 or 3"));
    }
    let mut rng = Rng::seed_from_u64(0);
    let side = IMAGE_SIDE;
    let batch: Vec<u8> = (0..64 * a.channels * side * side)
        .map(|_| rng.below(256) as u8)
        .collect();
    let data = Dataset::new(batch, vec![0; 64], a.channels, side, side)?;
    let idx: Vec<usize> = (0..64).collect();
    let x = data.batch_tensor(&idx)?;
    let config = TrainConfig::default();
    let mut state = crate::train::TrainState::fresh(&config, a.channels, 0, 0, &Init::Seeded);
    for _ in 0..3 {
        state.step(&x)?; // warm-up; from the second step on the double backward runs
    }
    let mut times = Vec::with_capacity(a.steps);
    for _ in 0..a.steps {
        let t = Instant::now();
        state.step(&x)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let step_ms = times[times.len() / 2];
    let model = state.selected();
    let n = a.images.max(64);
    let many: Vec<usize> = (0..n).map(|i| i % 64).collect();
    score_images(&model, &data, &idx, 0.12, 64)?;
    let t = Instant::now();
    score_images(&model, &data, &many, 0.12, 64)?;
    let imgs_per_s = n as f64 / t.elapsed().as_secs_f64();
    let threads = rayon::current_num_threads();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "engine": "gradcon-rs", "threads": threads, "channels": a.channels,
                "train_step_ms": step_ms, "score_imgs_per_s": imgs_per_s,
                "params": GradConModel::init(a.channels, &mut Rng::seed_from_u64(0)).num_params(),
            })
        );
    } else {
        println!(
            "threads {threads}, channels {}: training step {step_ms:.2} ms (median of {}), \
             scoring {imgs_per_s:.0} images/s",
            a.channels, a.steps
        );
    }
    Ok(())
}
