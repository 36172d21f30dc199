//! `gradcon train --images FOLDER` and `gradcon score --model M FOLDER` on the binary, with
//! folders of PNG and JPEG copies of the shipped sample: mixed sizes and channels, nested
//! folders, a hidden file, a link and a note; PNG copies score exactly like the IDX file,
//! JPEG and resized copies within a stated AUROC tolerance; the validation split is the seeded
//! draw; limits and usage errors name the file or option.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use detector::data::files::{collect_files, load_files};
use detector::data::idx::encode_idx_images;
use detector::data::{load_fashion_mnist, resize_lanczos_planes, Dataset, Fit, Split};
use detector::eval::auroc;
use detector::eval::split::holdout_split;
use detector::train::pin::digest;
use detector::Detector;

fn gradcon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcon"))
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gradcon-own-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample(split: Split) -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample");
    load_fashion_mnist(&dir, split).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An 8-bit PNG of `channels` (1 or 3) of a grey `plane` (RGB: the grey in each channel).
fn png_file(channels: usize, side: usize, plane: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    let pixels: Vec<u8> = plane
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, channels))
        .collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

fn grey_jpeg(h: usize, w: usize, plane: &[u8], quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(plane, w as u16, h as u16, jpeg_encoder::ColorType::Luma)
        .unwrap();
    out
}

fn expect(out: Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    err
}

/// The GradCon column of `gradcon score` CSV output, checking its rows: each names its file,
/// and `anomaly_score` is exactly `-gradcon`.
fn gradcon_column(csv: &str, rows: usize) -> Vec<f64> {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("path,index,anomaly_score,anomalous,gradcon,recon,grad")
    );
    let v: Vec<f64> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert!(!cells[0].is_empty(), "a row without its file: {l}");
            let (anomaly, gradcon): (f64, f64) =
                (cells[2].parse().unwrap(), cells[4].parse().unwrap());
            assert_eq!(anomaly, -gradcon, "{l}");
            gradcon
        })
        .collect();
    assert_eq!(v.len(), rows);
    v
}

fn score(model: &Path, images: &[&Path], extra: &[&str]) -> String {
    let out = gradcon()
        .args(["--quiet", "score", "--model", s(model)])
        .args(images.iter().map(|p| s(p)))
        .args(extra)
        .output()
        .unwrap();
    expect(out.clone(), 0);
    String::from_utf8(out.stdout).unwrap()
}

/// A training folder of the 200 class-0 (T-shirt) training images of the sample: a quarter
/// each as 28x28 grey PNG, 28x28 RGB PNG, grey JPEG in a nested folder and 40x40 grey PNG;
/// with a hidden file, a link and a note beside them.
fn training_folder(dir: &Scratch) -> PathBuf {
    let train = sample(Split::Train);
    for (k, i) in train.indices_of_class(0).into_iter().enumerate() {
        let plane = train.image(i);
        match k % 4 {
            0 => dir.write(&format!("train/grey/{k:03}.png"), &png_file(1, 28, plane)),
            1 => dir.write(&format!("train/rgb/{k:03}.PNG"), &png_file(3, 28, plane)),
            2 => dir.write(
                &format!("train/jpeg/nested/{k:03}.jpg"),
                &grey_jpeg(28, 28, plane, 95),
            ),
            _ => {
                let big = resize_lanczos_planes(plane, 1, 28, 28, 40, 40).unwrap();
                dir.write(&format!("train/big/{k:03}.png"), &png_file(1, 40, &big))
            }
        };
    }
    dir.write("train/.thumbs/000.png", b"hidden");
    dir.write("train/README.txt", b"T-shirts");
    std::os::unix::fs::symlink(dir.0.join("train/grey"), dir.0.join("train/more")).unwrap();
    dir.0.join("train")
}

/// Trains on a mixed folder, then scores 100 test T-shirts against 100 test images of an
/// anomalous class (sneakers 7, easy; shirts 6, hard) as an IDX file, as 28x28 grey PNG
/// copies (the same CSV, byte for byte), as JPEG copies (quality 90) and as 40x40 copies
/// stretched back: the copies' AUROCs are within 0.02 of the IDX file's.
#[test]
fn train_on_a_folder_then_score_folders_end_to_end() {
    let dir = Scratch::new("end-to-end");
    let train = training_folder(&dir);
    let model = dir.0.join("tshirt.gcm");
    let out = gradcon()
        .args(["train", "--images", s(&train), "--out", s(&model)])
        .args(["--epochs", "12", "--seed", "1", "--val-fraction", "0.1"])
        .output()
        .unwrap();
    let err = expect(out, 0);
    assert!(
        err.contains("gradcon: reading 200 files; skipped 1 file of another type (first: ")
            && err.contains("README.txt), 1 hidden entry, 1 symbolic link (not followed)"),
        "{err}"
    );
    let pin = Detector::load(&model)
        .unwrap()
        .provenance()
        .unwrap()
        .pin
        .clone();
    assert_eq!((pin.train_images, pin.val_images), (180, 20));

    let test = sample(Split::Test);
    for anomaly in [7u8, 6] {
        let chosen: Vec<usize> = test
            .indices_of_class(0)
            .into_iter()
            .chain(test.indices_of_class(anomaly))
            .collect();
        let normal: Vec<bool> = chosen.iter().map(|&i| test.labels()[i] == 0).collect();
        let set = test.take(&chosen).unwrap();
        let idx_file = dir.write(
            &format!("{anomaly}/test.idx"),
            &encode_idx_images(set.len(), 28, 28, set.images()).unwrap(),
        );
        for k in 0..set.len() {
            let plane = set.image(k);
            dir.write(
                &format!("{anomaly}/png/{k:03}.png"),
                &png_file(1, 28, plane),
            );
            dir.write(
                &format!("{anomaly}/jpeg/{k:03}.jpeg"),
                &grey_jpeg(28, 28, plane, 90),
            );
            let big = resize_lanczos_planes(plane, 1, 28, 28, 40, 40).unwrap();
            dir.write(&format!("{anomaly}/big/{k:03}.png"), &png_file(1, 40, &big));
            // The anomalib layout for `eval`: normal and anomalous folders, of mixed files.
            let kind = if normal[k] { "normal" } else { "abnormal" };
            match k % 3 {
                0 => dir.write(
                    &format!("{anomaly}/eval/{kind}/{k:03}.png"),
                    &png_file(3, 28, plane),
                ),
                1 => dir.write(
                    &format!("{anomaly}/eval/{kind}/{k:03}.jpg"),
                    &grey_jpeg(28, 28, plane, 95),
                ),
                _ => dir.write(
                    &format!("{anomaly}/eval/{kind}/{k:03}.png"),
                    &png_file(1, 40, &big),
                ),
            };
        }
        let base_csv = score(&model, &[&idx_file], &[]);
        let png_csv = score(&model, &[&dir.0.join(format!("{anomaly}/png"))], &[]);
        // The same scores; only the path and index columns differ.
        let numbers = |csv: &str| -> Vec<String> {
            csv.lines()
                .map(|l| l.splitn(3, ',').nth(2).unwrap().to_string())
                .collect()
        };
        assert_eq!(
            numbers(&png_csv),
            numbers(&base_csv),
            "PNG copies score like the IDX file"
        );
        let au = |csv: &str| auroc(&gradcon_column(csv, 200), &normal).unwrap();
        let base = au(&base_csv);
        let jpeg = au(&score(
            &model,
            &[&dir.0.join(format!("{anomaly}/jpeg"))],
            &[],
        ));
        let big = au(&score(
            &model,
            &[&dir.0.join(format!("{anomaly}/big"))],
            &[],
        ));
        eprintln!("class 0 against {anomaly}: AUROC IDX {base:.4}, JPEG {jpeg:.4}, 40x40 {big:.4}");
        assert!(base > 0.6, "the model learnt something: {base}");
        assert!(
            (jpeg - base).abs() <= 0.02,
            "JPEG {jpeg} against IDX {base}"
        );
        assert!((big - base).abs() <= 0.02, "40x40 {big} against IDX {base}");

        // eval on the anomalib layout, with a per-image CSV and a report.
        let eval_dir = dir.0.join(format!("{anomaly}/eval"));
        let per_image = dir.0.join(format!("{anomaly}/per-image.csv"));
        let report = dir.0.join(format!("{anomaly}/report"));
        let out = gradcon()
            .args(["eval", "--model", s(&model)])
            .args(["--normal-dir", s(&eval_dir.join("normal"))])
            .args(["--abnormal-dir", s(&eval_dir.join("abnormal"))])
            .args(["--per-image", s(&per_image), "--report", s(&report)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let got: f64 = stdout
            .split("AUROC GradCon ")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (got - base).abs() <= 0.02,
            "eval {got} against IDX {base}: {stdout}"
        );
        assert!(
            stdout.contains("precision") && stdout.contains("F1"),
            "{stdout}"
        );
        let rows = std::fs::read_to_string(&per_image).unwrap();
        assert_eq!(rows.lines().count(), 201, "a row per image and the header");
        assert!(rows.starts_with("path,index,truth,anomaly_score,anomalous,"));
        let truths = rows
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(2) == Some("1"))
            .count();
        assert_eq!(
            truths, 100,
            "the abnormal folder's images are the anomalous ones"
        );
        assert!(report.join("index.html").is_file());
    }
}

/// The images held out for validation are `round(0.25 n)` drawn by the protocol's seeded
/// hold-out (not the first ones in file order), both parts kept in file order: the model
/// file's pin digest equals the digest of that split, and another seed gives another split.
#[test]
fn the_validation_split_of_a_folder_is_the_seeded_draw() {
    let dir = Scratch::new("split");
    let test = sample(Split::Test);
    for k in 0..40 {
        dir.write(&format!("imgs/{k:02}.png"), &png_file(1, 28, test.image(k)));
    }
    let folder = dir.0.join("imgs");
    let list = collect_files(&[&folder]).unwrap();
    let d = load_files(&list.files, 1, 28, Fit::Stretch).unwrap().images;
    let split_digest = |seed: u64| {
        let mut s = holdout_split(&[0; 40], &[], 0, 0.25, seed);
        s.train.sort_unstable();
        s.val.sort_unstable();
        assert_eq!(s.val.len(), 10);
        (
            digest(&[&d.take(&s.train).unwrap(), &d.take(&s.val).unwrap()]),
            s.val,
        )
    };
    let first_ten: Vec<usize> = (0..10).collect();
    for seed in [5u64, 6] {
        let model = dir.0.join(format!("m{seed}.gcm"));
        let out = gradcon()
            .args([
                "--quiet",
                "train",
                "--images",
                s(&folder),
                "--out",
                s(&model),
            ])
            .args(["--epochs", "1", "--batch", "16", "--val-fraction", "0.25"])
            .args(["--seed", &seed.to_string()])
            .output()
            .unwrap();
        expect(out, 0);
        let pin = Detector::load(&model)
            .unwrap()
            .provenance()
            .unwrap()
            .pin
            .clone();
        let (want, val) = split_digest(seed);
        assert_ne!(val, first_ten, "seed {seed} holds out the first files");
        assert_eq!(pin.digest, want, "seed {seed}");
        assert_eq!((pin.train_images, pin.val_images), (30, 10));
    }
    assert_ne!(split_digest(5).1, split_digest(6).1);
}

#[test]
fn fit_modes_limits_and_usage_errors_name_the_file_or_option() {
    let dir = Scratch::new("errors");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/fashion-mnist-0.gcm");
    let test = sample(Split::Test);
    // A wide image: --fit changes the scores, each mode accepted by score.
    let wide: Vec<u8> = (0..28 * 56).map(|i| test.image(i % 2)[i % 784]).collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 56, 28);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&wide).unwrap();
    }
    let wide_png = dir.write("wide.png", &out);
    let by_fit: Vec<String> = ["stretch", "crop", "pad"]
        .iter()
        .map(|f| score(&model, &[&wide_png], &["--fit", f]))
        .collect();
    assert_eq!(
        by_fit[0],
        score(&model, &[&wide_png], &[]),
        "stretch is the default"
    );
    assert!(
        by_fit[0] != by_fit[1] && by_fit[1] != by_fit[2],
        "{by_fit:?}"
    );
    let run = |args: &[&str]| gradcon().args(args).output().unwrap();

    // --fit without --images, in train: a usage error naming --fit.
    let err = expect(
        run(&[
            "train",
            "--dataset",
            "fashion-mnist",
            "--class",
            "0",
            "--fit",
            "crop",
            "--out",
            s(&dir.0.join("x.gcm")),
        ]),
        2,
    );
    assert!(err.contains("--fit"), "{err}");
    let err = expect(
        run(&[
            "score",
            "--model",
            s(&model),
            "--fit",
            "squash",
            s(&wide_png),
        ]),
        2,
    );
    assert!(err.contains("--fit"), "{err}");

    // A folder with no images, and a path that does not exist: errors naming them.
    let empty = dir.0.join("empty");
    dir.write("empty/notes.txt", b"nothing");
    let err = expect(run(&["score", "--model", s(&model), s(&empty)]), 1);
    assert!(
        err.contains("empty") && err.contains("no image files") && err.contains("notes.txt"),
        "{err}"
    );
    let err = expect(
        run(&["score", "--model", s(&model), s(&dir.0.join("nope"))]),
        1,
    );
    assert!(err.contains("nope"), "{err}");

    // The resized total of a load: two files of 700 1x1 images (548,800 values each at
    // 28x28) pass one by one; the second takes the load past 1 Mi values, naming it.
    let idx = encode_idx_images(700, 1, 1, &[9; 700]).unwrap();
    dir.write("many/a.idx", &idx);
    dir.write("many/b.idx", &idx);
    score(&model, &[&dir.0.join("many/a.idx")], &[]);
    let err = expect(
        run(&[
            "--max-megapixels",
            "1",
            "score",
            "--model",
            s(&model),
            s(&dir.0.join("many")),
        ]),
        1,
    );
    assert!(
        err.contains("b.idx") && err.contains("--max-megapixels"),
        "{err}"
    );
    // A JPEG whose decoded pixels alone exceed the limit is refused before decoding.
    let huge = dir.write(
        "huge/flat.jpg",
        &grey_jpeg(1100, 1000, &vec![128; 1_100_000], 50),
    );
    assert!(std::fs::metadata(&huge).unwrap().len() < 100_000);
    let err = expect(
        run(&[
            "--max-megapixels",
            "1",
            "score",
            "--model",
            s(&model),
            s(&huge),
        ]),
        1,
    );
    assert!(
        err.contains("flat.jpg") && err.contains("--max-megapixels"),
        "{err}"
    );
    // A file above --max-file-mb found in a folder: refused from its size, naming it.
    let mut rng = core_tensor::Rng::seed_from_u64(3);
    let noise: Vec<u8> = (0..1500 * 1500).map(|_| rng.below(256) as u8).collect();
    let mut big = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut big, 1500, 1500);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&noise).unwrap();
    }
    assert!(big.len() > 2 << 20); // the model file itself takes 1.4 MB
    dir.write("large/noise.png", &big);
    let err = expect(
        run(&[
            "--max-file-mb",
            "2",
            "score",
            "--model",
            s(&model),
            s(&dir.0.join("large")),
        ]),
        1,
    );
    assert!(
        err.contains("noise.png") && err.contains("--max-file-mb"),
        "{err}"
    );
    // A grey IDX file for an RGB model is refused naming the file; a grey PNG is converted.
    let grey_png = dir.write("one/grey.png", &png_file(1, 28, test.image(0)));
    let rgb_model = dir.0.join("rgb.gcm");
    let out = gradcon()
        .args([
            "--quiet",
            "train",
            "--images",
            s(&grey_png),
            s(&grey_png),
            "--channels",
            "3",
        ])
        .args([
            "--epochs",
            "1",
            "--val-fraction",
            "0",
            "--out",
            s(&rgb_model),
        ])
        .output()
        .unwrap();
    expect(out, 0);
    assert_eq!(Detector::load(&rgb_model).unwrap().channels(), 3);
}
