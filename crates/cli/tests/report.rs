//! The HTML report built from real data: the shipped model and a model trained here for two
//! epochs, on the shipped Fashion-MNIST sample. The page must hold every part, the AUROCs the
//! library computes, nothing loaded from elsewhere, and must render in a headless Chromium
//! without a console message into a screenshot that is not blank.
//!
//! Without `chromium` on the PATH the browser tests print `SKIPPED: ...` and pass. Set
//! `GRADCON_REPORT_SCREENSHOT=FILE` to keep the screenshot of the sample's report;
//! `cargo test -p gradcon --test report -- --ignored docs_screenshot` rewrites
//! `docs/report.png`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use detector::data::{load_fashion_mnist, Dataset, Split};
use detector::eval::budget::{BudgetMean, BudgetResult};
use detector::eval::protocol::{
    budget_means, mean_aurocs, Aurocs, ClassResult, DatasetKind, Pool, ProtocolResult,
};
use detector::eval::threshold::AtThreshold;
use detector::train::{EpochRecord, Silent};
use detector::{Detector, TrainConfig, Trainer};
use gradcon_cli::report::{
    protocol_sections, render_html, section_from, write_report, Section, SIGN_CONVENTION,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped model on 100 class-0 (normal) and 150 other test images of the sample, and a
/// model trained here for two epochs (a real training history) on the same images. The groups
/// differ in size so that a report that swapped them would show it.
struct Sample {
    test: Dataset,
    indices: Vec<usize>,
    is_anomalous: Vec<bool>,
    shipped: Detector,
    trained: Detector,
    sections: Vec<Section>,
    page: PathBuf,
    html: String,
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = root().join("data/fashion-mnist-sample");
        let test = load_fashion_mnist(&dir, Split::Test).unwrap();
        let train = load_fashion_mnist(&dir, Split::Train).unwrap();
        let labels = test.labels();
        let normal = (0..test.len()).filter(|&i| labels[i] == 0).take(100);
        let others = (0..test.len()).filter(|&i| labels[i] != 0).take(150);
        let indices: Vec<usize> = normal.chain(others).collect();
        let is_anomalous: Vec<bool> = indices.iter().map(|&i| labels[i] != 0).collect();
        let names: Vec<String> = indices
            .iter()
            .map(|&i| format!("sample test image {i} (class {})", labels[i]))
            .collect();
        let shipped = Detector::load(root().join("data/models/fashion-mnist-0.gcm")).unwrap();
        let tshirts = train.indices_of_class(0);
        let config = TrainConfig {
            epochs: 2,
            batch_size: 32,
            seed: 5,
            ..TrainConfig::default()
        };
        let trained = Trainer::new(config)
            .unwrap()
            .fit(
                &train.take(&tshirts[..96]).unwrap(),
                &train.take(&tshirts[96..128]).unwrap(),
                &mut Silent,
            )
            .unwrap()
            .detector;
        let section = |model: &Detector, title: &str| {
            section_from(
                model,
                title,
                &test,
                &indices,
                &is_anomalous,
                names.clone(),
                4,
            )
            .unwrap()
        };
        let sections = vec![
            section(&shipped, "The shipped model (class 0, T-shirt/top)"),
            section(&trained, "A model trained for two epochs"),
        ];
        let dir = scratch("sample");
        let page = write_report(&dir, "Fashion-MNIST sample: class 0", None, &sections).unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        Sample {
            test,
            indices,
            is_anomalous,
            shipped,
            trained,
            sections,
            page,
            html,
        }
    })
}

#[test]
fn the_report_holds_every_part_with_the_libraries_aurocs() {
    let s = sample();
    let h = &s.html;
    assert!(h.starts_with("<!DOCTYPE html>") && h.trim_end().ends_with("</html>"));
    assert_eq!(
        h.matches(SIGN_CONVENTION).count(),
        1,
        "the convention is stated once"
    );
    for part in [
        "The shipped model (class 0, T-shirt/top)",
        "A model trained for two epochs",
        "ROC curves for detecting anomalies",
        "false-positive rate: normal images flagged",
        "true-positive rate: anomalies flagged",
        "Anomaly scores of the normal and the anomalous test images",
        "<h3>Training</h3>",
        "most anomalous (highest anomaly scores)",
        "most normal (lowest anomaly scores)",
        "per-pixel error",
    ] {
        assert!(h.contains(part), "no {part:?} in the report");
    }
    assert_eq!(h.matches("<section id=\"s").count(), 2);
    assert_eq!(
        h.matches("class=\"example ").count(),
        16,
        "4 + 4 cards per section"
    );
    for (model, section) in [&s.shipped, &s.trained].iter().zip(&s.sections) {
        let scores = model.score_dataset(&s.test, &s.indices).unwrap();
        let normal: Vec<bool> = s.is_anomalous.iter().map(|a| !a).collect();
        let a = Aurocs::of(&scores, &normal).unwrap();
        assert_eq!(section.aurocs, a);
        for (name, v) in [
            ("GradCon score", a.gradcon),
            ("reconstruction term", a.recon),
            ("gradient term", a.grad),
        ] {
            let legend = format!("{name}, AUROC {v:.4}");
            assert!(h.contains(&legend), "no legend {legend:?}");
        }
        // The examples are the extremes of the anomaly score, with their truth.
        let anomaly: Vec<f64> = scores.iter().map(|x| x.anomaly_score).collect();
        let highest = anomaly.iter().copied().fold(f64::MIN, f64::max);
        let lowest = anomaly.iter().copied().fold(f64::MAX, f64::min);
        assert_eq!(section.most_anomalous[0].anomaly_score, highest);
        assert_eq!(section.most_normal[0].anomaly_score, lowest);
        let at = |t: f64| AtThreshold::of(&anomaly, &s.is_anomalous, t);
        assert_eq!(section.threshold, model.threshold());
        assert_eq!(section.at_threshold, model.threshold().map(at));
        if let Some(t) = model.threshold() {
            assert!(
                h.contains(&format!("threshold {t:.4}")),
                "no threshold label"
            );
            assert!(h.contains(&format!("<td>{:.4}</td>", at(t).f1)));
        }
    }
    // The histograms' table: each group's counts, where its scores lie.
    let tables = histogram_tables(h);
    assert_eq!(tables.len(), 2);
    for (table, section) in tables.iter().zip(&s.sections) {
        for (anomalous, images) in [(false, 100), (true, 150)] {
            let counts: Vec<usize> = table
                .iter()
                .map(|r| if anomalous { r.3 } else { r.2 })
                .collect();
            assert_eq!(
                counts.iter().sum::<usize>(),
                images,
                "anomalous {anomalous}"
            );
            let centre: f64 = table
                .iter()
                .zip(&counts)
                .map(|(r, &c)| (r.0 + r.1) / 2.0 * c as f64)
                .sum();
            let group = section
                .scores
                .iter()
                .zip(&section.is_anomalous)
                .filter(|t| *t.1 == anomalous);
            let mean = group.map(|t| t.0.anomaly_score).sum::<f64>() / images as f64;
            let width = table[0].1 - table[0].0;
            assert!(
                (centre / images as f64 - mean).abs() <= width,
                "anomalous {anomalous}"
            );
        }
    }
    // The model trained here has its history drawn; the shipped one its own or a note.
    assert!(!s.sections[1].history.is_empty());
    assert!(h.contains("Training curves: J and MSE per epoch"));
    for part in [
        "J, the training loss",
        "MSE, the reconstruction error",
        "validation images",
    ] {
        assert!(h.contains(part), "no {part:?} in the training curves");
    }
    let notes = h.matches("No training history in this model file.").count();
    assert_eq!(notes, usize::from(s.sections[0].history.is_empty()));
}

/// The rows `(from, to, normal, anomalous)` of each histogram table in `html`.
fn histogram_tables(html: &str) -> Vec<Vec<(f64, f64, usize, usize)>> {
    let cells = |row: &str| -> Vec<String> {
        row.split("<td>")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap().to_string())
            .collect()
    };
    html.split("<summary>The histograms as a table</summary>")
        .skip(1)
        .map(|t| {
            let table = t.split("</table>").next().unwrap();
            table
                .split("<tr>")
                .filter(|r| r.starts_with("<td>"))
                .map(|r| {
                    let c = cells(r);
                    (
                        c[0].parse().unwrap(),
                        c[1].parse().unwrap(),
                        c[2].parse().unwrap(),
                        c[3].parse().unwrap(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_report_is_self_contained() {
    let h = &sample().html;
    for forbidden in ["http://", "https://", "<script", "<link", "url(", "@import"] {
        assert!(!h.contains(forbidden), "the report holds {forbidden:?}");
    }
    let sources: Vec<&str> = h.split("src=\"").skip(1).collect();
    assert!(sources.len() >= 16 * 3, "{} images", sources.len());
    for src in sources {
        assert!(src.starts_with("data:image/png;base64,"), "src {:.40}", src);
    }
    for img in h.split("<img ").skip(1) {
        assert!(img.starts_with("alt=\""), "an image without alt text");
    }
}

#[test]
fn restarts_are_marked_with_their_reason() {
    let record = |attempt, epoch, loss: f64| EpochRecord {
        attempt,
        epoch,
        train_loss: loss,
        train_mse: loss / 2.0,
        val_loss: Some(loss * 1.1),
        val_mse: Some(loss / 1.8),
        spread: 0.1,
        sigmoid_derivative: 0.2,
        health_mse: loss,
    };
    let mut section = sample().sections[1].clone();
    section.history = vec![
        record(0, 1, 0.09),
        record(0, 2, 0.08),
        record(1, 1, 0.07),
        record(1, 2, 0.05),
        record(2, 1, 0.04),
    ];
    section.restarts = vec!["the output saturated <at epoch 2>".into()];
    section.selected_epoch = Some(1);
    let h = render_html("restarts", None, &[section]).unwrap();
    std::fs::write(scratch("restarts").join("index.html"), &h).unwrap();
    // One mark per restart in each of the two panels, the reason escaped.
    assert_eq!(h.matches("<g class=\"restart\">").count(), 4);
    assert_eq!(
        h.matches(
            "<title>restart 1: attempt 1 starts here because the output saturated \
             &lt;at epoch 2&gt;</title>"
        )
        .count(),
        2
    );
    assert_eq!(
        h.matches("restart 2: attempt 2 starts here because no reason")
            .count(),
        2
    );
    // The selected model (epoch 1 of the last attempt) is ringed in both panels.
    assert_eq!(h.matches(" r=\"6\"").count(), 2);
}

#[test]
fn a_protocol_report_has_the_summary_table() {
    let out = scratch("protocol");
    std::fs::copy(
        root().join("data/models/fashion-mnist-0.gcm"),
        out.join("class_0.gcm"),
    )
    .unwrap();
    let pool = Pool::load(
        DatasetKind::FashionMnist,
        &root().join("data/fashion-mnist-sample"),
    )
    .unwrap();
    let config = TrainConfig::default();
    let split = pool.split(0, config.val_fraction, config.seed);
    let model = Detector::load(out.join("class_0.gcm")).unwrap();
    let scores = model.score_dataset(&pool.images, &split.test).unwrap();
    let class = ClassResult {
        class: 0,
        auroc: Aurocs::of(&scores, &split.test_is_normal).unwrap(),
        restarts: 1,
        restart_reasons: vec!["saturated at epoch 3".into()],
        selected_epoch: 7,
        epochs_run: 9,
        best_val_loss: None,
        train_images: split.train.len(),
        val_images: split.val.len(),
        test_images: split.test.len(),
        seconds: 1234.0,
        at_threshold: None,
        pin: None,
        budgets: [3, 9, 12]
            .into_iter()
            .map(|epoch| BudgetResult {
                epoch,
                selected_epoch: epoch.min(7),
                auroc: Aurocs {
                    gradcon: 0.5 + epoch as f64 / 100.0,
                    recon: 0.6,
                    grad: 0.4,
                },
                stopped: epoch > 9,
            })
            .collect(),
        dataset: Some(DatasetKind::FashionMnist),
        beta: Some(model.beta()),
    };
    let result = ProtocolResult {
        engine: "gradcon-rs test".into(),
        dataset: DatasetKind::FashionMnist,
        config,
        beta: model.beta(),
        threads: 1,
        mean: mean_aurocs(std::slice::from_ref(&class)),
        total_restarts: 1,
        budgets: budget_means(std::slice::from_ref(&class)),
        classes: vec![class.clone()],
        wall_seconds: 2.0,
    };
    let sections = protocol_sections(&pool, &result, &out, 2).unwrap();
    assert_eq!(sections.len(), 1);
    assert_eq!(sections[0].aurocs, class.auroc);
    assert_eq!(sections[0].scores.len(), split.test.len());
    let page = write_report(&out.join("report"), "protocol", Some(&result), &sections).unwrap();
    let h = std::fs::read_to_string(page).unwrap();
    let a = class.auroc;
    let row = format!(
        "<tr><td>0</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>1</td><td>7 / 9</td>",
        a.gradcon, a.recon, a.grad
    );
    assert!(h.contains(&row), "no row {row:?}");
    assert!(h.contains(&format!("<tr><th>mean</th><th>{:.4}</th>", a.gradcon)));
    assert!(h.contains("class 0: saturated at epoch 3"));
    assert!(h.contains("1 class, ") && h.contains("1 restart in all"));
    // The time is the classes' own (summed over resumed runs), not the last run's wall time.
    assert!(
        h.contains("1234 s of training and scoring"),
        "no class time"
    );
    assert!(h.contains("of the same work") && h.contains("0.934 on fashion-mnist"));
    assert!(h.contains("Columns: the normal class"));
    assert_eq!(h.matches("class=\"example ").count(), 4);
    // The AUROC against epochs: a plot and its table, the stopped budget marked.
    assert!(
        h.contains("aria-label=\"Mean AUROC against epochs trained\""),
        "no budget plot"
    );
    assert!(
        h.contains("<tr><td>12</td><td>0.6200</td><td>0.6000</td><td>0.4000</td><td>yes</td></tr>")
    );
    assert!(
        h.contains(">\nepochs trained\n<"),
        "budgets 3 to 12 on a linear axis"
    );
    // Budgets spanning a factor of 8 or more go on a log axis, ticked at each budget.
    let mut wide = result.clone();
    wide.budgets = [10, 20, 200]
        .into_iter()
        .map(|epoch| BudgetMean {
            epoch,
            mean: class.auroc,
        })
        .collect();
    let page = write_report(&out.join("report-log"), "protocol", Some(&wide), &sections).unwrap();
    let h = std::fs::read_to_string(page).unwrap();
    assert!(
        h.contains(">\nepochs trained (log scale)\n<"),
        "no log axis"
    );
    for tick in ["10", "20", "200"] {
        assert!(h.contains(&format!(">\n{tick}\n</text>")), "no tick {tick}");
    }
}

#[test]
fn a_section_without_examples_or_history_renders() {
    let s = sample();
    let indices = [s.indices[0], s.indices[1], s.indices[199]];
    let truth = [false, false, true];
    let section = section_from(&s.shipped, "three", &s.test, &indices, &truth, vec![], 0).unwrap();
    assert!(section.most_anomalous.is_empty() && section.most_normal.is_empty());
    assert_eq!(section.names[2], format!("test image {}", indices[2]));
    let h = render_html("three images", None, &[section]).unwrap();
    assert!(!h.contains("class=\"example ") && h.contains("ROC curves for detecting anomalies"));
    let wrong = section_from(&s.shipped, "t", &s.test, &indices, &truth[..2], vec![], 1);
    assert!(wrong.unwrap_err().to_string().contains("3 images"));
}

#[test]
fn write_errors_name_the_file() {
    let dir = scratch("unwritable");
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = write_report(&blocker.join("report"), "t", None, &[]).unwrap_err();
    assert!(e.to_string().contains("a-file"), "{e}");
}

/// The Chromium on the PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

fn skip_without_chromium() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        // Straight to the process's stderr, past the test harness's capture of `eprintln!`,
        // so the skip shows in a plain `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: chromium not installed (apt-get install chromium); the report was not \
             rendered in a browser"
        );
    }
    found
}

/// Renders `page` in headless Chromium into a screenshot; returns the screenshot's path and
/// the console messages (Chromium logs every level, and uncaught exceptions, as `CONSOLE`
/// lines at INFO, so the report must log none).
fn render(chromium: &Path, page: &Path, work: &Path, window: (u32, u32)) -> (PathBuf, Vec<String>) {
    let shot = work.join("screenshot.png");
    let log = work.join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={},{}", window.0, window.1))
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took more than 180 s; its log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success() && shot.exists(),
        "chromium failed ({status}): {text}"
    );
    let console = text
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (shot, console)
}

/// The screenshot's RGB pixels.
fn decode_rgb(path: &Path) -> (usize, usize, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    assert!(
        step >= 3 && info.bit_depth == png::BitDepth::Eight,
        "{info:?}"
    );
    let pixels = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width as usize, info.height as usize, pixels)
}

#[test]
fn the_report_renders_in_a_headless_browser() {
    let Some(chromium) = skip_without_chromium() else {
        return;
    };
    let s = sample();
    let work = scratch("browser");
    let started = Instant::now();
    let (shot, console) = render(&chromium, &s.page, &work, (1200, 3000));
    eprintln!(
        "chromium rendered the report in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(console.is_empty(), "the page logged: {console:#?}");
    let (width, height, pixels) = decode_rgb(&shot);
    assert_eq!((width, height), (1200, 3000));
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let (background, most) = counts.iter().max_by_key(|(_, &n)| n).unwrap();
    assert_eq!(*background, [255, 255, 255], "a white page");
    let drawn = 1.0 - *most as f64 / pixels.len() as f64;
    assert!(
        drawn > 0.05,
        "only {:.1}% of the pixels are drawn",
        drawn * 100.0
    );
    assert!(counts.len() > 200, "only {} colours", counts.len());
    // The GradCon ROC curve's blue and the red of the anomalous histogram bars are on screen.
    let near = |c: [u8; 3], to: [u8; 3]| c.iter().zip(to).all(|(&a, b)| a.abs_diff(b) <= 8);
    for colour in [[31, 119, 180], [237, 158, 158]] {
        let n = pixels.iter().filter(|&&p| near(p, colour)).count();
        assert!(n > 200, "{n} pixels of {colour:?}");
    }
    if let Some(keep) = std::env::var_os("GRADCON_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &keep).unwrap();
    }
}

#[test]
fn the_browser_check_sees_an_uncaught_exception() {
    let Some(chromium) = skip_without_chromium() else {
        return;
    };
    let work = scratch("throws");
    let page = work.join("index.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>throw new Error(\"x\")</script></body></html>",
    )
    .unwrap();
    let (_, console) = render(&chromium, &page, &work, (400, 300));
    assert!(
        console.iter().any(|l| l.contains("Uncaught Error: x")),
        "not seen: {console:#?}"
    );
}

/// The screenshot in `docs/report.png`: the shipped model (with its training history and
/// calibrated threshold) on the test images of its protocol split of the sample.
#[test]
#[ignore = "writes docs/report.png; run it to refresh the screenshot"]
fn docs_screenshot() {
    let Some(chromium) = skip_without_chromium() else {
        return;
    };
    let pool = Pool::load(
        DatasetKind::FashionMnist,
        &root().join("data/fashion-mnist-sample"),
    )
    .unwrap();
    let config = TrainConfig::default();
    let split = pool.split(0, config.val_fraction, config.seed);
    let model = Detector::load(root().join("data/models/fashion-mnist-0.gcm")).unwrap();
    let is_anomalous: Vec<bool> = split.test_is_normal.iter().map(|n| !n).collect();
    let labels = pool.images.labels();
    let names = split
        .test
        .iter()
        .map(|&i| format!("image {i} (class {})", labels[i]))
        .collect();
    let title = "The shipped model: class 0 (T-shirt/top) against the other classes";
    let section = section_from(
        &model,
        title,
        &pool.images,
        &split.test,
        &is_anomalous,
        names,
        4,
    )
    .unwrap();
    let work = scratch("docs");
    let page = write_report(&work, "Fashion-MNIST sample", None, &[section]).unwrap();
    let (shot, console) = render(&chromium, &page, &work, (1200, 2110));
    assert!(console.is_empty(), "the page logged: {console:#?}");
    std::fs::copy(shot, root().join("docs/report.png")).unwrap();
}
