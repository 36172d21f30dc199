//! The `gradcon` binary end to end: resuming after SIGKILL, thread-count independence, usage
//! errors, and exports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use detector::data::idx::encode_idx_images;
use detector::data::{load_fashion_mnist, Split};

fn gradcon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcon"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 320 images of the shipped sample as an IDX file.
fn images_file(dir: &Path) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample");
    let d = load_fashion_mnist(&sample, Split::Test).unwrap();
    let n = 320;
    let bytes = encode_idx_images(n, 28, 28, &d.images()[..n * 784]).unwrap();
    let path = dir.join("images.idx");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn train_args(images: &Path, out: &Path, epochs: usize) -> Vec<String> {
    [
        "--quiet",
        "train",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        &epochs.to_string(),
        "--seed",
        "3",
        "--val-fraction",
        "0.2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn train_makes_the_folder_of_its_output() {
    let dir = scratch("nested-out");
    let images = images_file(&dir);
    let out = dir.join("runs/first/model.gcm");
    run_ok(gradcon().args(train_args(&images, &out, 1)));
    assert!(out.is_file(), "the model is written");
    assert!(
        !out.with_extension("ckpt").exists(),
        "a finished run removes its checkpoint"
    );
    // A folder that cannot be made: an error naming it, before any training.
    let blocked = dir.join("images.idx/model.gcm");
    let res = gradcon()
        .args(train_args(&images, &blocked, 1))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success() && err.contains("images.idx"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn killed_training_resumes_bit_identical_and_threads_do_not_matter() {
    let dir = scratch("resume");
    let images = images_file(&dir);
    let epochs = 4;

    let whole = dir.join("whole.gcm");
    run_ok(
        gradcon()
            .args(["--threads", "2"])
            .args(train_args(&images, &whole, epochs)),
    );

    let one_thread = dir.join("one.gcm");
    run_ok(
        gradcon()
            .args(["--threads", "1"])
            .args(train_args(&images, &one_thread, epochs)),
    );
    assert!(
        std::fs::read(&whole).unwrap() == std::fs::read(&one_thread).unwrap(),
        "1 and 2 threads gave different models"
    );

    // Kill in the middle of the second epoch (after the first checkpoint appeared).
    let killed = dir.join("killed.gcm");
    let ckpt = killed.with_extension("ckpt");
    let mut child = gradcon()
        .args(["--threads", "2"])
        .args(train_args(&images, &killed, epochs))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ckpt.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let first_epoch = start.elapsed();
    std::thread::sleep(first_epoch / 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!killed.exists(), "the run finished before it was killed");
    run_ok(
        gradcon()
            .args(["--threads", "2"])
            .args(train_args(&images, &killed, epochs)),
    );
    assert!(
        std::fs::read(&whole).unwrap() == std::fs::read(&killed).unwrap(),
        "the resumed run differs from the uninterrupted one"
    );

    // Export and score from the exported file give the same scores as from the model.
    let st = dir.join("whole.safetensors");
    run_ok(
        gradcon()
            .args(["export", "--model"])
            .arg(&whole)
            .arg("--out")
            .arg(&st),
    );
    let score = |model: &Path| {
        let out = gradcon()
            .args(["score", "--model"])
            .arg(model)
            .arg(&images)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b) = (score(&whole), score(&st));
    assert_eq!(a.lines().count(), 321);
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_and_runtime_errors_have_their_exit_codes() {
    let out = gradcon().args(["train", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = scratch("errors");
    let bad = dir.join("bad.gcm");
    std::fs::write(&bad, b"not a model").unwrap();
    let out = gradcon()
        .args(["score", "--model"])
        .arg(&bad)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("bad.gcm"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}
