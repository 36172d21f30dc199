//! Every subcommand with every numeric option at its boundaries and beyond (zero, one,
//! negative, NaN, infinities, huge, overflowing): no probe may panic (exit code 101). Each
//! probe runs on tiny data under a time limit; a probe still working at the limit (a valid,
//! long run) is stopped and counts as not panicking.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use detector::data::idx::{encode_idx_images, encode_idx_labels};
use detector::data::{load_fashion_mnist, Split};

const LIMIT: Duration = Duration::from_secs(3);

const VALUES: [&str; 10] = [
    "0",
    "1",
    "-1",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "256",
    "1e308",
    "18446744073709551616",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The probes: a base command line (tiny work) and the numeric options to vary in it.
fn probes(dir: &Path) -> Vec<(Vec<String>, Vec<&'static str>)> {
    let sample = repo().join("data/fashion-mnist-sample");
    let model = repo().join("data/models/fashion-mnist-0.gcm");
    let d = load_fashion_mnist(&sample, Split::Test).unwrap();
    let images = dir.join("images.idx");
    std::fs::write(
        &images,
        encode_idx_images(16, 28, 28, &d.images()[..16 * 784]).unwrap(),
    )
    .unwrap();
    let labels = dir.join("labels.idx");
    std::fs::write(&labels, encode_idx_labels(&d.labels()[..16]).unwrap()).unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let train_options = vec![
        "--alpha",
        "--lr",
        "--batch",
        "--epochs",
        "--patience",
        "--val-fraction",
        "--seed",
        "--restarts",
        "--sat-spread",
        "--sat-derivative",
        "--sat-stall",
        "--sat-until",
        "--select-every",
    ];
    let mut train = train_options.clone();
    train.extend([
        "--channels",
        "--threads",
        "--max-file-mb",
        "--max-megapixels",
    ]);
    let mut protocol = train_options;
    protocol.extend(["--beta", "--classes", "--eval-at"]);
    vec![
        (
            words(&["demo", "--epochs", "1"]),
            vec!["--epochs", "--seed"],
        ),
        (
            [
                words(&["train", "--images"]),
                vec![p(&images)],
                words(&["--epochs", "1", "--batch", "8"]),
            ]
            .concat(),
            train,
        ),
        (
            [
                words(&["train", "--dataset", "fashion-mnist", "--data-dir"]),
                vec![p(&sample)],
                words(&["--class", "0", "--epochs", "1"]),
            ]
            .concat(),
            vec!["--class"],
        ),
        (
            [
                words(&["score", "--model"]),
                vec![p(&model), p(&images), "--labels".into(), p(&labels)],
                words(&["--normal-class", "0"]),
            ]
            .concat(),
            vec!["--normal-class", "--beta"],
        ),
        (
            [
                words(&["eval", "--dataset", "fashion-mnist", "--data-dir"]),
                vec![p(&sample), "--model".into(), p(&model)],
                words(&["--class", "0"]),
            ]
            .concat(),
            vec!["--class", "--seed", "--beta"],
        ),
        (
            [
                words(&["protocol", "--dataset", "fashion-mnist", "--data-dir"]),
                vec![p(&sample)],
                words(&["--classes", "0", "--epochs", "1"]),
            ]
            .concat(),
            protocol,
        ),
        (
            // Two folders without class results: the option is checked before they are read.
            words(&[
                "seeds",
                dir.to_str().unwrap(),
                dir.to_str().unwrap(),
                "--epochs",
                "1",
            ]),
            vec!["--epochs"],
        ),
        (
            words(&["bench", "--steps", "1", "--images", "64", "--calls", "10"]),
            vec!["--channels", "--steps", "--images", "--calls", "--batch"],
        ),
    ]
}

/// Runs one probe; `Some(code)` when it ended in time (`None`: stopped at the limit).
fn run_probe(args: &[String], out: &Path) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradcon"))
        .arg("--quiet")
        .args(args)
        .args(
            args.iter()
                .any(|a| a == "train" || a == "protocol")
                .then(|| ["--out".to_string(), out.to_str().unwrap().to_string()])
                .into_iter()
                .flatten(),
        )
        .env("TMPDIR", out.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn no_option_value_reaches_a_panic() {
    let dir = std::env::temp_dir().join(format!("gradcon-boundaries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases: Vec<Vec<String>> = Vec::new();
    for (base, options) in probes(&dir) {
        for option in options {
            for value in VALUES {
                let mut args = base.clone();
                // Replace the option's value in the base when it has one, else add it.
                match args.iter().position(|a| a == option) {
                    Some(i) => args[i + 1] = value.to_string(),
                    None if matches!(
                        option,
                        "--threads" | "--max-file-mb" | "--max-megapixels"
                    ) =>
                    {
                        args.insert(0, value.to_string());
                        args.insert(0, option.to_string());
                    }
                    None => args.extend([option.to_string(), value.to_string()]),
                }
                cases.push(args);
            }
        }
    }
    let next = AtomicUsize::new(0);
    let panics = Mutex::new(Vec::new());
    let stopped = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(args) = cases.get(i) else { break };
                let out = dir.join(format!("probe-{i}/out.gcm"));
                match run_probe(args, &out) {
                    Some(101) => panics.lock().unwrap().push(args.join(" ")),
                    None => {
                        stopped.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                }
            });
        }
    });
    eprintln!(
        "{} probes in {:.1} s, {} stopped at the {} s limit",
        cases.len(),
        started.elapsed().as_secs_f64(),
        stopped.load(Ordering::Relaxed),
        LIMIT.as_secs()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let panics = panics.into_inner().unwrap();
    assert!(panics.is_empty(), "panicked (exit 101): {panics:#?}");
}
