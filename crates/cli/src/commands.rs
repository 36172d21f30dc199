//! The `gradcon` commands: what each subcommand does with its parsed arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use detector::data::{
    collect_files, idx::read_idx_labels, load_files, resolve_data_dir, Dataset, Fit, ImageSource,
    ImageStream, LoadedImages,
};
use detector::eval::protocol::{run_protocol, table, Aurocs, DatasetKind, Pool, ProtocolOptions};
use detector::eval::split::holdout_split;
use detector::eval::threshold::AtThreshold;
use detector::io::fs::{remove_if_present, remove_stale_temporaries, write_atomic, OutputLock};
use detector::io::safetensors::StateDict;
use detector::model::{Autoencoder, IMAGE_SIDE};
use detector::train::TrainState;
use detector::{Detector, Error, Image, Result, Score, TrainConfig, Trainer};

use crate::args::{
    BenchArgs, Cli, Command, DataArgs, DemoArgs, EvalArgs, ExportArgs, ImageArgs, MergeArgs,
    OptionalDataArgs, ProtocolArgs, ScoreArgs, ScoreFormat, SeedsArgs, TrainArgs,
};
use crate::progress::{Progress, ProtocolProgress, Verbosity};
use crate::report;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    cli.validate()?;
    detector::io::fs::Limits {
        max_file_bytes: cli.global.max_file_mb.saturating_mul(1 << 20),
        max_pixels: cli.global.max_megapixels.saturating_mul(1 << 20),
    }
    .install()?;
    if let Some(t) = cli.global.threads {
        detector::parallel::check_threads(t)?;
        let workers = detector::parallel::workers_for(t);
        if workers < t && !cli.global.quiet {
            eprintln!(
                "--threads {t}: this machine runs {workers} threads at once; using {workers}"
            );
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build_global()
            .map_err(|e| Error::invalid("--threads", e.to_string()))?;
    }
    let show = Verbosity {
        quiet: cli.global.quiet,
        epoch_lines: cli.global.epoch_lines,
    };
    // The command runs on a worker of the thread pool: each parallel kernel then starts on the
    // calling thread at once and the other workers steal from it, instead of every kernel being
    // handed to sleeping workers while the main thread waits.
    rayon::scope(move |_| match cli.command {
        Command::Demo(a) => demo(a, show),
        Command::Train(a) => train_cmd(a, show),
        Command::Score(a) => score_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Protocol(a) => protocol_cmd(a, show),
        Command::Merge(a) => merge_cmd(a),
        Command::Seeds(a) => seeds_cmd(a),
        Command::Export(a) => export_cmd(a),
        Command::Bench(a) => bench_cmd(a),
    })
}

fn data_dir(d: &DataArgs) -> Result<PathBuf> {
    resolve_data_dir(d.data_dir.as_deref())
}

/// The shipped sample, found from the source tree of this crate.
fn shipped_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample")
}

fn demo(a: DemoArgs, show: Verbosity) -> Result<()> {
    let dir = a.data_dir.unwrap_or_else(shipped_sample);
    let config = TrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        restarts: 5,
        ..TrainConfig::default()
    };
    remove_stale_demo_folders();
    let out = std::env::temp_dir().join(format!("{DEMO_PREFIX}{}", std::process::id()));
    let result = run_protocol(
        DatasetKind::FashionMnist,
        &dir,
        &out,
        &(0..10).collect::<Vec<_>>(),
        &config,
        ProtocolOptions::default(),
        &mut ProtocolProgress::new(show, config.epochs),
    );
    // The report reads each class's model from the temporary folder: before it goes.
    let report = match (&result, &a.report) {
        (Ok(r), Some(report_dir)) => Some(protocol_report(
            DatasetKind::FashionMnist,
            &dir,
            &out,
            r,
            report_dir,
            "gradcon demo: the shipped Fashion-MNIST sample",
        )),
        _ => None,
    };
    let _ = std::fs::remove_dir_all(&out);
    let result = result?;
    if let Some(written) = report {
        eprintln!("wrote {}", written?.display());
    }
    print!("{}", table(&result));
    println!("wall time {:.1} s", result.wall_seconds);
    if let Some(path) = a.json {
        write_json(&path, &result)?;
    }
    Ok(())
}

/// Temporary folders of `demo` are named this and the process id.
const DEMO_PREFIX: &str = "gradcon-demo-";

/// Removes the temporary folders of interrupted demos: those whose process is gone (on Linux,
/// where `/proc` tells; elsewhere they are left).
fn remove_stale_demo_folders() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DEMO_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("plain data");
    write_atomic(path, text.as_bytes())
}

fn protocol_cmd(a: ProtocolArgs, show: Verbosity) -> Result<()> {
    let dir = data_dir(&a.data)?;
    let classes = a.classes.clone().unwrap_or_else(|| (0..10).collect());
    let config = a.train.config(5);
    let result = run_protocol(
        a.data.dataset.into(),
        &dir,
        &a.out,
        &classes,
        &config,
        ProtocolOptions {
            beta: a.beta,
            fresh: a.fresh,
            eval_at: a.eval_at.clone(),
        },
        &mut ProtocolProgress::new(show, config.epochs),
    )?;
    print!("{}", table(&result));
    if a.shard {
        if !show.quiet {
            eprintln!(
                "wrote the class files only (--shard); combine the folder's classes with \
                 `gradcon merge {}`",
                a.out.display()
            );
        }
    } else {
        write_json(&a.out.join("results.json"), &result)?;
    }
    if let Some(path) = &a.json {
        write_json(path, &result)?;
    }
    if let Some(report_dir) = &a.report {
        let kind = DatasetKind::from(a.data.dataset);
        let title = format!("gradcon protocol: {}", kind.name());
        let written = protocol_report(kind, &dir, &a.out, &result, report_dir, &title)?;
        eprintln!("wrote {}", written.display());
    }
    Ok(())
}

fn merge_cmd(a: MergeArgs) -> Result<()> {
    let result = detector::eval::merge::merge(&a.dir)?;
    print!("{}", table(&result));
    write_json(&a.dir.join("results.json"), &result)?;
    if let Some(path) = &a.json {
        write_json(path, &result)?;
    }
    Ok(())
}

fn seeds_cmd(a: SeedsArgs) -> Result<()> {
    let mut runs = Vec::with_capacity(a.dirs.len());
    for dir in &a.dirs {
        runs.push((
            dir.display().to_string(),
            detector::eval::merge::merge(dir)?,
        ));
    }
    let spread = detector::eval::seeds::seed_spread(&runs, a.epochs)?;
    print!("{}", detector::eval::seeds::table(&spread));
    if let Some(path) = &a.json {
        write_json(path, &spread)?;
    }
    if let Some(dir) = &a.report {
        let page = report::write_seeds_report(dir, &spread)?;
        eprintln!("wrote {}", page.display());
    }
    Ok(())
}

/// Examples shown at each end (most anomalous, most normal) in a report's section.
const REPORT_EXAMPLES: usize = 4;

/// The protocol's report: a summary and a section per class, from the class models in `out`.
fn protocol_report(
    kind: DatasetKind,
    data_dir: &Path,
    out: &Path,
    result: &detector::eval::ProtocolResult,
    report_dir: &Path,
    title: &str,
) -> Result<PathBuf> {
    let pool = Pool::load(kind, data_dir)?;
    let sections = report::protocol_sections(&pool, result, out, REPORT_EXAMPLES)?;
    report::write_report(report_dir, title, Some(result), &sections)
}

/// Reads the images to score (files and folders; see `gradcon score --help`) as a data set of
/// `channels x 28 x 28` images, in the order they are read.
pub fn load_images(images: &ImageArgs, channels: usize) -> Result<Dataset> {
    Ok(read_images(&images.paths, images.fit.into(), channels)?.images)
}

/// Files and folders of images, loaded by `detector::data::files` at the model's size; what
/// the folders held that was skipped is said on one line of stderr; no image at all is an
/// error naming the paths.
fn read_images(paths: &[PathBuf], fit: Fit, channels: usize) -> Result<LoadedImages> {
    load_files(&image_files(paths)?, channels, IMAGE_SIDE, fit)
}

/// The data set, class and data folder of `--dataset` and `--class`, or a usage error naming
/// `--class` with what else would do (`expected`).
fn dataset_class(
    data: &OptionalDataArgs,
    class: Option<u8>,
    expected: &'static str,
) -> Result<(DatasetKind, u8, PathBuf)> {
    let (Some(kind), Some(class)) = (data.dataset, class) else {
        return Err(Error::InvalidOption {
            option: "class",
            value: "(missing)".into(),
            expected,
        });
    };
    let kind = DatasetKind::from(kind);
    kind.check_class(class)?;
    Ok((kind, class, resolve_data_dir(data.data_dir.as_deref())?))
}

/// `--out` of `train`: a file to write, not a folder and not the checkpoint's own name.
fn check_train_out(out: &Path) -> Result<()> {
    let bad = |expected: &'static str| {
        Err(Error::InvalidOption {
            option: "out",
            value: out.display().to_string(),
            expected,
        })
    };
    let text = out.as_os_str().to_string_lossy();
    if out.is_dir() || text.ends_with('/') || out.file_name().is_none() {
        return bad("a file name, not a folder");
    }
    if out.extension().is_some_and(|e| e == "ckpt") {
        return bad(
            "a name not ending in .ckpt (the checkpoint is written beside the model as NAME.ckpt)",
        );
    }
    Ok(())
}

/// Training data of `gradcon train`: the protocol's split for a class, or your own images
/// with `round(val_fraction * n)` of them held out by the protocol's seeded hold-out draw
/// (both parts in the files' order); with the stream of the seeded generators and the source
/// as the pin records it.
fn train_data(a: &TrainArgs, config: &TrainConfig) -> Result<(Dataset, Dataset, u64, String)> {
    if !a.images.is_empty() {
        let fit = a.fit.unwrap_or_default().into();
        let d = read_images(&a.images, fit, a.channels)?.images;
        let mut s = holdout_split(&vec![0; d.len()], &[], 0, config.val_fraction, config.seed);
        s.train.sort_unstable();
        s.val.sort_unstable();
        let names: Vec<String> = a.images.iter().map(|p| p.display().to_string()).collect();
        return Ok((d.take(&s.train)?, d.take(&s.val)?, 0, names.join(", ")));
    }
    let (kind, class, dir) =
        dataset_class(&a.data, a.class, "--dataset with --class, or --images")?;
    let pool = Pool::load(kind, &dir)?;
    let s = pool.split(class, config.val_fraction, config.seed);
    Ok((
        pool.images.take(&s.train)?,
        pool.images.take(&s.val)?,
        u64::from(class),
        format!("{} class {class}", kind.name()),
    ))
}

fn train_cmd(a: TrainArgs, show: Verbosity) -> Result<()> {
    check_train_out(&a.out)?;
    let config = a.train.config(0);
    config.validate()?;
    // The model and its checkpoint go in the folder of --out: made now, not found missing
    // when the first epoch's checkpoint is written.
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    }
    let (train_set, val_set, stream, source) = train_data(&a, &config)?;
    let ckpt = a.out.with_extension("ckpt");
    let _lock = OutputLock::acquire(&a.out)?;
    remove_stale_temporaries(&ckpt)?;
    let mut trainer = Trainer::new(config)?
        .stream(stream)
        .source(source)
        .checkpoint(&ckpt)
        .decision(a.beta, a.fpr)?;
    if let Some(p) = &a.init {
        trainer = trainer.init_from(Detector::load(p)?);
    }
    if a.fresh {
        remove_if_present(&ckpt)?;
    } else if !ckpt.exists()
        && a.out.exists()
        && up_to_date(&a.out, &trainer.pin(&train_set, &val_set))?
    {
        if !show.quiet {
            eprintln!(
                "{} is up to date: trained with these options and images",
                a.out.display()
            );
        }
        return Ok(());
    }
    let mut progress = Progress::new("train", show, trainer.config().epochs);
    let trained = trainer.fit(&train_set, &val_set, &mut progress)?;
    trained
        .detector
        .check_finite(&a.out.display().to_string())?;
    trained.detector.save(&a.out)?;
    if !a.keep_checkpoint {
        remove_if_present(&ckpt)?;
    }
    if !show.quiet {
        eprintln!(
            "wrote {} (epoch {}, {} restarts)",
            a.out.display(),
            trained.selected_epoch,
            trained.restarts()
        );
    }
    Ok(())
}

/// Whether the finished model at `out` was trained with `pin` (its checkpoint is gone);
/// an error naming the differences when it was trained otherwise.
fn up_to_date(out: &Path, pin: &detector::train::Pin) -> Result<bool> {
    let previous = Detector::load(out)?;
    let pinned = |differences: Vec<String>| Error::Pinned {
        file: out.display().to_string(),
        differences,
    };
    let Some(p) = previous.provenance() else {
        return Err(pinned(vec![
            "it records no training options (an export, or a file of an older version)".into(),
        ]));
    };
    let differences = p.pin.differences(pin);
    if !differences.is_empty() {
        return Err(pinned(differences));
    }
    match p.pin.epochs_change(pin) {
        None => Ok(true),
        Some((was, now)) => Err(pinned(vec![format!(
            "--epochs was {was}, now {now}: its checkpoint was removed when it finished, so \
             it cannot be extended (--keep-checkpoint keeps one)"
        )])),
    }
}

/// Images scored per batch read by `score`: memory holds one batch, whatever the input's size.
const SCORE_STREAM_BATCH: usize = 4096;

fn score_cmd(a: ScoreArgs) -> Result<()> {
    let mut model = Detector::load(&a.model)?;
    model.set_settings(detector::ScoreSettings {
        beta: a.beta,
        threshold: a.threshold,
        ..model.settings()
    })?;
    decision_notes(&model, &a);
    let labels = a.labels.as_deref().map(read_idx_labels).transpose()?;
    let files = image_files(&a.images.paths)?;
    let mut stream = ImageStream::new(
        &files,
        model.channels(),
        model.input_side(),
        a.images.fit.into(),
    )?;
    // The rows go to a spool file as the batches are scored, and to the output only once every
    // image is scored: an input that fails half-way leaves no partial output.
    let mut spool = Spool::new()?;
    let mut kept: Vec<Score> = Vec::new();
    let mut count = 0;
    while let Some(batch) = stream.next_batch(SCORE_STREAM_BATCH)? {
        let idx: Vec<usize> = (0..batch.images.len()).collect();
        let scores = model.score_dataset(&batch.images, &idx)?;
        if let Some(dir) = &a.reconstructions {
            write_reconstructions(&model, &batch.images, dir, count)?;
        }
        for (s, src) in scores.iter().zip(&batch.sources) {
            spool.row(&score_row(s, src, a.format, count > 0))?;
            count += 1;
        }
        if labels.is_some() {
            kept.extend(scores);
        }
    }
    let aurocs = match (&labels, a.normal_class) {
        (Some(labels), Some(c)) => {
            let path = a.labels.as_deref().expect("labels were read");
            if labels.len() != count {
                return Err(Error::format(
                    path.display().to_string(),
                    format!("{} labels for {count} images", labels.len()),
                ));
            }
            let normal: Vec<bool> = labels.iter().map(|&l| l == c).collect();
            Some(Aurocs::of(&kept, &normal)?)
        }
        (None, None) => None,
        _ => {
            return Err(Error::invalid(
                "score",
                "--labels and --normal-class go together",
            ))
        }
    };
    let (head, tail) = score_frame(aurocs.as_ref(), a.format, count);
    match &a.out {
        Some(path) => {
            let mut out = detector::io::fs::AtomicFile::create(path)?;
            let tmp = out.temporary_path().to_path_buf();
            spool
                .copy_framed(&head, &tail, &mut out)
                .map_err(|e| Error::io(&tmp, "write", e))?;
            out.commit()?;
        }
        None => spool
            .copy_framed(&head, &tail, &mut std::io::stdout().lock())
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

/// A temporary file of output rows, removed when dropped.
struct Spool {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl Spool {
    fn new() -> Result<Self> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!(".gradcon-score-rows-{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "create", e))?;
        Ok(Self {
            path,
            file: std::io::BufWriter::with_capacity(1 << 16, file),
        })
    }

    fn row(&mut self, text: &str) -> Result<()> {
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, "write", e))
    }

    /// Writes `head`, the rows and `tail` to `out`.
    fn copy_framed(&mut self, head: &str, tail: &str, out: &mut impl Write) -> std::io::Result<()> {
        use std::io::Seek;
        self.file.flush()?;
        let file = self.file.get_mut();
        file.seek(std::io::SeekFrom::Start(0))?;
        out.write_all(head.as_bytes())?;
        std::io::copy(file, out)?;
        out.write_all(tail.as_bytes())?;
        out.flush()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The files to read: files and folders as `score --help` says, with what the folders held
/// that was skipped said on one line of stderr; no image file at all is an error naming the
/// paths.
fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let list = collect_files(paths)?;
    let skipped = list.skipped.summary();
    if list.files.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::format(
            names.join(", "),
            format!(
                "no image files (PNG, JPEG, IDX, CIFAR-10) found{}",
                skipped.map_or(String::new(), |s| format!("; {s}"))
            ),
        ));
    }
    if let Some(line) = skipped {
        eprintln!("gradcon: reading {} files; {line}", list.files.len());
    }
    Ok(list.files)
}

/// The score columns of a CSV row: anomaly_score, anomalous, gradcon, recon, grad.
fn score_values(s: &Score) -> String {
    let decision = match s.anomalous {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    };
    format!(
        "{},{decision},{},{},{}",
        s.anomaly_score, s.gradcon, s.recon, s.grad
    )
}

/// One image's row of the output (`after_first`: rows before it were written).
fn score_row(s: &Score, src: &ImageSource, format: ScoreFormat, after_first: bool) -> String {
    match format {
        ScoreFormat::Csv => format!(
            "{},{},{}\n",
            csv_field(&src.path.display().to_string()),
            src.index.map_or(String::new(), |i| i.to_string()),
            score_values(s)
        ),
        ScoreFormat::Json => {
            let entry = serde_json::json!({
                "path": src.path.display().to_string(), "index": src.index,
                "anomaly_score": s.anomaly_score, "anomalous": s.anomalous,
                "gradcon": s.gradcon, "recon": s.recon, "grad": s.grad,
            });
            let text = serde_json::to_string_pretty(&entry).expect("plain data");
            let indented: Vec<String> = text.lines().map(|l| format!("    {l}")).collect();
            format!(
                "{}{}",
                if after_first { ",\n" } else { "" },
                indented.join("\n")
            )
        }
    }
}

/// What the output holds before and after its `count` rows (the tests check it against the
/// whole output rendered at once).
fn score_frame(aurocs: Option<&Aurocs>, format: ScoreFormat, count: usize) -> (String, String) {
    match format {
        ScoreFormat::Csv => (format!("{SCORE_COLUMNS}\n"), String::new()),
        ScoreFormat::Json => {
            // As a JSON value, its keys in the order a serde_json map gives them.
            let value = serde_json::to_value(aurocs).expect("plain data");
            let auroc = serde_json::to_string_pretty(&value).expect("plain data");
            let auroc = auroc.replace('\n', "\n  ");
            if count == 0 {
                (
                    format!("{{\n  \"auroc\": {auroc},\n  \"images\": []\n}}\n"),
                    String::new(),
                )
            } else {
                (
                    format!("{{\n  \"auroc\": {auroc},\n  \"images\": [\n"),
                    "\n  ]\n}\n".to_string(),
                )
            }
        }
    }
}

/// Each image's reconstruction and error map as PNG files in `dir` (see `score --help`).
fn write_reconstructions(
    model: &Detector,
    images: &Dataset,
    dir: &Path,
    first: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    let (c, side) = (model.channels(), model.input_side());
    let plane = side * side;
    let all: Vec<usize> = (0..images.len()).collect();
    for chunk in all.chunks(256) {
        let recons = model.reconstruct_dataset(images, chunk)?;
        for (&i, r) in chunk.iter().zip(&recons) {
            let x = images.image(i);
            let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            // Planes to interleaved pixels, as PNG stores them.
            let recon: Vec<u8> = (0..plane)
                .flat_map(|p| (0..c).map(move |ch| (ch, p)))
                .map(|(ch, p)| to_u8(r[ch * plane + p]))
                .collect();
            let error: Vec<u8> = (0..plane)
                .map(|p| {
                    let e = (0..c)
                        .map(|ch| (r[ch * plane + p] - f32::from(x[ch * plane + p]) / 255.0).abs())
                        .fold(0.0, f32::max);
                    to_u8(e)
                })
                .collect();
            let n = first + i;
            write_png(&dir.join(format!("{n:06}.recon.png")), side, c, &recon)?;
            write_png(&dir.join(format!("{n:06}.error.png")), side, 1, &error)?;
        }
    }
    Ok(())
}

/// An 8-bit grey (1 channel) or RGB (3) PNG of `side x side` interleaved pixels, written
/// atomically.
fn write_png(path: &Path, side: usize, channels: usize, pixels: &[u8]) -> Result<()> {
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, side as u32, side as u32);
    enc.set_color(if channels == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    enc.set_depth(png::BitDepth::Eight);
    let fail = |e: png::EncodingError| Error::invalid("png", format!("{}: {e}", path.display()));
    let mut w = enc.write_header().map_err(fail)?;
    w.write_image_data(pixels).map_err(fail)?;
    w.finish().map_err(fail)?;
    write_atomic(path, &bytes)
}

/// What `score` says on stderr about the decisions it can or cannot make.
fn decision_notes(model: &Detector, a: &ScoreArgs) {
    if !model.has_reference() {
        eprintln!(
            "gradcon: warning: {} has no reference gradients: the gradient term is zero, \
             and the score is the reconstruction term alone",
            a.model.display()
        );
    }
    match (model.calibration(), a.threshold) {
        (_, Some(_)) => {}
        (None, None) => eprintln!(
            "gradcon: note: {} stores no decision threshold (trained without validation \
             images, or exported without one): the anomalous column is empty; give --threshold",
            a.model.display()
        ),
        (Some(c), None) if c.beta != a.beta => eprintln!(
            "gradcon: warning: the stored threshold was calibrated for --beta {}, not {}: \
             it does not apply, and the anomalous column is empty (give --threshold)",
            c.beta, a.beta
        ),
        (Some(_), None) => {}
    }
}

/// The header of `score`'s CSV output (`score --help` explains the columns).
pub const SCORE_COLUMNS: &str = "path,index,anomaly_score,anomalous,gradcon,recon,grad";

/// A CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let mut model = Detector::load(&a.model)?;
    model.set_settings(detector::ScoreSettings {
        beta: a.beta,
        threshold: a.threshold,
        ..model.settings()
    })?;
    let test = eval_images(&a, model.channels())?;
    let idx: Vec<usize> = (0..test.images.len()).collect();
    let scores = model.score_dataset(&test.images, &idx)?;
    let normal: Vec<bool> = test.is_anomalous.iter().map(|a| !a).collect();
    let au = Aurocs::of(&scores, &normal)?;
    let n_anomalous = test.is_anomalous.iter().filter(|&&x| x).count();
    println!(
        "{}: {} test images ({} normal, {n_anomalous} anomalous), AUROC GradCon {:.4}, \
         recon {:.4}, grad {:.4}",
        test.title,
        scores.len(),
        scores.len() - n_anomalous,
        au.gradcon,
        au.recon,
        au.grad
    );
    let anomaly: Vec<f64> = scores.iter().map(|s| s.anomaly_score).collect();
    let at = model
        .threshold()
        .map(|t| AtThreshold::of(&anomaly, &test.is_anomalous, t));
    match &at {
        Some(m) => println!(
            "at threshold {:.5}: precision {:.4}, recall {:.4}, F1 {:.4}, false-positive \
             rate {:.4} (TP {}, FP {}, TN {}, FN {}; anomalous is positive)",
            m.threshold,
            m.precision,
            m.recall,
            m.f1,
            m.fpr,
            m.confusion.true_positives,
            m.confusion.false_positives,
            m.confusion.true_negatives,
            m.confusion.false_negatives
        ),
        None => println!("no threshold: the model stores none for --beta {}", a.beta),
    }
    if let Some(path) = &a.per_image {
        let mut csv = format!(
            "path,index,truth,{}\n",
            &SCORE_COLUMNS["path,index,".len()..]
        );
        for ((score, truth), src) in scores.iter().zip(&test.is_anomalous).zip(&test.sources) {
            csv += &format!(
                "{},{},{},{}\n",
                csv_field(&src.path.display().to_string()),
                src.index.map_or(String::new(), |i| i.to_string()),
                u8::from(*truth),
                score_values(score)
            );
        }
        write_atomic(path, csv.as_bytes())?;
    }
    if let Some(dir) = &a.report {
        let names = test.sources.iter().map(ToString::to_string).collect();
        let section = report::section_from_scores(
            &model,
            test.title.clone(),
            &test.images,
            &idx,
            scores,
            &test.is_anomalous,
            names,
            REPORT_EXAMPLES,
        )?;
        let title = format!("gradcon eval: {}", a.model.display());
        let written = report::write_report(dir, &title, None, &[section])?;
        eprintln!("wrote {}", written.display());
    }
    Ok(())
}

/// The test images of `eval`, with their truth and sources.
struct EvalImages {
    title: String,
    images: Dataset,
    is_anomalous: Vec<bool>,
    sources: Vec<ImageSource>,
}

fn eval_images(a: &EvalArgs, channels: usize) -> Result<EvalImages> {
    if !a.normal_dir.is_empty() {
        let fit = Fit::from(a.fit);
        let normal = read_images(&a.normal_dir, fit, channels)?;
        let abnormal = read_images(&a.abnormal_dir, fit, channels)?;
        let mut is_anomalous = vec![false; normal.images.len()];
        is_anomalous.extend(vec![true; abnormal.images.len()]);
        let mut sources = normal.sources;
        sources.extend(abnormal.sources);
        return Ok(EvalImages {
            title: "normal and anomalous folders".into(),
            images: normal.images.concat(&abnormal.images)?,
            is_anomalous,
            sources,
        });
    }
    let (kind, class, dir) = dataset_class(
        &a.data,
        a.class,
        "--dataset with --class, or --normal-dir with --abnormal-dir",
    )?;
    let pool = Pool::load(kind, &dir)?;
    let split = pool.split(class, 0.1, a.seed);
    let name = if kind == DatasetKind::Cifar10 {
        "cifar10"
    } else {
        kind.name()
    };
    Ok(EvalImages {
        title: format!("{name} class {class} against the other classes"),
        images: pool.images.take(&split.test)?,
        is_anomalous: split.test_is_normal.iter().map(|n| !n).collect(),
        sources: split
            .test
            .iter()
            .map(|&i| ImageSource {
                path: PathBuf::from(format!("{name} test split")),
                index: Some(i),
            })
            .collect(),
    })
}

fn export_cmd(a: ExportArgs) -> Result<()> {
    let model = Detector::load(&a.model)?;
    if !a.torch {
        return model.save(&a.out);
    }
    let (weights, refs) = StateDict::from(&model).to_torch_bytes(a.data_parallel)?;
    write_atomic(&a.out, &weights)?;
    let beside = torch_refs_path(&a.out);
    match refs {
        Some(bytes) => write_atomic(&beside, &bytes)?,
        None => eprintln!(
            "gradcon: note: {} has no reference gradients; {} is not written",
            a.model.display(),
            beside.display()
        ),
    }
    Ok(())
}

/// `NAME.ref_grad.safetensors` beside `NAME.safetensors`.
fn torch_refs_path(out: &Path) -> PathBuf {
    out.with_extension("ref_grad.safetensors")
}

/// Median and 99th percentile of the wall time of one `Detector::score` call, and the 99th
/// percentile of the process's CPU time per call (all threads), in milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
    cpu_p99: Option<f64>,
}

/// Times `calls` single-image calls (after a warm-up of a tenth of them), cycling through
/// `images`.
fn single_image_latency(model: &Detector, images: &[Image], calls: usize) -> Result<Latency> {
    use crate::measure::{process_cpu_time, quantile};
    for img in images.iter().cycle().take(calls / 10) {
        model.score(img)?;
    }
    let mut wall = Vec::with_capacity(calls);
    let mut cpu = Vec::with_capacity(calls);
    for img in images.iter().cycle().take(calls) {
        let c0 = process_cpu_time();
        let t = Instant::now();
        std::hint::black_box(model.score(img)?);
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        if let (Some(c0), Some(c1)) = (c0, process_cpu_time()) {
            cpu.push((c1 - c0).as_secs_f64() * 1e3);
        }
    }
    if wall.is_empty() {
        return Ok(Latency {
            p50: f64::NAN,
            p99: f64::NAN,
            cpu_p99: None,
        });
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok(Latency {
        p50: quantile(&wall, 0.5),
        p99: quantile(&wall, 0.99),
        cpu_p99: (!cpu.is_empty()).then(|| quantile(&cpu, 0.99)),
    })
}

/// CPU milliseconds the whole process uses per second while a loaded model waits for its next
/// call (measured over one second of sleep right after scoring).
fn idle_cpu_ms_per_s() -> Option<f64> {
    let idle = Duration::from_secs(1);
    let c0 = crate::measure::process_cpu_time()?;
    let t = Instant::now();
    std::thread::sleep(idle);
    let c1 = crate::measure::process_cpu_time()?;
    Some((c1 - c0).as_secs_f64() * 1e3 / t.elapsed().as_secs_f64())
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    use core_tensor::Rng;
    let mut rng = Rng::seed_from_u64(0);
    let side = IMAGE_SIDE;
    let count = a.batch.max(64);
    let pixels: Vec<u8> = (0..count * a.channels * side * side)
        .map(|_| rng.below(256) as u8)
        .collect();
    let data = Dataset::new(pixels, vec![0; count], a.channels, side, side)?;
    let idx: Vec<usize> = (0..64).collect();
    let x = data.batch_tensor(&(0..a.batch).collect::<Vec<_>>())?;
    let config = TrainConfig::default();
    let mut state = TrainState::fresh(&config, a.channels, 0, 0, &detector::train::Init::Seeded);
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
    let n = a.images;
    let many: Vec<usize> = (0..n).map(|i| i % 64).collect();
    model.score_dataset(&data, &idx)?;
    let t = Instant::now();
    model.score_dataset(&data, &many)?;
    let imgs_per_s = n as f64 / t.elapsed().as_secs_f64();
    let images: Vec<Image> = (0..64)
        .map(|i| Image::from_u8(a.channels, side, side, data.image(i).to_vec()))
        .collect::<detector::Result<_>>()?;
    let latency = single_image_latency(&model, &images, a.calls)?;
    let idle = idle_cpu_ms_per_s();
    let threads = rayon::current_num_threads();
    let peak_rss_mb = crate::measure::peak_rss_mb();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "engine": "gradcon-rs", "threads": threads, "channels": a.channels,
                "batch": a.batch, "train_step_ms": step_ms, "score_imgs_per_s": imgs_per_s,
                "latency_ms_p50": latency.p50, "latency_ms_p99": latency.p99,
                "latency_cpu_ms_p99": latency.cpu_p99, "latency_calls": a.calls,
                "idle_cpu_ms_per_s": idle, "peak_rss_mb": peak_rss_mb,
                "params": Autoencoder::init(a.channels, &mut Rng::seed_from_u64(0)).num_params(),
            })
        );
    } else {
        println!(
            "threads {threads}, channels {}: training step of {} images {step_ms:.2} ms (median of \
             {}), scoring {imgs_per_s:.0} images/s",
            a.channels, a.batch, a.steps
        );
        println!(
            "one image at a time ({} calls): median {:.3} ms, p99 {:.3} ms{}",
            a.calls,
            latency.p50,
            latency.p99,
            latency
                .cpu_p99
                .map(|c| format!(", on-CPU p99 {c:.3} ms"))
                .unwrap_or_default()
        );
        if let Some(idle) = idle {
            println!("idle between calls: {idle:.3} ms of CPU per second");
        }
        if let Some(mb) = peak_rss_mb {
            println!("peak resident memory {mb:.1} MiB");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole of `score`'s output at once, written out independently of the streamed
    /// pieces: the reference they are checked against.
    fn render_scores(
        s: &[Score],
        sources: &[ImageSource],
        aurocs: Option<&Aurocs>,
        format: ScoreFormat,
    ) -> String {
        let decision = |s: &Score| match s.anomalous {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        match format {
            ScoreFormat::Csv => {
                let mut out = format!("{SCORE_COLUMNS}\n");
                for (s, src) in s.iter().zip(sources) {
                    out += &format!(
                        "{},{},{},{},{},{},{}\n",
                        csv_field(&src.path.display().to_string()),
                        src.index.map_or(String::new(), |i| i.to_string()),
                        s.anomaly_score,
                        decision(s),
                        s.gradcon,
                        s.recon,
                        s.grad
                    );
                }
                out
            }
            ScoreFormat::Json => {
                let images: Vec<serde_json::Value> = s
                    .iter()
                    .zip(sources)
                    .map(|(s, src)| {
                        serde_json::json!({
                            "path": src.path.display().to_string(), "index": src.index,
                            "anomaly_score": s.anomaly_score, "anomalous": s.anomalous,
                            "gradcon": s.gradcon, "recon": s.recon, "grad": s.grad,
                        })
                    })
                    .collect();
                let v = serde_json::json!({ "images": images, "auroc": aurocs });
                serde_json::to_string_pretty(&v).expect("plain data") + "\n"
            }
        }
    }

    /// The streamed output (frame, then rows one by one) is byte for byte what rendering
    /// all the scores at once gives, in both formats, with and without AUROCs, for 0 to 3 rows.
    #[test]
    fn streamed_rows_render_like_the_whole_table() {
        let scores: Vec<Score> = [(-0.1, 0.5), (-0.25, 0.75), (-0.05, -0.2)]
            .into_iter()
            .map(|(recon, grad)| Score::new(recon, grad, 0.12).decided(Some(0.1)))
            .collect();
        let sources: Vec<ImageSource> = (0..3)
            .map(|i| ImageSource {
                path: PathBuf::from(format!("dir/a,\"{i}\".idx")),
                index: (i != 1).then_some(i),
            })
            .collect();
        let au = Aurocs {
            gradcon: 0.75,
            recon: 0.5,
            grad: 0.25,
        };
        for format in [ScoreFormat::Csv, ScoreFormat::Json] {
            for aurocs in [None, Some(&au)] {
                for n in 0..=3 {
                    let whole = render_scores(&scores[..n], &sources[..n], aurocs, format);
                    let (head, tail) = score_frame(aurocs, format, n);
                    let rows: String = (0..n)
                        .map(|i| score_row(&scores[i], &sources[i], format, i > 0))
                        .collect();
                    assert_eq!(format!("{head}{rows}{tail}"), whole, "{format:?} {n} rows");
                }
            }
        }
    }
}
