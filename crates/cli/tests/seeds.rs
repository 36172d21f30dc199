//! `gradcon seeds`: the spread over protocol runs that differ only in their seed, against the
//! mean and sample standard deviation computed here from the runs' own results.json; its
//! refusals; and its page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-seeds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gradcon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcon"))
}

/// Classes 0 and 1 of the protocol on the shipped sample, with `extra` options.
fn protocol(out: &Path, extra: &[&str]) {
    let o = gradcon()
        .args(["--quiet", "--threads", "1", "protocol"])
        .args(["--dataset", "fashion-mnist", "--classes", "0,1"])
        .arg("--data-dir")
        .arg(repo().join("data/fashion-mnist-sample"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn seeds(args: &[&Path], extra: &[&str]) -> Output {
    gradcon()
        .arg("seeds")
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Mean and sample standard deviation, written out here independently of the library.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

#[test]
fn the_spread_over_seeds_matches_the_runs_and_refuses_what_is_not_a_seed_apart() {
    let root = scratch("runs");
    let (a, b, c) = (root.join("s0"), root.join("s1"), root.join("s2"));
    protocol(&a, &["--epochs", "2", "--seed", "0"]);
    protocol(&b, &["--epochs", "2", "--seed", "1"]);
    // A longer run, compared at 2 epochs through its --eval-at evaluation.
    protocol(&c, &["--epochs", "3", "--eval-at", "2,3", "--seed", "2"]);

    let out = root.join("spread.json");
    let page = root.join("page");
    let o = seeds(
        &[&a, &b, &c],
        &[
            "--epochs",
            "2",
            "--json",
            out.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spread = json(&out);
    assert_eq!(spread["seeds"], serde_json::json!([0, 1, 2]));
    assert_eq!(spread["epochs"], 2);
    // Each run's class AUROCs after 2 epochs, from its results.json.
    let at_two = |dir: &Path, class: usize, score: &str| -> f64 {
        let r = json(&dir.join("results.json"));
        let c = &r["classes"][class];
        if r["config"]["epochs"] == 2 {
            c["auroc"][score].as_f64().unwrap()
        } else {
            let b = c["budgets"].as_array().unwrap();
            let b = b.iter().find(|b| b["epoch"] == 2).unwrap();
            b["auroc"][score].as_f64().unwrap()
        }
    };
    for class in 0..2 {
        for score in ["gradcon", "recon", "grad"] {
            let v: Vec<f64> = [&a, &b, &c]
                .iter()
                .map(|d| at_two(d, class, score))
                .collect();
            let (m, sd) = mean_sd(&v);
            let got = &spread["classes"][class]["auroc"][score];
            assert!((got["mean"].as_f64().unwrap() - m).abs() < 1e-12, "{score}");
            assert!((got["sd"].as_f64().unwrap() - sd).abs() < 1e-12, "{score}");
        }
    }
    let means: Vec<f64> = [&a, &b, &c]
        .iter()
        .map(|d| (at_two(d, 0, "gradcon") + at_two(d, 1, "gradcon")) / 2.0)
        .collect();
    let (m, sd) = mean_sd(&means);
    assert!((spread["mean"]["gradcon"]["mean"].as_f64().unwrap() - m).abs() < 1e-12);
    assert!((spread["mean"]["gradcon"]["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
    // The terminal table and the page say the same, with the authors' figure.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{m:.4} ± {sd:.4}")), "{text}");
    assert!(text.contains("0.934 on fashion-mnist"), "{text}");
    let html = std::fs::read_to_string(page.join("index.html")).unwrap();
    assert!(html.contains(&format!("{m:.4} &plusmn; {sd:.4}")));
    assert!(html.contains("<strong>0.934</strong> on fashion-mnist"));
    assert!(html.contains("<th>seed 2</th>"));

    // Refusals, each naming what is wrong.
    let refused = |args: &[&Path], extra: &[&str], expect: &str| {
        let o = seeds(args, extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(expect), "{expect:?} not in {err}");
    };
    // The same seed twice is not a spread.
    refused(&[&a, &a], &[], "both ran seed 0");
    // Runs of other lengths without --epochs, and a length one run has no result at.
    refused(&[&a, &c], &[], "give --epochs");
    refused(
        &[&a, &c],
        &["--epochs", "3"],
        "has no result after 3 epochs",
    );
    // Another option than the seed.
    let d = root.join("alpha");
    protocol(&d, &["--epochs", "2", "--seed", "3", "--alpha", "0.1"]);
    refused(&[&a, &d], &[], "--alpha was 0.03, now 0.1");
    // Other classes.
    let e = root.join("one-class");
    std::fs::create_dir_all(&e).unwrap();
    std::fs::copy(b.join("class_0.json"), e.join("class_0.json")).unwrap();
    refused(&[&a, &e], &[], "holds classes [0]");
    // One folder is a usage error of the command line.
    let o = seeds(&[&a], &[]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(root);
}
