//! Classes fanned out as separate jobs: `protocol --shard` processes running at once into one
//! folder, `gradcon merge`, and the job-array wrapper `deploy/gradcon-task.sh` (driven here by
//! setting the schedulers' index variables; no scheduler runs in the tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-fanout-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gradcon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradcon"))
}

/// `protocol` on the shipped sample: 2 epochs evaluated at 1 and 2, plus `extra`.
fn protocol(out: &Path, extra: &[&str]) -> Command {
    let mut c = gradcon();
    c.args([
        "--quiet",
        "--threads",
        "1",
        "protocol",
        "--dataset",
        "fashion-mnist",
    ])
    .arg("--data-dir")
    .arg(repo().join("data/fashion-mnist-sample"))
    .arg("--out")
    .arg(out)
    .args(["--epochs", "2", "--eval-at", "1,2"])
    .args(extra);
    c
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The results without the fields that may differ between runs of the same work.
fn comparable(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let top = v.as_object_mut().unwrap();
    top.remove("wall_seconds");
    top.remove("threads");
    for class in top["classes"].as_array_mut().unwrap() {
        class.as_object_mut().unwrap().remove("seconds");
    }
    v
}

#[test]
fn concurrent_shards_merge_to_the_single_process_result() {
    let single = scratch("single");
    ok(protocol(&single, &["--classes", "0,1"]).output().unwrap());
    let shared = scratch("shared");
    // Two processes at once, one class each, into one folder.
    let children: Vec<_> = ["0", "1"]
        .iter()
        .map(|c| {
            protocol(&shared, &["--classes", c, "--shard", "--threads", "1"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert!(shared.join("class_0.json").exists() && shared.join("class_1.json").exists());
    assert!(
        !shared.join("results.json").exists(),
        "a --shard run wrote results.json"
    );
    let merged = ok(gradcon().arg("merge").arg(&shared).output().unwrap());
    assert!(String::from_utf8_lossy(&merged.stdout).contains("mean"));
    let (a, b) = (
        comparable(&single.join("results.json")),
        comparable(&shared.join("results.json")),
    );
    assert_eq!(a, b, "merged shards differ from the single-process run");
    assert_eq!(a["budgets"].as_array().unwrap().len(), 2);

    // A class trained with another seed is refused, naming the option and the files.
    ok(
        protocol(&shared, &["--classes", "2", "--shard", "--seed", "1"])
            .output()
            .unwrap(),
    );
    let refused = gradcon().arg("merge").arg(&shared).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("class_2.json") && err.contains("--seed was 0, now 1"),
        "{err}"
    );
    // ... and one of another data set.
    std::fs::remove_file(shared.join("class_2.json")).unwrap();
    let text = std::fs::read_to_string(shared.join("class_1.json")).unwrap();
    std::fs::write(
        shared.join("class_5.json"),
        text.replace("\"dataset\": \"fashion-mnist\"", "\"dataset\": \"mnist\""),
    )
    .unwrap();
    let refused = gradcon().arg("merge").arg(&shared).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("the data set is mnist"), "{err}");
    // An empty folder says so.
    let empty = scratch("empty");
    let refused = gradcon().arg("merge").arg(&empty).output().unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no class results"));
    for d in [single, shared, empty] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn task(vars: &[(&str, &str)], out: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg(repo().join("deploy/gradcon-task.sh"))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env("GRADCON", env!("CARGO_BIN_EXE_gradcon"))
        .args(["--dataset", "fashion-mnist", "--data-dir"])
        .arg(repo().join("data/fashion-mnist-sample"))
        .arg("--out")
        .arg(out)
        .args(["--epochs", "1", "--quiet"])
        .args(extra);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn classes_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_job_array_wrapper_maps_the_task_index_to_a_class() {
    let out = scratch("wrapper");
    ok(task(&[("SLURM_ARRAY_TASK_ID", "3")], &out, &[]));
    assert_eq!(classes_in(&out), ["class_3.json"]);
    ok(task(&[("JOB_COMPLETION_INDEX", "0")], &out, &[]));
    assert_eq!(classes_in(&out), ["class_0.json", "class_3.json"]);
    // A list of classes and an index counting from 1 (Slurm's --array=1-N).
    ok(task(
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("GRADCON_CLASSES", "7,9"),
            ("GRADCON_INDEX_BASE", "1"),
        ],
        &out,
        &[],
    ));
    assert_eq!(
        classes_in(&out),
        ["class_0.json", "class_3.json", "class_9.json"]
    );
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let refusals: [(Vars, &[&str], &str); 5] = [
        (&[], &[], "no task index"),
        (&[("SLURM_ARRAY_TASK_ID", "10")], &[], "past the 10 classes"),
        (
            &[("SLURM_ARRAY_TASK_ID", "1"), ("JOB_COMPLETION_INDEX", "2")],
            &[],
            "disagree",
        ),
        (&[("JOB_COMPLETION_INDEX", "x")], &[], "whole numbers"),
        (
            &[("JOB_COMPLETION_INDEX", "1")],
            &["--classes", "4"],
            "--classes comes from the task index",
        ),
    ];
    for (vars, extra, says) in refusals {
        let o = task(vars, &out, extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{vars:?}: {err}");
        assert!(err.contains(says), "{vars:?}: {err}");
    }
    assert_eq!(classes_in(&out).len(), 3, "a refused task wrote something");
    let _ = std::fs::remove_dir_all(out);
}
