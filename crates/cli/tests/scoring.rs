//! `gradcon score` gives an image the same bits alone, among other images of a file or a
//! folder in any order, on any number of threads and on every SIMD path; and a model path that
//! is a folder, or a file that is no model, is refused as such.

use std::path::{Path, PathBuf};
use std::process::Command;

use core_tensor::{Isa, Rng};
use detector::data::idx::encode_idx_images;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/fashion-mnist-0.gcm"
);
/// Random images scored.
const IMAGES: usize = 11;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcon-scoring-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `gradcon --threads T score --model MODEL inputs...` on the path `isa`; the CSV rows' score
/// columns (`gradcon,recon,grad`, exactly as printed: the shortest decimal that reads back to
/// the same double, so equal text is equal bits).
fn score(isa: Isa, threads: usize, inputs: &[&Path]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gradcon"))
        .env("GRADCON_ISA", isa.to_string())
        .args([
            "--quiet",
            "--threads",
            &threads.to_string(),
            "score",
            "--model",
            MODEL,
        ])
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "score {inputs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.split(',').skip(4).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn an_image_scores_the_same_alone_in_a_file_and_in_a_folder() {
    let dir = scratch("bits");
    let mut rng = Rng::seed_from_u64(20);
    let pixels: Vec<u8> = (0..IMAGES * 784)
        .map(|_| (rng.next_u64() % 256) as u8)
        .collect();
    let all = dir.join("all.idx");
    std::fs::write(&all, encode_idx_images(IMAGES, 28, 28, &pixels).unwrap()).unwrap();
    // Each image in a file of its own, in a folder (read in name order: one.00, one.01, ...).
    let folder = dir.join("singles");
    std::fs::create_dir_all(&folder).unwrap();
    let singles: Vec<PathBuf> = (0..IMAGES)
        .map(|i| {
            let p = folder.join(format!("one{i:02}.idx"));
            let bytes = encode_idx_images(1, 28, 28, &pixels[i * 784..][..784]).unwrap();
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    // Another arrangement: backwards, the first image twice, the whole file in the middle.
    let mut mixed: Vec<&Path> = singles.iter().rev().map(PathBuf::as_path).collect();
    mixed.insert(4, &all);
    mixed.push(&singles[0]);
    for isa in Isa::supported() {
        let alone: Vec<String> = singles
            .iter()
            .map(|p| score(isa, 1, &[p]).remove(0))
            .collect();
        for threads in [1, 2, 5] {
            let what = format!("{isa}, {threads} threads");
            assert_eq!(
                score(isa, threads, &[&all]),
                alone,
                "{what}: the file of all"
            );
            assert_eq!(score(isa, threads, &[&folder]), alone, "{what}: the folder");
            let mut want: Vec<String> = alone.iter().rev().cloned().collect();
            want.splice(4..4, alone.iter().cloned());
            want.push(alone[0].clone());
            assert_eq!(score(isa, threads, &mixed), want, "{what}: mixed");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_model_that_is_a_folder_or_no_model_is_refused_as_such() {
    let dir = scratch("not-a-model");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a model\n").unwrap();
    for (model, want) in [
        (
            &dir,
            format!("{}: open failed: a folder, not a file", dir.display()),
        ),
        (
            &text,
            format!("{}: {}", text.display(), detector::NOT_A_MODEL),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gradcon"))
            .args(["score", "--model"])
            .arg(model)
            .arg(&text)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&want), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
