//! The checkpoint container: round trips, atomic writes, and refusal of damaged files.

use core_tensor::{Rng, Tensor};
use detector::io::checkpoint::{Checkpoint, Entry, MAGIC, VERSION};
use detector::Error;
use proptest::prelude::*;

fn sample() -> Checkpoint {
    let mut rng = Rng::seed_from_u64(11);
    let mut ck = Checkpoint::new();
    ck.put_tensor(
        "up.0.weight",
        Tensor::uniform(&[64, 64, 4, 4], -1.0, 1.0, &mut rng),
    );
    ck.put_tensor(
        "adam.m.up.6.bias",
        Tensor::uniform(&[1], -1.0, 1.0, &mut rng),
    );
    ck.put_tensor("scalar", Tensor::scalar(f32::NAN));
    ck.put_tensor("empty", Tensor::zeros(&[0, 3]));
    ck.put_u64("adam.step", 12_345);
    ck.put_u64("ref_grad_count", u64::MAX);
    ck.put_f64("best_val_loss", 0.0314);
    ck.put_f64("neg_zero", -0.0);
    ck.put_str(
        "config",
        r#"{"alpha":0.03,"beta":0.12,"name":"grad\u00e9"}"#,
    );
    ck.put_str("empty_string", "");
    ck.put_u64_array("rng.train", &rng.state());
    ck
}

/// Equality that treats NaN as equal to NaN bit for bit.
fn same(a: &Checkpoint, b: &Checkpoint) -> bool {
    a.names().eq(b.names())
        && a.names()
            .all(|n| match (a.entry(n).unwrap(), b.entry(n).unwrap()) {
                (Entry::Tensor(x), Entry::Tensor(y)) => {
                    x.shape() == y.shape()
                        && x.data()
                            .iter()
                            .zip(y.data())
                            .all(|(p, q)| p.to_bits() == q.to_bits())
                }
                (Entry::F64(x), Entry::F64(y)) => x.to_bits() == y.to_bits(),
                (x, y) => x == y,
            })
}

#[test]
fn round_trip_in_memory_and_through_a_file() {
    let ck = sample();
    let bytes = ck.to_bytes();
    assert_eq!(&bytes[..8], &MAGIC);
    let back = Checkpoint::from_bytes("mem", &bytes).unwrap();
    assert!(same(&ck, &back));
    // Writing is deterministic: the same content gives the same bytes.
    assert_eq!(back.to_bytes(), bytes);

    let dir = std::env::temp_dir().join(format!("gradcon-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.ckpt");
    ck.write_atomic(&path).unwrap();
    // Overwrite: the second write replaces the first, leaving no temporary files.
    let mut ck2 = ck.clone();
    ck2.put_u64("adam.step", 1);
    ck2.write_atomic(&path).unwrap();
    let read = Checkpoint::read(&path).unwrap();
    assert_eq!(read.get_u64("adam.step").unwrap(), 1);
    assert_eq!(read.source(), path.display().to_string());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn typed_accessors_name_the_key_and_the_file() {
    let ck = Checkpoint::from_bytes("run/ckpt.bin", &sample().to_bytes()).unwrap();
    assert_eq!(ck.get_u64("adam.step").unwrap(), 12_345);
    assert_eq!(ck.get_f64("best_val_loss").unwrap(), 0.0314);
    assert_eq!(
        ck.get_str("config").unwrap(),
        sample().get_str("config").unwrap()
    );
    assert_eq!(
        ck.get_tensor("up.0.weight").unwrap().shape(),
        &[64, 64, 4, 4]
    );
    assert!(ck.get_tensor_shaped("up.0.weight", &[64, 64, 4, 4]).is_ok());
    let e = ck
        .get_tensor_shaped("up.0.weight", &[64, 32, 4, 4])
        .unwrap_err();
    assert!(e.to_string().contains("[64, 64, 4, 4]"), "{e}");
    let e = ck.get_u64("epoch").unwrap_err().to_string();
    assert_eq!(e, "run/ckpt.bin: no u64 named `epoch`");
    let e = ck.get_f64("adam.step").unwrap_err().to_string();
    assert_eq!(e, "run/ckpt.bin: `adam.step` is a u64, expected a f64");
    assert!(matches!(
        ck.get_u64_array_fixed::<3>("rng.train"),
        Err(Error::Format { .. })
    ));
    assert_eq!(ck.get_u64_array_fixed::<4>("rng.train").unwrap().len(), 4);
    let mut ck = ck;
    assert!(ck.take_tensor("config").is_err());
    assert!(ck.contains("config"), "a failed take keeps the entry");
    assert_eq!(ck.take_tensor("empty").unwrap().shape(), &[0, 3]);
    assert!(!ck.contains("empty"));
}

fn problem(bytes: &[u8]) -> String {
    match Checkpoint::from_bytes("ck.bin", bytes) {
        Err(Error::Format { file, problem }) => {
            assert_eq!(file, "ck.bin");
            problem
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn refuses_wrong_magic_version_truncation_and_alteration() {
    let bytes = sample().to_bytes();
    assert!(problem(b"").contains("not a gradcon checkpoint"));
    assert!(problem(b"PK\x03\x04 zip file").contains("not a gradcon checkpoint"));
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert!(problem(&v).contains("format version 2 is not supported"));
    for cut in [8, 10, 12, 19, 20, 100, bytes.len() / 2, bytes.len() - 1] {
        let p = problem(&bytes[..cut]);
        assert!(p.contains("truncated"), "cut at {cut}: {p}");
    }
    // Every single-byte alteration past the magic and version is caught by the checksum.
    let mut rng = Rng::seed_from_u64(3);
    for _ in 0..200 {
        let mut v = bytes.clone();
        let at = 12 + rng.below((v.len() - 12) as u64) as usize;
        v[at] ^= 1 << rng.below(8);
        let p = problem(&v);
        assert!(p.contains("checksum mismatch"), "byte {at}: {p}");
    }
}

/// Re-seals a body with a valid checksum, to reach the checks behind it.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

fn header(count: u32) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v
}

#[test]
fn refuses_absurd_lengths_behind_a_valid_checksum() {
    // A tensor claiming 2^40 values in a tiny file.
    let mut v = header(1);
    v.push(1);
    v.extend_from_slice(&1u32.to_le_bytes());
    v.push(b'w');
    v.extend_from_slice(&2u32.to_le_bytes());
    v.extend_from_slice(&(1u64 << 20).to_le_bytes());
    v.extend_from_slice(&(1u64 << 20).to_le_bytes());
    assert!(problem(&seal(v)).contains("needs more bytes"));
    // A name length past the end.
    let mut v = header(1);
    v.push(2);
    v.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(problem(&seal(v)).contains("claims 4294967295 bytes"));
    // A string length past the end.
    let mut v = header(1);
    v.push(4);
    v.extend_from_slice(&1u32.to_le_bytes());
    v.push(b's');
    v.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(problem(&seal(v)).contains("exceeds"));
    // More entries claimed than present, an unknown kind, a rank of 9, a duplicate, trailing bytes.
    assert!(problem(&seal(header(3))).contains("only 0 left"));
    let mut v = header(1);
    v.extend_from_slice(&[9, 1, 0, 0, 0, b'x']);
    assert!(problem(&seal(v)).contains("unknown kind 9"));
    let mut v = header(1);
    v.extend_from_slice(&[1, 1, 0, 0, 0, b'x', 9, 0, 0, 0]);
    assert!(problem(&seal(v)).contains("rank 9"));
    let mut v = header(2);
    for _ in 0..2 {
        v.extend_from_slice(&[2, 1, 0, 0, 0, b'x']);
        v.extend_from_slice(&5u64.to_le_bytes());
    }
    assert!(problem(&seal(v)).contains("appears twice"));
    let mut v = header(0);
    v.push(0);
    assert!(problem(&seal(v)).contains("unexpected bytes"));
}

#[test]
fn read_names_a_missing_file() {
    let e = Checkpoint::read(std::path::Path::new("no/such/ckpt.bin")).unwrap_err();
    assert!(
        e.to_string().starts_with("no/such/ckpt.bin: open failed"),
        "{e}"
    );
}

proptest! {
    #[test]
    fn arbitrary_checkpoints_round_trip(
        tensors in prop::collection::vec(
            (prop::collection::vec(0usize..4, 0..4), any::<u32>()), 0..5),
        scalars in prop::collection::vec((any::<u64>(), any::<f64>(), ".{0,12}"), 0..5),
    ) {
        let mut ck = Checkpoint::new();
        for (i, (shape, seed)) in tensors.iter().enumerate() {
            let mut rng = Rng::seed_from_u64(u64::from(*seed));
            ck.put_tensor(format!("t{i}"), Tensor::normal(shape, 1.0, &mut rng));
        }
        for (i, (u, f, s)) in scalars.iter().enumerate() {
            ck.put_u64(format!("u{i}"), *u);
            ck.put_f64(format!("f{i}"), *f);
            ck.put_str(format!("s{i}"), s.clone());
            ck.put_u64_array(format!("a{i}"), &[*u, u.wrapping_mul(3)]);
        }
        let back = Checkpoint::from_bytes("p", &ck.to_bytes()).unwrap();
        prop_assert!(same(&ck, &back));
    }
}

#[test]
fn refuses_entries_out_of_order() {
    let mut v = header(2);
    for name in [b'y', b'x'] {
        v.extend_from_slice(&[2, 1, 0, 0, 0, name]);
        v.extend_from_slice(&5u64.to_le_bytes());
    }
    assert!(problem(&seal(v)).contains("`x` (entry 1) is out of order"));
}

/// Files written before runs were pinned (no `pin`, `seconds` or `provenance` entries) still
/// load: the checkpoint resumes with the same options, and its model loads.
#[test]
fn checkpoints_and_models_of_earlier_versions_keep_loading() {
    use detector::data::Dataset;
    use detector::train::{Silent, TrainConfig, Trainer};
    use detector::Detector;
    let dir = std::env::temp_dir().join(format!("gradcon-old-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("m.ckpt");
    let pixels: Vec<u8> = (0..8 * 784).map(|i| (i * 37 % 251) as u8).collect();
    let data = Dataset::new(pixels, vec![0; 8], 1, 28, 28).unwrap();
    let none = Dataset::empty(1, 28, 28);
    let config = |epochs| TrainConfig {
        epochs,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let two = Trainer::new(config(2))
        .unwrap()
        .fit(&data, &none, &mut Silent)
        .unwrap();
    Trainer::new(config(1))
        .unwrap()
        .checkpoint(&ckpt)
        .fit(&data, &none, &mut Silent)
        .unwrap();
    let mut old = Checkpoint::read(&ckpt).unwrap();
    assert!(old.remove("pin").is_some() && old.remove("seconds").is_some());
    old.write_atomic(&ckpt).unwrap();
    // Its model loads, and a run with the same options resumes it to the same weights.
    assert!(Detector::load(&ckpt).unwrap().provenance().is_none());
    let resumed = Trainer::new(config(2))
        .unwrap()
        .checkpoint(&ckpt)
        .fit(&data, &none, &mut Silent)
        .unwrap();
    assert_eq!(resumed.detector, two.detector);
    // Other options are still refused.
    let err = Trainer::new(TrainConfig {
        lr: 0.01,
        ..config(3)
    })
    .unwrap()
    .checkpoint(&ckpt)
    .fit(&data, &none, &mut Silent)
    .unwrap_err();
    assert!(
        err.to_string().contains("--lr was 0.001, now 0.01"),
        "{err}"
    );
    // A model file without provenance (as every file before it) loads as well.
    let mut model = two.detector.to_checkpoint();
    assert!(model.remove("provenance").is_some());
    let back = Detector::from_checkpoint(&model).unwrap();
    assert_eq!(back, two.detector);
    std::fs::remove_dir_all(&dir).unwrap();
}
