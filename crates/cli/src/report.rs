//! A self-contained HTML report of a detector on test images: ROC curves, score histograms
//! with the threshold, training curves with the restarts, and the images the model finds most
//! and least anomalous beside their reconstructions and error maps.
//!
//! The report is one file, `DIR/index.html`, written atomically: inline CSS, plots as inline
//! SVG (drawn with `plotters`' SVG backend, which needs no font files), images as
//! `data:image/png;base64,...` URIs. It loads nothing from anywhere.
//!
//! Sign convention (stated once in the report too): `anomaly score = -GradCon score`, higher is
//! more anomalous. The ROC curves detect anomalies: each term of the score is turned
//! anomaly-oriented (`-gradcon`, `-recon`, `-grad`), so the area under a curve equals
//! [`fn@detector::eval::auroc`] of the term itself with the normal images positive.
//!
//! ```no_run
//! # fn main() -> detector::Result<()> {
//! use detector::data::{load_fashion_mnist, Split};
//! use detector::Detector;
//! use gradcon_cli::report::{section_from, write_report};
//! use std::path::Path;
//!
//! let model = Detector::load("data/models/fashion-mnist-0.gcm")?;
//! let test = load_fashion_mnist(Path::new("data/fashion-mnist-sample"), Split::Test)?;
//! let indices: Vec<usize> = (0..test.len()).collect();
//! let is_anomalous: Vec<bool> = test.labels().iter().map(|&l| l != 0).collect();
//! let section = section_from(&model, "class 0", &test, &indices, &is_anomalous, vec![], 4)?;
//! let page = write_report(Path::new("report"), "Fashion-MNIST, class 0", None, &[section])?;
//! println!("wrote {}", page.display());
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use detector::data::Dataset;
use detector::eval::protocol::{Aurocs, Pool, ProtocolResult};
use detector::eval::seeds::{authors_reported, MeanSd, SeedSpread};
use detector::eval::threshold::AtThreshold;
use detector::io::fs::write_atomic;
use detector::train::EpochRecord;
use detector::{Detector, Error, Result, Score};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The sign convention, as the report states it.
pub const SIGN_CONVENTION: &str = "anomaly score = -GradCon score: higher is more anomalous";

/// Colours of the three scores, and of normal and anomalous images.
const GRADCON: RGBColor = RGBColor(31, 119, 180);
const RECON: RGBColor = RGBColor(255, 127, 14);
const GRAD: RGBColor = RGBColor(44, 160, 44);
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(214, 39, 40);
const RESTART: &str = "#b00";
const FONT: &str = "sans-serif";
/// Sizes of the plots in pixels: the ROC curves and the histograms side by side.
const ROC_W: u32 = 500;
const HIST_W: u32 = 560;
const PLOT_H: u32 = 440;

/// What the report shows of one detector on one set of test images.
#[derive(Debug, Clone)]
pub struct Section {
    /// The section's heading, e.g. `"class 0 against the other classes"`.
    pub title: String,
    /// The weight of the gradient term the scores were computed with.
    pub beta: f64,
    /// One score per test image.
    pub scores: Vec<Score>,
    /// The truth per test image.
    pub is_anomalous: Vec<bool>,
    /// A name per test image (a file path, `"test image 123"`).
    pub names: Vec<String>,
    /// AUROC of each score with the normal images positive ([`Aurocs::of`]).
    pub aurocs: Aurocs,
    /// The detector's threshold on the anomaly score, and the decisions at it.
    pub threshold: Option<f64>,
    pub at_threshold: Option<AtThreshold>,
    /// Every epoch of every training attempt (empty: the model file holds none).
    pub history: Vec<EpochRecord>,
    /// Why each restart happened (`restarts[a - 1]` started attempt `a`).
    pub restarts: Vec<String>,
    /// Epoch of the selected model within the last attempt.
    pub selected_epoch: Option<usize>,
    /// The test images with the highest anomaly scores, most anomalous first.
    pub most_anomalous: Vec<Example>,
    /// The test images with the lowest anomaly scores, most normal first.
    pub most_normal: Vec<Example>,
}

/// One test image with its reconstruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub name: String,
    pub anomaly_score: f64,
    /// The truth, and the detector's decision at its threshold (`None`: no threshold).
    pub is_anomalous: bool,
    pub decided_anomalous: Option<bool>,
    pub channels: usize,
    pub side: usize,
    /// The image and its reconstruction, `channels x side x side` values in `[0, 1]` (CHW).
    pub input: Vec<f32>,
    pub reconstruction: Vec<f32>,
}

impl Example {
    /// `|x - x'|` per pixel, the largest over the channels (`side x side`).
    pub fn error_map(&self) -> Vec<f32> {
        let plane = self.side * self.side;
        let mut err = vec![0f32; plane];
        for (i, (x, r)) in self.input.iter().zip(&self.reconstruction).enumerate() {
            let e = &mut err[i % plane];
            *e = e.max((x - r).abs());
        }
        err
    }
}

/// Scores the images of `data` at `indices` with `detector` and builds their section (see
/// [`section_from_scores`]).
pub fn section_from(
    detector: &Detector,
    title: impl Into<String>,
    data: &Dataset,
    indices: &[usize],
    is_anomalous: &[bool],
    names: Vec<String>,
    examples_per_end: usize,
) -> Result<Section> {
    let scores = detector.score_dataset(data, indices)?;
    section_from_scores(
        detector,
        title,
        data,
        indices,
        scores,
        is_anomalous,
        names,
        examples_per_end,
    )
}

/// The section of test images `data[indices]` already scored by `detector` (`scores[i]` of
/// image `indices[i]`, whose truth is `is_anomalous[i]`): the AUROCs, the decisions at the
/// detector's threshold, its training history, and the `examples_per_end` most anomalous and
/// most normal images reconstructed. `names` names each image; empty gives `"test image
/// <index>"`. The images must have the model's size (see [`Dataset::resized`]).
pub fn section_from_scores(
    detector: &Detector,
    title: impl Into<String>,
    data: &Dataset,
    indices: &[usize],
    scores: Vec<Score>,
    is_anomalous: &[bool],
    names: Vec<String>,
    examples_per_end: usize,
) -> Result<Section> {
    let n = indices.len();
    let names = if names.is_empty() {
        indices.iter().map(|i| format!("test image {i}")).collect()
    } else {
        names
    };
    if scores.len() != n || is_anomalous.len() != n || names.len() != n {
        return Err(Error::invalid(
            "report",
            format!(
                "{n} images, {} scores, {} truths and {} names: one of each per image",
                scores.len(),
                is_anomalous.len(),
                names.len()
            ),
        ));
    }
    let normal: Vec<bool> = is_anomalous.iter().map(|a| !a).collect();
    let aurocs = Aurocs::of(&scores, &normal)?;
    let threshold = detector.threshold();
    let anomaly: Vec<f64> = scores.iter().map(|s| s.anomaly_score).collect();
    let at_threshold = threshold.map(|t| AtThreshold::of(&anomaly, is_anomalous, t));
    let provenance = detector.provenance();
    let (top, bottom) = extremes(&anomaly, examples_per_end);
    let example = |picks: &[usize]| -> Result<Vec<Example>> {
        if picks.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<usize> = picks.iter().map(|&p| indices[p]).collect();
        let recon = detector.reconstruct_dataset(data, &rows)?;
        let inputs = data.batch_tensor(&rows)?;
        let per = data.image_len();
        Ok(picks
            .iter()
            .zip(recon)
            .zip(inputs.data().chunks(per))
            .map(|((&p, reconstruction), input)| Example {
                name: names[p].clone(),
                anomaly_score: anomaly[p],
                is_anomalous: is_anomalous[p],
                decided_anomalous: scores[p].anomalous,
                channels: data.channels(),
                side: data.height(),
                input: input.to_vec(),
                reconstruction,
            })
            .collect())
    };
    Ok(Section {
        title: title.into(),
        beta: detector.beta(),
        most_anomalous: example(&top)?,
        most_normal: example(&bottom)?,
        aurocs,
        threshold,
        at_threshold,
        history: provenance.map(|p| p.history.clone()).unwrap_or_default(),
        restarts: provenance.map(|p| p.restarts.clone()).unwrap_or_default(),
        selected_epoch: provenance.map(|p| p.selected_epoch),
        scores,
        is_anomalous: is_anomalous.to_vec(),
        names,
    })
}

/// Positions of the `k` highest scores (highest first) and of the `k` lowest among the rest
/// (lowest first).
fn extremes(scores: &[f64], k: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let top = k.min(order.len());
    let bottom = k.min(order.len() - top);
    let lowest = order[order.len() - bottom..]
        .iter()
        .rev()
        .copied()
        .collect();
    (order[..top].to_vec(), lowest)
}

/// One section per class of a protocol run whose model files (`class_<c>.gcm`) are in
/// `models`: each class's model on its test images of `pool` (the split of the run's
/// options), at the run's `beta`. Call it before a temporary output folder is removed.
pub fn protocol_sections(
    pool: &Pool,
    result: &ProtocolResult,
    models: &Path,
    examples_per_end: usize,
) -> Result<Vec<Section>> {
    let labels = pool.images.labels();
    result
        .classes
        .iter()
        .map(|c| {
            let mut model = Detector::load(models.join(format!("class_{}.gcm", c.class)))?;
            model.set_beta(result.beta)?;
            let split = pool.split(c.class, result.config.val_fraction, result.config.seed);
            let is_anomalous: Vec<bool> = split.test_is_normal.iter().map(|n| !n).collect();
            let names = split
                .test
                .iter()
                .map(|&i| format!("image {i} (class {})", labels[i]))
                .collect();
            section_from(
                &model,
                format!("class {} against the other classes", c.class),
                &pool.images,
                &split.test,
                &is_anomalous,
                names,
                examples_per_end,
            )
        })
        .collect()
}

/// Writes the report to `dir/index.html` (creating `dir`), atomically; returns that path.
/// `summary` adds the protocol's per-class table at the top.
pub fn write_report(
    dir: &Path,
    title: &str,
    summary: Option<&ProtocolResult>,
    sections: &[Section],
) -> Result<PathBuf> {
    let html = render_html(title, summary, sections)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    let path = dir.join("index.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// The report as one HTML document (what [`write_report`] writes).
pub fn render_html(
    title: &str,
    summary: Option<&ProtocolResult>,
    sections: &[Section],
) -> Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n\
         <p class=\"convention\"><strong>{SIGN_CONVENTION}.</strong> GradCon score = recon + \
         &beta; &middot; grad, with recon = &minus;(mean squared reconstruction error) and grad \
         = the mean cosine between the image's decoder-weight gradients and the model's \
         reference gradients; both are higher for normal images.</p>\n",
        t = escape(title)
    );
    if let Some(s) = summary {
        h += &summary_html(s)?;
    }
    if sections.len() > 1 {
        h += "<nav><h2>Sections</h2><ol>";
        for (i, s) in sections.iter().enumerate() {
            let _ = write!(h, "<li><a href=\"#s{i}\">{}</a></li>", escape(&s.title));
        }
        h += "</ol></nav>\n";
    }
    for (i, s) in sections.iter().enumerate() {
        h += &section_html(i, s)?;
    }
    h += "</main>\n</body>\n</html>\n";
    Ok(h)
}

/// Writes the page of a spread over seeds to `dir/index.html` (atomically) and returns its path.
pub fn write_seeds_report(dir: &Path, s: &SeedSpread) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    let path = dir.join("index.html");
    write_atomic(&path, seeds_html(s).as_bytes())?;
    Ok(path)
}

/// The page of a spread over seeds: per class and for the mean, the mean and sample standard
/// deviation of the three AUROCs and the restarts, each run's GradCon AUROC, and the authors'
/// reported figure.
pub fn seeds_html(s: &SeedSpread) -> String {
    let title = format!("gradcon seeds: {}", s.dataset.name());
    let ms = |m: MeanSd| format!("{:.4} &plusmn; {:.4}", m.mean, m.sd);
    let seeds = s
        .seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n\
         <p>{n} runs of the one-class protocol on {d} that differ only in their seed ({seeds}), \
         compared after {e} epochs: the mean &plusmn; the sample standard deviation (n&minus;1) \
         over the runs of each class's AUROC for the GradCon score, its reconstruction term and \
         its gradient term (normal test images against the anomalous ones), and of the restarts \
         after a saturated output; the last columns hold each run's GradCon AUROC.</p>\n\
         <table class=\"spread\">\n<tr><th>class</th><th>GradCon</th>\
         <th>recon</th><th>grad</th><th>restarts</th>",
        t = escape(&title),
        n = s.seeds.len(),
        d = s.dataset.name(),
        e = s.epochs,
    );
    for seed in &s.seeds {
        let _ = write!(h, "<th>seed {seed}</th>");
    }
    h += "</tr>\n";
    for r in s.rows() {
        // The mean's line in header cells, as in the protocol's summary table.
        let (cell, label, all) = match r.class {
            Some(c) => ("td", c.to_string(), ""),
            None => ("th", "mean".to_string(), " in all"),
        };
        let _ = write!(
            h,
            "<tr><{cell}>{label}</{cell}><{cell}>{}</{cell}><{cell}>{}</{cell}><{cell}>{}</{cell}>\
             <{cell}>{:.1} &plusmn; {:.1}{all}</{cell}>",
            ms(r.auroc.gradcon),
            ms(r.auroc.recon),
            ms(r.auroc.grad),
            r.restarts.mean,
            r.restarts.sd
        );
        for g in &r.runs {
            let _ = write!(h, "<{cell}>{g:.4}</{cell}>");
        }
        h += "</tr>\n";
    }
    let diffs = s
        .differences()
        .map(|(seed, d)| format!("{d:+.4} (seed {seed})"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        h,
        "</table>\n<p>The mean GradCon AUROC less the mean reconstruction AUROC: \
         <strong>{}</strong> over the runs; per run {diffs}.</p>\n<p>The authors report a mean \
         GradCon AUROC of <strong>{:.3}</strong> on {} (their ICLR 2020 submission of the same \
         work, trained up to 1000 epochs).</p>\n<p class=\"legend\">Folders: {}.</p>\n\
         </main>\n</body>\n</html>\n",
        ms(s.gradcon_minus_recon),
        authors_reported(s.dataset),
        s.dataset.name(),
        s.names
            .iter()
            .map(|n| escape(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    h
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222;
       background: #fff; margin: 0; line-height: 1.4; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 1.6em; margin: 0.4em 0; }
h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.convention { background: #f4f6fa; border-left: 4px solid #1f77b4; padding: 8px 12px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; }
details { margin: 6px 0; font-size: 0.9em; }
summary { cursor: pointer; color: #1f4f8f; }
.row figure { flex: 1 1 auto; }
figcaption, .legend { font-size: 0.85em; color: #555; max-width: 100%; }
svg { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th { background: #f0f0f0; }
td.name { text-align: left; }
.spread td, .spread th { white-space: nowrap; }
.examples { display: flex; flex-wrap: wrap; gap: 10px; }
.example { border: 1px solid #ddd; border-radius: 4px; padding: 6px; width: 262px; }
.example.anomalous { border-top: 4px solid #d62728; }
.example.normal { border-top: 4px solid #1f77b4; }
.triple { display: flex; gap: 3px; }
.triple img { width: 84px; height: 84px; image-rendering: pixelated; background: #000; }
.heads { display: flex; gap: 3px; font-size: 0.75em; color: #555; }
.heads span { width: 84px; text-align: center; }
.example p { margin: 4px 0 0; font-size: 0.82em; overflow-wrap: anywhere; }
.colorbar { display: flex; align-items: center; gap: 6px; font-size: 0.85em; margin: 4px 0; }
.key { display: inline-block; width: 22px; border-top: 2px solid; vertical-align: middle;
       margin: 0 5px 0 14px; }
.key.dashed { border-top-style: dashed; }
.dot { display: inline-block; width: 8px; height: 8px; border: 2px solid #000;
       border-radius: 50%; vertical-align: middle; margin: 0 5px 0 14px; }
.colorbar img { width: 240px; height: 14px; border: 1px solid #999; }
";

fn summary_html(r: &ProtocolResult) -> Result<String> {
    let mut h = format!(
        "<section id=\"summary\"><h2>Summary: the one-class protocol on {}</h2>\n\
         <p>{}, &beta; = {}, {} epochs at most, seed {}, {} in all, {:.0} s of training and \
         scoring (summed over the classes and over resumed runs; {}).</p>\n<table>\n<tr><th>class</th><th>GradCon</th><th>recon</th>\
         <th>grad</th><th>restarts</th><th>epoch</th><th>test images</th><th>F1</th></tr>\n",
        r.dataset.name(),
        count(r.classes.len(), "class", "classes"),
        r.beta,
        r.config.epochs,
        r.config.seed,
        count(r.total_restarts, "restart", "restarts"),
        r.classes.iter().map(|c| c.seconds).sum::<f64>(),
        escape(&r.engine)
    );
    for c in &r.classes {
        let f1 = c
            .at_threshold
            .map_or("&ndash;".to_string(), |a| format!("{:.3}", a.f1));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td>\
             <td>{} / {}</td><td>{}</td><td>{f1}</td></tr>",
            c.class,
            c.auroc.gradcon,
            c.auroc.recon,
            c.auroc.grad,
            c.restarts,
            c.selected_epoch,
            c.epochs_run,
            c.test_images
        );
    }
    let _ = write!(
        h,
        "<tr><th>mean</th><th>{:.4}</th><th>{:.4}</th><th>{:.4}</th><th>{}</th><th></th>\
         <th></th><th></th></tr>\n</table>\n<p class=\"legend\">Columns: the normal class \
         the model was trained on; the AUROC of the GradCon score, of its reconstruction term \
         and of its gradient term (normal test images against the anomalous ones, 0.5 is \
         chance); re-initialisations after a saturated output or a diverged loss; the selected \
         epoch / the epochs run in its attempt; test images; F1 on the test images at the \
         threshold calibrated on the validation images (&ndash;: no threshold).</p>\n\
         <p>For comparison, the authors report a mean GradCon AUROC over the ten classes of \
         {:.3} on {} (their ICLR 2020 submission of the same work, trained up to 1000 \
         epochs).</p>\n",
        r.mean.gradcon,
        r.mean.recon,
        r.mean.grad,
        r.total_restarts,
        authors_reported(r.dataset),
        r.dataset.name()
    );
    let reasons: Vec<String> = r
        .classes
        .iter()
        .flat_map(|c| {
            c.restart_reasons
                .iter()
                .map(move |why| format!("<li>class {}: {}</li>", c.class, escape(why)))
        })
        .collect();
    if !reasons.is_empty() {
        let _ = writeln!(h, "<p>Restarts:</p><ul>{}</ul>", reasons.concat());
    }
    if !r.budgets.is_empty() {
        h += &budgets_html(r)?;
    }
    Ok(h + "</section>\n")
}

/// The mean AUROCs at each `--eval-at` budget: a plot against epochs and a table.
fn budgets_html(r: &ProtocolResult) -> Result<String> {
    let mut h = format!(
        "<h3>AUROC against epochs trained</h3>\n{}\n<p class=\"legend\">{}</p>\n<table>\n\
         <tr><th>epochs</th><th>GradCon</th><th>recon</th><th>grad</th>\
         <th>stopped early</th></tr>\n",
        budgets_svg(r)?,
        "<span class=\"key\" style=\"border-color:#1f77b4\"></span>GradCon \
         <span class=\"key\" style=\"border-color:#ff7f0e\"></span>reconstruction term \
         <span class=\"key\" style=\"border-color:#2ca02c\"></span>gradient term<br>\
         Mean over the classes of the AUROC of the model the protocol selects after each \
         number of epochs (lowest validation loss so far). &ldquo;Stopped early&rdquo;: \
         some class had stopped (--patience) before that budget, and its stopped model was \
         scored."
    );
    for b in &r.budgets {
        let stopped = r
            .classes
            .iter()
            .any(|c| c.budgets.iter().any(|x| x.epoch == b.epoch && x.stopped));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            b.epoch,
            b.mean.gradcon,
            b.mean.recon,
            b.mean.grad,
            if stopped { "yes" } else { "no" }
        );
    }
    Ok(h + "</table>\n")
}

fn budgets_svg(r: &ProtocolResult) -> Result<String> {
    svg((900, 380), "Mean AUROC against epochs trained", |root| {
        let points = |f: fn(&Aurocs) -> f64| -> Vec<(f64, f64)> {
            r.budgets
                .iter()
                .map(|b| (b.epoch as f64, f(&b.mean)))
                .collect()
        };
        let series = [
            (points(|a| a.gradcon), GRADCON),
            (points(|a| a.recon), RECON),
            (points(|a| a.grad), GRAD),
        ];
        let y = padded_range(series.iter().flat_map(|(p, _)| p.iter().map(|&(_, v)| v)));
        let epochs: Vec<f64> = r.budgets.iter().map(|b| b.epoch as f64).collect();
        let (first, last) = match (epochs.first(), epochs.last()) {
            (Some(&f), Some(&l)) => (f, l),
            _ => (1.0, 1.0),
        };
        if last >= 8.0 * first {
            // Budgets such as 10, 20, 50, 100, 200, 1000: on a log axis, ticked at each budget,
            // so that the early ones do not crowd together.
            let x = (first / 1.15..last * 1.15)
                .log_scale()
                .with_key_points(epochs.clone());
            budget_lines(
                root,
                x,
                "epochs trained (log scale)",
                epochs.len(),
                y,
                series,
            )?;
        } else {
            // No more labels than whole epochs in range (each label is a whole epoch).
            let labels = (last as usize + 1).min(10);
            budget_lines(root, 0.0..last * 1.04, "epochs trained", labels, y, series)?;
        }
        Ok(String::new())
    })
}

/// The budget plot on axis `x`: its grid and axes, and each series as a line through its points.
fn budget_lines<DB: DrawingBackend, X: AsRangedCoord<Value = f64>>(
    root: &DrawingArea<DB, Shift>,
    x: X,
    x_desc: &str,
    x_labels: usize,
    y: std::ops::Range<f64>,
    series: [(Vec<(f64, f64)>, RGBColor); 3],
) -> Result<()>
where
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y.clone())
        .map_err(plot_error)?;
    epoch_mesh(&mut chart, x_desc, "mean AUROC", x_labels, &y)?;
    for (p, color) in series {
        chart
            .draw_series(LineSeries::new(p, color.stroke_width(2)).point_size(3))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// `n` and the noun in its number.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn section_html(i: usize, s: &Section) -> Result<String> {
    let anomalous = s.is_anomalous.iter().filter(|&&a| a).count();
    let mut h = format!(
        "<section id=\"s{i}\"><h2>{}</h2>\n<p>{} test images: {} normal, {anomalous} anomalous. \
         AUROC: GradCon {:.4}, reconstruction term {:.4}, gradient term {:.4} (&beta; = {}).</p>\n",
        escape(&s.title),
        s.scores.len(),
        s.scores.len() - anomalous,
        s.aurocs.gradcon,
        s.aurocs.recon,
        s.aurocs.grad,
        s.beta
    );
    let histograms = Histograms::of(s);
    let _ = write!(
        h,
        "<div class=\"row\">\n<figure style=\"max-width:{ROC_W}px\">{}<figcaption>ROC curves for detecting anomalies. Each \
         curve lowers a threshold on an anomaly-oriented score (&minus;GradCon, &minus;recon, \
         &minus;grad); x is the fraction of normal test images at or above it, y the fraction \
         of anomalous ones. Tied scores make one step. The area equals the AUROC of the score \
         with the normal images positive.</figcaption></figure>\n<figure style=\"max-width:{HIST_W}px\">{}<figcaption>\
         Anomaly scores of the normal and the anomalous test images, in the same bins, each \
         group as the fraction of its own images.</figcaption></figure>\n</div>\n{}",
        roc_svg(s)?,
        histogram_svg(s, &histograms)?,
        histograms.table_html()
    );
    h += &threshold_html(s);
    h += "<h3>Training</h3>\n";
    if s.history.is_empty() {
        h += "<p>No training history in this model file.</p>\n";
    } else {
        let _ = write!(
            h,
            "<figure>{}<figcaption>Mean J (the training loss: MSE + &alpha; &middot; gradient \
             loss) and MSE per epoch, on the training images and on the validation images. \
             Epochs are counted across attempts; a dashed red line marks the start of each new \
             attempt after a restart (hover over it for the reason).<br>{TRAINING_LEGEND}\
             </figcaption></figure>",
            training_svg(s)?
        );
    }
    h += &examples_html(s)?;
    Ok(h + "</section>\n")
}

fn threshold_html(s: &Section) -> String {
    let Some(a) = s.at_threshold else {
        return "<p>No threshold: the model was not calibrated for this &beta;.</p>\n".into();
    };
    let c = a.confusion;
    format!(
        "<h3>At the threshold</h3>\n<table>\n<tr><th>threshold</th><th>precision</th>\
         <th>recall</th><th>F1</th><th>FPR</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>\n\
         <tr><td>{:.5}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td></tr>\n</table>\n<p class=\"legend\">An image is \
         decided anomalous when its anomaly score is above the threshold; anomalous is the \
         positive class. Precision: the fraction of the images decided anomalous that are; \
         recall: the fraction of the anomalous images decided so (TPR); F1: their harmonic mean; \
         FPR: the fraction of the normal images decided anomalous; TP, FP, TN, FN: the counts \
         of true and false positives and negatives.</p>\n",
        a.threshold,
        a.precision,
        a.recall,
        a.f1,
        a.fpr,
        c.true_positives,
        c.false_positives,
        c.true_negatives,
        c.false_negatives
    )
}

/// The ROC curve of detecting anomalies with `anomaly` (higher is more anomalous) against the
/// truth `is_anomalous`: points `(false-positive rate, true-positive rate)` from `(0, 0)` to
/// `(1, 1)`, one per distinct score from the highest down, so tied scores make one (diagonal)
/// step. Its trapezoidal area is the AUROC with ties counting one half.
pub fn roc_curve(anomaly: &[f64], is_anomalous: &[bool]) -> Result<Vec<(f64, f64)>> {
    let positives = is_anomalous.iter().filter(|&&a| a).count();
    let negatives = is_anomalous.len() - positives;
    if anomaly.len() != is_anomalous.len() || positives == 0 || negatives == 0 {
        return Err(Error::invalid(
            "roc curve",
            format!(
                "{} scores for {positives} anomalous and {negatives} normal images: needs one \
                 score per image and both kinds",
                anomaly.len()
            ),
        ));
    }
    if let Some(i) = anomaly.iter().position(|s| s.is_nan()) {
        return Err(Error::invalid("roc curve", format!("score {i} is NaN")));
    }
    let mut order: Vec<usize> = (0..anomaly.len()).collect();
    order.sort_by(|&a, &b| anomaly[b].total_cmp(&anomaly[a]));
    let (p, n) = (positives as f64, negatives as f64);
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len() && anomaly[order[end]] == anomaly[order[start]] {
            if is_anomalous[order[end]] {
                tp += 1;
            } else {
                fp += 1;
            }
            end += 1;
        }
        points.push((fp as f64 / n, tp as f64 / p));
        start = end;
    }
    Ok(points)
}

/// The trapezoidal area under a curve of `(x, y)` points in increasing `x`.
pub fn area_under(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

/// The points of a curve a plot can tell apart: those that move at least `step` in x or y
/// from the last one kept, and the last.
fn thinned(points: &[(f64, f64)], step: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        let far = out
            .last()
            .is_none_or(|q| (p.0 - q.0).abs() >= step || (p.1 - q.1).abs() >= step);
        if far || i + 1 == points.len() {
            out.push(p);
        }
    }
    out
}

/// The message of a drawing error.
fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::invalid("report plot", e.to_string())
}

/// An inline SVG of `size` drawn by `draw`, labelled `label` for screen readers. `draw` returns
/// SVG elements to add on top (plotters draws no `<title>` tooltips).
fn svg(
    size: (u32, u32),
    label: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<String>,
) -> Result<String> {
    let mut buf = String::new();
    let extra = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let extra = draw(&root)?;
        root.present().map_err(plot_error)?;
        extra
    };
    // Inline SVG in HTML takes its namespace from the parser: the xmlns URL is not needed.
    let buf = buf.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    let buf = buf.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(label)),
        1,
    );
    let end = buf.rfind("</svg>").ok_or_else(|| plot_error("no </svg>"))?;
    Ok(format!("{}{extra}{}", &buf[..end], &buf[end..]))
}

/// One score's ROC curve: its name, AUROC and colour, and its anomaly-oriented value.
struct Term {
    name: &'static str,
    auroc: f64,
    color: RGBColor,
    anomaly: fn(&Score) -> f64,
}

fn roc_svg(s: &Section) -> Result<String> {
    let a = s.aurocs;
    let terms = [
        Term {
            name: "GradCon score",
            auroc: a.gradcon,
            color: GRADCON,
            anomaly: |x| -x.gradcon,
        },
        Term {
            name: "reconstruction term",
            auroc: a.recon,
            color: RECON,
            anomaly: |x| -x.recon,
        },
        Term {
            name: "gradient term",
            auroc: a.grad,
            color: GRAD,
            anomaly: |x| -x.grad,
        },
    ];
    let curves = terms
        .iter()
        .map(|t| {
            let anomaly: Vec<f64> = s.scores.iter().map(t.anomaly).collect();
            roc_curve(&anomaly, &s.is_anomalous)
        })
        .collect::<Result<Vec<_>>>()?;
    let label = format!(
        "ROC curves: AUROC GradCon {:.4}, reconstruction {:.4}, gradient {:.4}",
        s.aurocs.gradcon, s.aurocs.recon, s.aurocs.grad
    );
    svg((ROC_W, PLOT_H), &label, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate: normal images flagged")
            .y_desc("true-positive rate: anomalies flagged")
            .x_labels(6)
            .y_labels(6)
            .max_light_lines(1)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(plot_error)?;
        let chance = ShapeStyle::from(&RGBColor(150, 150, 150)).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                5,
                4,
                chance,
            ))
            .map_err(plot_error)?;
        for (t, curve) in terms.iter().zip(&curves) {
            let style = t.color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(thinned(curve, 1e-3), style))
                .map_err(plot_error)?
                .label(format!("{}, AUROC {:.4}", t.name, t.auroc))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(String::new())
    })
}

/// Bins of a histogram: `bins` equal bins over `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bins {
    lo: f64,
    width: f64,
    count: usize,
}

impl Bins {
    /// Bins covering `values` and `also` (the threshold), about `sqrt(n)` of them.
    fn covering(values: &[f64], also: Option<f64>) -> Self {
        let finite = values.iter().chain(also.as_ref()).filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let span = if hi > lo { hi - lo } else { lo.abs().max(1e-3) };
        let count = ((values.len() as f64).sqrt().ceil() as usize).clamp(10, 50);
        let pad = span * 0.02;
        Self {
            lo: lo - pad,
            width: (span + 2.0 * pad) / count as f64,
            count,
        }
    }

    fn hi(&self) -> f64 {
        self.lo + self.width * self.count as f64
    }

    /// How many of `values` fall in each bin (the last bin takes its upper edge).
    fn counts(&self, values: impl Iterator<Item = f64>) -> Vec<usize> {
        let mut counts = vec![0usize; self.count];
        for v in values.filter(|v| v.is_finite()) {
            let b = ((v - self.lo) / self.width).floor().max(0.0) as usize;
            counts[b.min(self.count - 1)] += 1;
        }
        counts
    }
}

/// The anomaly scores of the normal and of the anomalous test images, in the same bins.
#[derive(Debug, Clone, PartialEq)]
struct Histograms {
    bins: Bins,
    normal: Vec<usize>,
    anomalous: Vec<usize>,
}

impl Histograms {
    fn of(s: &Section) -> Self {
        let scores: Vec<f64> = s.scores.iter().map(|x| x.anomaly_score).collect();
        let bins = Bins::covering(&scores, s.threshold);
        let group = |anomalous: bool| {
            let truth = s.is_anomalous.iter();
            bins.counts(
                scores
                    .iter()
                    .zip(truth)
                    .filter(|t| *t.1 == anomalous)
                    .map(|t| *t.0),
            )
        };
        Self {
            bins,
            normal: group(false),
            anomalous: group(true),
        }
    }

    /// The histograms as a table, for readers who do not see the plot.
    fn table_html(&self) -> String {
        let mut h = String::from(
            "<details><summary>The histograms as a table</summary>\n<table>\n<tr>\
             <th>anomaly score from</th><th>to</th><th>normal images</th>\
             <th>anomalous images</th></tr>\n",
        );
        let b = self.bins;
        for (i, (n, a)) in self.normal.iter().zip(&self.anomalous).enumerate() {
            let from = b.lo + i as f64 * b.width;
            let _ = writeln!(
                h,
                "<tr><td>{from:.5}</td><td>{:.5}</td><td>{n}</td><td>{a}</td></tr>",
                from + b.width
            );
        }
        h + "</table>\n<p class=\"legend\">Each row: a bin of the anomaly score (from its lower \
             edge, up to its upper edge) and how many normal and anomalous test images fall in \
             it.</p></details>\n"
    }
}

fn histogram_svg(s: &Section, histograms: &Histograms) -> Result<String> {
    let bins = histograms.bins;
    let fractions = |counts: &[usize]| {
        let n = counts.iter().sum::<usize>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / n).collect::<Vec<_>>()
    };
    let groups = [
        ("normal images", NORMAL, fractions(&histograms.normal)),
        (
            "anomalous images",
            ANOMALOUS,
            fractions(&histograms.anomalous),
        ),
    ];
    let top = groups
        .iter()
        .flat_map(|g| g.2.iter().copied())
        .fold(0.0, f64::max)
        // Headroom above the bars for the legend and the threshold's label.
        * 1.4;
    let top = if top > 0.0 { top } else { 1.0 };
    svg(
        (HIST_W, PLOT_H),
        "Histograms of the anomaly score",
        |root| {
            let mut chart = ChartBuilder::on(root)
                .margin(14)
                .x_label_area_size(46)
                .y_label_area_size(60)
                .build_cartesian_2d(bins.lo..bins.hi(), 0.0..top)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("anomaly score (-GradCon)")
                .y_desc("fraction of the group's images")
                .x_labels(6)
                .y_labels(6)
                .max_light_lines(1)
                .x_label_formatter(&|v| format!("{v:.*}", decimals(bins.hi() - bins.lo)))
                .y_label_formatter(&|v| format!("{v:.2}"))
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 16))
                .draw()
                .map_err(plot_error)?;
            for (name, color, fractions) in &groups {
                let fill = color.mix(0.45).filled();
                let bars = fractions.iter().enumerate().map(|(b, &f)| {
                    let x0 = bins.lo + b as f64 * bins.width;
                    Rectangle::new([(x0, 0.0), (x0 + bins.width, f)], fill)
                });
                chart
                    .draw_series(bars)
                    .map_err(plot_error)?
                    .label(*name)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill));
            }
            if let Some(t) = s.threshold {
                let line = BLACK.stroke_width(2);
                chart
                    .draw_series(LineSeries::new([(t, 0.0), (t, top)], line))
                    .map_err(plot_error)?;
                let right = t > (bins.lo + bins.hi()) / 2.0;
                let (h, dx) = if right {
                    (HPos::Right, -6)
                } else {
                    (HPos::Left, 6)
                };
                let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(h, VPos::Top));
                let (x, y) = chart.backend_coord(&(t, top));
                root.draw(&Text::new(
                    format!("threshold {t:.4}"),
                    // Below the legend's two lines, above the bars.
                    (x + dx, y + 66),
                    style,
                ))
                .map_err(plot_error)?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
            Ok(String::new())
        },
    )
}

/// Decimals that tell apart the tick labels of an axis spanning `span`.
fn decimals(span: f64) -> usize {
    if span.is_finite() && span > 0.0 {
        (1.0 - span.log10().floor()).clamp(0.0, 8.0) as usize
    } else {
        3
    }
}

/// A y range that shows `values` with a margin (a fixed width when they are all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else {
        lo.abs().max(1e-3) * 0.1
    };
    lo - pad..hi + pad
}

/// One panel of the training curves: a measure on the training and on the validation images.
struct Panel {
    title: &'static str,
    name: &'static str,
    train: fn(&EpochRecord) -> f64,
    val: fn(&EpochRecord) -> Option<f64>,
}

const PANELS: [Panel; 2] = [
    Panel {
        title: "J, the training loss",
        name: "J",
        train: |r| r.train_loss,
        val: |r| r.val_loss,
    },
    Panel {
        title: "MSE, the reconstruction error",
        name: "MSE",
        train: |r| r.train_mse,
        val: |r| r.val_mse,
    },
];

/// The training curves, J and MSE side by side. Their legend is the HTML line under them
/// ([`TRAINING_LEGEND`]), so it never covers a curve.
fn training_svg(s: &Section) -> Result<String> {
    svg(
        (1100, 360),
        "Training curves: J and MSE per epoch",
        |root| {
            let mut extra = String::new();
            for (area, panel) in root.split_evenly((1, 2)).iter().zip(&PANELS) {
                extra += &training_panel(area, s, panel)?;
            }
            Ok(extra)
        },
    )
}

const TRAINING_LEGEND: &str = "<span class=\"key\" style=\"border-color:#1f77b4\"></span>\
    training images <span class=\"key\" style=\"border-color:#ff7f0e\"></span>validation \
    images <span class=\"dot\"></span>the selected model <span class=\"key dashed\" \
    style=\"border-color:#b00\"></span>a restart: a new attempt from fresh weights (hover for \
    the reason)";

/// The series' legend of a plot, boxed, at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(plot_error)
}

/// The grid and axes of a plot against epochs: whole epochs along x, `y`'s span decides the
/// decimals along y.
fn epoch_mesh<DB: DrawingBackend, X: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    x_desc: &str,
    y_desc: &str,
    x_labels: usize,
    y: &std::ops::Range<f64>,
) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels)
        .y_labels(6)
        .max_light_lines(1)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.*}", decimals(y.end - y.start)))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map(|_| ())
        .map_err(plot_error)
}

/// One panel; returns the restart marks to lay on top.
fn training_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Section,
    panel: &Panel,
) -> Result<String> {
    let values = s
        .history
        .iter()
        .flat_map(|r| [Some((panel.train)(r)), (panel.val)(r)]);
    let y = padded_range(values.flatten());
    let epochs = s.history.len();
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 17))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..epochs as f64 + 0.5, y.clone())
        .map_err(plot_error)?;
    let y_desc = format!("mean {} per image", panel.name);
    let x_desc = "epoch (counted across attempts)";
    epoch_mesh(&mut chart, x_desc, &y_desc, epochs.clamp(2, 10), &y)?;
    let x = |i: usize| i as f64 + 1.0;
    let train = s
        .history
        .iter()
        .enumerate()
        .map(|(i, r)| Some((x(i), (panel.train)(r))));
    let val = s
        .history
        .iter()
        .enumerate()
        .map(|(i, r)| (panel.val)(r).map(|v| (x(i), v)));
    let lines: [(Vec<_>, RGBColor); 2] = [
        (train.flatten().collect(), GRADCON),
        (val.flatten().collect(), RECON),
    ];
    for (points, color) in lines {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(2))
            .map_err(plot_error)?;
    }
    let last_attempt = s.history.last().map_or(0, |r| r.attempt);
    let selected = s
        .history
        .iter()
        .position(|r| r.attempt == last_attempt && Some(r.epoch) == s.selected_epoch);
    if let Some((i, v)) = selected.and_then(|i| (panel.val)(&s.history[i]).map(|v| (i, v))) {
        chart
            .draw_series([Circle::new((x(i), v), 6, BLACK.stroke_width(2))])
            .map_err(plot_error)?;
    }
    restart_marks(s, &chart)
}

/// Dashed vertical lines at the first epoch of each attempt after the first, each with the
/// restart's reason as its tooltip.
fn restart_marks<DB: DrawingBackend>(
    s: &Section,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> Result<String> {
    let (y_lo, y_hi) = (chart.y_range().start, chart.y_range().end);
    let mut out = String::new();
    for (i, r) in s.history.iter().enumerate() {
        if i == 0 || s.history[i - 1].attempt == r.attempt {
            continue;
        }
        let why = s
            .restarts
            .get(r.attempt.wrapping_sub(1))
            .map_or("no reason recorded", String::as_str);
        let (x, y0) = chart.backend_coord(&(i as f64 + 0.5, y_lo));
        let (_, y1) = chart.backend_coord(&(i as f64 + 0.5, y_hi));
        let _ = write!(
            out,
            "<g class=\"restart\"><title>restart {a}: attempt {a} starts here because {why}\
             </title><line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y1}\" stroke=\"{RESTART}\" \
             stroke-width=\"2\" stroke-dasharray=\"6 4\"/><line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" \
             y2=\"{y1}\" stroke=\"transparent\" stroke-width=\"12\"/><text x=\"{tx}\" y=\"{ty}\" \
             font-family=\"{FONT}\" font-size=\"12\" fill=\"{RESTART}\">restart {a}</text></g>",
            a = r.attempt,
            why = escape(why),
            tx = x + 4,
            ty = y1 + 12,
        );
    }
    Ok(out)
}

fn examples_html(s: &Section) -> Result<String> {
    if s.most_anomalous.is_empty() && s.most_normal.is_empty() {
        return Ok(String::new());
    }
    let all = s.most_anomalous.iter().chain(&s.most_normal);
    let max_error = all
        .flat_map(|e| e.error_map())
        .fold(0f32, f32::max)
        .max(1e-6);
    let mut h = format!(
        "<h3>The most and the least anomalous test images</h3>\n<div class=\"colorbar\">\
         <span>per-pixel error |x &minus; x&prime;| (largest over channels): 0</span>\
         <img alt=\"colour bar of the error maps, dark purple 0 to yellow {max_error:.3}\" \
         src=\"{}\"><span>{max_error:.3}</span></div>\n<p class=\"legend\">Each card: the \
         input x, the reconstruction x&prime; and the error map (one colour scale for the whole \
         section, viridis from 0 to the largest error shown), with the image's name, its \
         anomaly score, its truth and the decision at the threshold. A red top edge marks an \
         anomalous image, a blue one a normal image.</p>\n",
        colorbar_uri()?
    );
    let groups = [
        ("most anomalous (highest anomaly scores)", &s.most_anomalous),
        ("most normal (lowest anomaly scores)", &s.most_normal),
    ];
    for (heading, examples) in groups {
        if examples.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h3>{} {heading}</h3>\n<div class=\"examples\">",
            examples.len()
        );
        for e in examples {
            h += &example_html(e, max_error)?;
        }
        h += "</div>\n";
    }
    Ok(h)
}

fn example_html(e: &Example, max_error: f32) -> Result<String> {
    let side = e.side;
    let input = png_uri(side, side, &to_rgb(&e.input, e.channels, side))?;
    let recon = png_uri(side, side, &to_rgb(&e.reconstruction, e.channels, side))?;
    let heat: Vec<u8> = e
        .error_map()
        .iter()
        .flat_map(|&v| viridis((v / max_error) as f64))
        .collect();
    let heat = png_uri(side, side, &heat)?;
    let truth = if e.is_anomalous {
        "anomalous"
    } else {
        "normal"
    };
    let decided = match e.decided_anomalous {
        Some(true) => ", decided anomalous",
        Some(false) => ", decided normal",
        None => "",
    };
    let name = escape(&e.name);
    Ok(format!(
        "<div class=\"example {truth}\"><div class=\"heads\"><span>input</span>\
         <span>reconstruction</span><span>error</span></div><div class=\"triple\">\
         <img alt=\"{name}: input\" src=\"{input}\"><img alt=\"{name}: reconstruction\" \
         src=\"{recon}\"><img alt=\"{name}: per-pixel error\" src=\"{heat}\"></div>\
         <p><strong>{name}</strong><br>anomaly score {:.5}<br>truth {truth}{decided}</p></div>\n",
        e.anomaly_score
    ))
}

/// CHW values in `[0, 1]` of 1 or 3 channels as 8-bit RGB, row by row.
fn to_rgb(chw: &[f32], channels: usize, side: usize) -> Vec<u8> {
    let plane = side * side;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    (0..plane)
        .flat_map(|p| {
            let c = |k: usize| byte(chw[(k % channels) * plane + p]);
            [c(0), c(1), c(2)]
        })
        .collect()
}

/// The viridis colour map at `t` in `[0, 1]`, interpolated between nine of its colours.
fn viridis(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let x = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 8.0;
    let i = (x.floor() as usize).min(7);
    let f = x - i as f64;
    let mix = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

fn colorbar_uri() -> Result<String> {
    let rgb: Vec<u8> = (0..128).flat_map(|i| viridis(i as f64 / 127.0)).collect();
    png_uri(128, 1, &rgb)
}

/// An 8-bit RGB image as a `data:image/png;base64,` URI.
fn png_uri(width: usize, height: usize, rgb: &[u8]) -> Result<String> {
    let fail = |e: png::EncodingError| Error::invalid("report image", e.to_string());
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(format!("data:image/png;base64,{}", base64(&bytes)))
}

/// Standard base64 (RFC 4648) with `=` padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_tensor::Rng;
    use detector::eval::auroc;

    #[test]
    fn the_area_under_the_roc_curve_is_the_auroc() {
        let mut rng = Rng::seed_from_u64(11);
        for n in [2usize, 3, 10, 57, 400, 3000] {
            // Few distinct values, so many ties, and a mix of both kinds.
            let levels = 1 + rng.below(n as u64) as usize;
            let normal_score: Vec<f64> = (0..n)
                .map(|_| rng.below(levels as u64) as f64 * 0.37 - 1.0)
                .collect();
            let mut is_anomalous: Vec<bool> = (0..n).map(|_| rng.below(3) == 0).collect();
            is_anomalous[0] = true;
            is_anomalous[1] = false;
            let normal: Vec<bool> = is_anomalous.iter().map(|a| !a).collect();
            let expected = auroc(&normal_score, &normal).unwrap();
            let anomaly: Vec<f64> = normal_score.iter().map(|s| -s).collect();
            let curve = roc_curve(&anomaly, &is_anomalous).unwrap();
            assert_eq!(curve.first(), Some(&(0.0, 0.0)));
            assert_eq!(curve.last(), Some(&(1.0, 1.0)));
            assert!(curve
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
            let area = area_under(&curve);
            assert!(
                (area - expected).abs() < 1e-12,
                "n {n}: {area} vs {expected}"
            );
        }
    }

    #[test]
    fn tied_scores_make_one_step() {
        // Two anomalous and two normal images, one of each tied at 0.5.
        let curve = roc_curve(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!(curve, [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(area_under(&curve), 0.875);
        assert!(roc_curve(&[1.0, 2.0], &[true, true]).is_err());
        assert!(roc_curve(&[f64::NAN, 2.0], &[true, false]).is_err());
    }

    #[test]
    fn thinning_keeps_the_ends_and_the_corners_a_plot_shows() {
        let curve = [
            (0.0, 0.0),
            (0.0, 0.0001),
            (0.0, 0.5),
            (0.5, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(
            thinned(&curve, 1e-3),
            [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn bins_hold_every_value_and_the_threshold() {
        let values = [0.0, 0.25, 0.5, 1.0];
        let bins = Bins::covering(&values, Some(2.0));
        assert!(bins.lo < 0.0 && bins.hi() > 2.0);
        assert_eq!(bins.counts(values.iter().copied()).iter().sum::<usize>(), 4);
        let one = Bins::covering(&[3.0; 5], None);
        assert!(one.lo < 3.0 && one.hi() > 3.0 && one.width > 0.0);
    }

    #[test]
    fn extremes_do_not_overlap() {
        let s = [0.3, 0.9, 0.1, 0.5];
        assert_eq!(extremes(&s, 1), (vec![1], vec![2]));
        assert_eq!(extremes(&s, 3), (vec![1, 3, 0], vec![2]));
        assert_eq!(extremes(&s, 0), (vec![], vec![]));
    }

    #[test]
    fn the_colour_map_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f64::NAN), [68, 1, 84]);
        assert_eq!(to_rgb(&[0.25], 1, 1), [64, 64, 64]);
        assert_eq!(to_rgb(&[0.0, 0.5, 1.0], 3, 1), [0, 128, 255]);
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
