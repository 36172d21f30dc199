//! Misuse of the `gradcon` command: reruns with other inputs are refused naming what changed,
//! numbers are checked at the door, inputs are bounded, killed writes leave nothing behind,
//! and a second writer of one output is stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use detector::data::idx::{encode_idx_images, gzip};
use detector::data::{load_fashion_mnist, Split};

fn gradcon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcon"))
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-misuse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` test images of the shipped sample from `first` on, as an IDX file `name` in `dir`.
fn images(dir: &Path, name: &str, first: usize, n: usize) -> PathBuf {
    let d = load_fashion_mnist(&sample_dir(), Split::Test).unwrap();
    let bytes = encode_idx_images(n, 28, 28, &d.images()[first * 784..(first + n) * 784]).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    gradcon().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit code and stderr, asserting the code.
fn expect(o: Output, code: i32) -> String {
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    err
}

/// `train` on `images` into `out`, one epoch of batches of 16 unless `extra` says otherwise.
fn train(images: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--quiet", "train", "--images", s(images), "--out", s(out)];
    for (flag, default) in [("--epochs", "1"), ("--batch", "16")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_rerun_with_other_images_or_options_is_refused_naming_the_difference() {
    let dir = scratch("rerun");
    let (a, b) = (images(&dir, "a.idx", 0, 48), images(&dir, "b.idx", 48, 48));
    let out = dir.join("m.gcm");
    expect(train(&a, &out, &[]), 0);
    let first = std::fs::read(&out).unwrap();
    assert!(
        !out.with_extension("ckpt").exists(),
        "the checkpoint is removed"
    );

    let err = expect(train(&b, &out, &[]), 2);
    assert!(err.contains("the training images differ"), "{err}");
    let err = expect(train(&a, &out, &["--lr", "0.01"]), 2);
    assert!(err.contains("--lr was 0.001, now 0.01"), "{err}");
    let err = expect(train(&a, &out, &["--epochs", "2"]), 2);
    assert!(err.contains("--epochs was 1, now 2"), "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        first,
        "the refused runs left the model"
    );

    // The same run again: nothing to do, said so.
    let o = gradcon()
        .args([
            "train",
            "--images",
            s(&a),
            "--out",
            s(&out),
            "--epochs",
            "1",
        ])
        .args(["--batch", "16"])
        .output()
        .unwrap();
    let err = expect(o, 0);
    assert!(err.contains("up to date"), "{err}");

    // --fresh trains on B.
    expect(train(&b, &out, &["--fresh"]), 0);
    assert_ne!(std::fs::read(&out).unwrap(), first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_kept_checkpoint_resumes_and_a_larger_epochs_extends_the_run() {
    let dir = scratch("extend");
    let a = images(&dir, "a.idx", 0, 48);
    let (two, one_then_two) = (dir.join("two.gcm"), dir.join("m.gcm"));
    expect(train(&a, &two, &["--epochs", "2"]), 0);
    expect(train(&a, &one_then_two, &["--keep-checkpoint"]), 0);
    let o = gradcon()
        .args(["train", "--images", s(&a), "--out", s(&one_then_two)])
        .args(["--epochs", "2", "--batch", "16", "--keep-checkpoint"])
        .output()
        .unwrap();
    let err = expect(o, 0);
    assert!(err.contains("resuming from"), "{err}");
    assert_eq!(
        std::fs::read(&two).unwrap(),
        std::fs::read(&one_then_two).unwrap(),
        "one epoch extended by one equals two epochs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_protocol_folder_refuses_another_dataset_or_options() {
    let dir = scratch("protocol");
    // The sample's files, also as an "MNIST" folder: same file names, another split rule.
    let mnist = dir.join("data/mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    for f in std::fs::read_dir(sample_dir()).unwrap().flatten() {
        std::fs::copy(f.path(), mnist.join(f.file_name())).unwrap();
    }
    let out = dir.join("P");
    let protocol = |dataset: &str, data: &Path, extra: &[&str]| {
        let mut args = vec![
            "--quiet",
            "protocol",
            "--dataset",
            dataset,
            "--data-dir",
            s(data),
            "--out",
            s(&out),
            "--classes",
            "0",
            "--epochs",
            "1",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    expect(protocol("fashion-mnist", &sample_dir(), &[]), 0);
    assert!(
        !out.join("class_0.ckpt").exists(),
        "the class checkpoint is removed"
    );
    let results = std::fs::read_to_string(out.join("results.json")).unwrap();
    let err = expect(protocol("mnist", &dir.join("data"), &[]), 2);
    assert!(
        err.contains("class_0.json") && err.contains("mnist class 0"),
        "{err}"
    );
    let err = expect(
        protocol("fashion-mnist", &sample_dir(), &["--alpha", "0.1"]),
        2,
    );
    assert!(err.contains("--alpha was 0.03, now 0.1"), "{err}");
    // The same run: reused, and its figures are the same to the last digit.
    expect(protocol("fashion-mnist", &sample_dir(), &[]), 0);
    let again = std::fs::read_to_string(out.join("results.json")).unwrap();
    let classes = |t: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(t).unwrap()["classes"].clone()
    };
    assert_eq!(classes(&results), classes(&again));
    expect(protocol("mnist", &dir.join("data"), &["--fresh"]), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn numbers_are_checked_at_the_door_with_usage_errors_naming_the_option() {
    let dir = scratch("numbers");
    let a = images(&dir, "a.idx", 0, 16);
    let out = dir.join("m.gcm");
    for (flag, value) in [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "-1"),
        ("--lr", "0"),
        ("--alpha", "nan"),
        ("--alpha", "-0.5"),
        ("--epochs", "0"),
        ("--val-fraction", "1.5"),
        ("--val-fraction", "inf"),
        ("--val-fraction", "1"),
        ("--batch", "0"),
        ("--sat-spread", "nan"),
    ] {
        let err = expect(train(&a, &out, &[flag, value]), 2);
        assert!(
            err.starts_with(&format!("gradcon: error: {flag} ")),
            "{flag} {value}: {err}"
        );
        assert!(!out.exists(), "{flag} {value} wrote a model");
    }
    let err = expect(run(&["--threads", "0", "bench"]), 2);
    assert!(err.contains("--threads"), "{err}");
    let err = expect(run(&["bench", "--steps", "0"]), 2);
    assert!(err.contains("--steps"), "{err}");
    for eval_at in ["0", "21", "5,0"] {
        let err = expect(
            run(&[
                "protocol",
                "--dataset",
                "mnist",
                "--out",
                "x",
                "--epochs",
                "20",
                "--eval-at",
                eval_at,
            ]),
            2,
        );
        assert!(
            err.contains("--eval-at") && err.contains("--epochs"),
            "{eval_at}: {err}"
        );
    }
    let err = expect(run(&["bench", "--calls", "0"]), 2);
    assert!(err.contains("--calls"), "{err}");
    // More threads than cores: as many workers as cores, and a note saying so.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 200 {
        let o = run(&[
            "--threads",
            "200",
            "bench",
            "--steps",
            "1",
            "--images",
            "64",
            "--calls",
            "10",
            "--json",
        ]);
        let err = expect(o.clone(), 0);
        assert!(
            err.contains(&format!(
                "--threads 200: this machine runs {cores} threads at once"
            )),
            "{err}"
        );
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(json["threads"], cores, "{json}");
    }
    let sample = sample_dir();
    let args = [
        "train",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        s(&sample),
    ];
    let err = expect(
        gradcon()
            .args(args)
            .args(["--class", "10", "--out", s(&out)])
            .output()
            .unwrap(),
        2,
    );
    assert!(err.contains("--class 10"), "{err}");
    let err = expect(
        gradcon()
            .args(args)
            .args(["--out", s(&out)])
            .output()
            .unwrap(),
        2,
    );
    assert!(err.contains("--class"), "{err}");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/fashion-mnist-0.gcm");
    let err = expect(
        run(&["score", "--model", s(&model), s(&a), "--beta", "nan"]),
        2,
    );
    assert!(err.contains("--beta"), "{err}");
    // Outputs that cannot be a model file are refused before any training.
    for bad in [dir.join("m.ckpt"), dir.clone()] {
        let err = expect(train(&a, &bad, &["--epochs", "1000"]), 2);
        assert!(err.contains("--out"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn endless_streams_and_pixel_bombs_are_refused() {
    let dir = scratch("bounded");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/fashion-mnist-0.gcm");
    // An endless stream as the images and as the model: read up to the cap, then refused.
    let err = expect(
        run(&[
            "--max-file-mb",
            "4",
            "score",
            "--model",
            s(&model),
            "/dev/zero",
        ]),
        1,
    );
    assert!(
        err.contains("/dev/zero") && err.contains("--max-file-mb"),
        "{err}"
    );
    let err = expect(
        run(&[
            "--max-file-mb",
            "4",
            "score",
            "--model",
            "/dev/zero",
            s(&model),
        ]),
        1,
    );
    assert!(err.contains("/dev/zero"), "{err}");
    // A regular file above the cap is refused from its size.
    let err = expect(
        run(&[
            "--max-file-mb",
            "1",
            "score",
            "--model",
            s(&model),
            s(&model),
        ]),
        1,
    );
    assert!(
        err.contains("size of") && err.contains("fashion-mnist-0.gcm"),
        "{err}"
    );
    // Ten million 1x1 images (10 kB gzipped) would need 7.8 GB at 28x28.
    let bomb = dir.join("bomb.idx.gz");
    let n = 10_000_000;
    std::fs::write(
        &bomb,
        gzip(&encode_idx_images(n, 1, 1, &vec![7; n]).unwrap()),
    )
    .unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 100_000);
    let err = expect(run(&["score", "--model", s(&model), s(&bomb)]), 1);
    assert!(
        err.contains("bomb.idx.gz") && err.contains("--max-megapixels"),
        "{err}"
    );
    // Scoring streams its input in batches (of 4096 images), but the limit is on the whole
    // input: 4096 images, then 2000 more (6096 x 784 values, over 4 x 2^20), are refused at
    // the second file, after the first batch was scored, with no output.
    let parts: Vec<PathBuf> = [4096, 2000]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p = dir.join(format!("part{i}.idx"));
            std::fs::write(&p, encode_idx_images(n, 28, 28, &vec![7; n * 784]).unwrap()).unwrap();
            p
        })
        .collect();
    let out = dir.join("scores.csv");
    let mut args = vec![
        "--max-megapixels",
        "4",
        "score",
        "--model",
        s(&model),
        "--out",
        s(&out),
    ];
    args.extend(parts.iter().map(|p| s(p)));
    let err = expect(run(&args), 1);
    assert!(
        err.contains("part1.idx") && err.contains("--max-megapixels"),
        "{err}"
    );
    assert!(!out.exists(), "a refused input left a partial output");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn killed_writes_leave_nothing_and_a_second_writer_is_stopped() {
    let dir = scratch("leftovers");
    let a = images(&dir, "a.idx", 0, 160);
    let out = dir.join("m.gcm");
    // What a kill during an atomic write leaves behind.
    let stale = [
        dir.join(".m.gcm.tmp-999999-0"),
        dir.join(".m.ckpt.tmp-999999-3"),
    ];
    for p in &stale {
        std::fs::write(p, b"half a file").unwrap();
    }
    // A long run holds the lock of m.gcm ...
    let mut first = gradcon()
        .args(["--quiet", "train", "--images", s(&a), "--out", s(&out)])
        .args(["--epochs", "1000", "--batch", "8"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ckpt = out.with_extension("ckpt");
    let start = Instant::now();
    while !ckpt.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in &stale {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    // ... so a second writer is refused at once.
    let err = expect(train(&a, &out, &["--epochs", "1000", "--batch", "8"]), 1);
    assert!(err.contains("another gradcon process"), "{err}");
    first.kill().unwrap(); // SIGKILL: the OS releases the lock
    first.wait().unwrap();
    // The lock died with the process: the same run resumes.
    let o = gradcon()
        .args(["train", "--images", s(&a), "--out", s(&out)])
        .args(["--epochs", "1", "--batch", "8", "--fresh"])
        .output()
        .unwrap();
    expect(o, 0);
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_demo_folder_is_removed_by_the_next_demo() {
    let tmp = scratch("demo-tmp");
    let stale = tmp.join("gradcon-demo-999999999");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::File::create(stale.join("class_0.ckpt"))
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let o = gradcon()
        .env("TMPDIR", &tmp)
        .args(["--quiet", "demo", "--epochs", "1"])
        .output()
        .unwrap();
    expect(o, 0);
    assert!(!stale.exists(), "the stale demo folder is still there");
    let left = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(left, 0, "the demo left its own folder");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_three_channel_model_on_grey_images_names_the_file() {
    let dir = scratch("channels");
    let a = images(&dir, "a.idx", 0, 16);
    let rgb = dir.join("rgb.gcm");
    let err = expect(train(&a, &rgb, &["--channels", "3"]), 1);
    assert!(err.contains("a.idx") && err.contains("3"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JPEG on which the decoder crate panics (found by fuzzing): an error naming the file,
/// exit code 1, and no panic message or backtrace on stderr.
#[test]
fn a_decoder_panic_is_an_error_naming_the_file_and_nothing_more() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/jpeg");
    let crash = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("crash-")
        })
        .expect("a crashing input in the jpeg corpus");
    let dir = scratch("decoder-panic");
    let jpg = dir.join("broken.jpg");
    std::fs::copy(&crash, &jpg).unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/fashion-mnist-0.gcm");
    let err = expect(run(&["score", "--model", s(&model), s(&jpg)]), 1);
    assert!(
        err.contains("broken.jpg") && err.contains("bad JPEG"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
