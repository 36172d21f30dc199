//! Safetensors import/export of GradCon weights in the authors' names and layouts.

use std::io::Read;

use core_tensor::{Rng, Tensor};
use detector::io::safetensors::{f16_to_f32, parameter_shapes, StateDict};
use detector::model::{Autoencoder, ReferenceGradients};
use detector::Detector;

fn random_weights(channels: usize, seed: u64, with_ref: bool) -> StateDict {
    let mut rng = Rng::seed_from_u64(seed);
    let named: Vec<(String, Tensor<f32>)> = parameter_shapes(channels)
        .into_iter()
        .map(|(n, s)| {
            let t = Tensor::uniform(&s, -1.0, 1.0, &mut rng);
            (n, t)
        })
        .collect();
    let mut w = StateDict::from_named("random", named, None).unwrap();
    if with_ref {
        let grads = Autoencoder::grad_layer_shapes(channels)
            .iter()
            .map(|s| Tensor::normal(s, 0.1, &mut rng))
            .collect();
        w.reference = Some(ReferenceGradients { grads, count: 42 });
    }
    w
}

/// The four decoder weights, by name.
fn decoder_weights(w: &StateDict) -> Vec<Tensor<f32>> {
    w.parameters()
        .filter(|(n, _)| n.starts_with("up.") && n.ends_with(".weight"))
        .map(|(_, t)| t.clone())
        .collect()
}

#[test]
fn parameter_counts_match_the_paper() {
    assert_eq!(random_weights(1, 1, false).model.num_params(), 230_721);
    assert_eq!(random_weights(3, 1, false).model.num_params(), 232_771);
    let dec: usize = decoder_weights(&random_weights(1, 1, false))
        .iter()
        .map(Tensor::len)
        .sum();
    assert_eq!(dec, 115_200);
    let dec3: usize = decoder_weights(&random_weights(3, 1, false))
        .iter()
        .map(Tensor::len)
        .sum();
    assert_eq!(dec3, 116_224);
}

#[test]
fn round_trip_with_and_without_reference_gradients() {
    for (channels, with_ref) in [(1, false), (1, true), (3, true)] {
        let w = random_weights(channels, 7 + channels as u64, with_ref);
        let bytes = w.to_safetensors_bytes().unwrap();
        let back = StateDict::from_safetensors_bytes("rt", &bytes).unwrap();
        assert_eq!(back, w);
    }
}

#[test]
fn save_and_load_a_file() {
    let dir = std::env::temp_dir().join(format!("gradcon-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let w = random_weights(1, 3, true);
    w.save_safetensors(&path).unwrap();
    assert_eq!(StateDict::load_safetensors(&path).unwrap(), w);
    let err = StateDict::load_safetensors(&dir.join("absent.safetensors")).unwrap_err();
    assert!(err.to_string().contains("absent.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The file `tests/data/make_authors_state_dict.py` wrote with PyTorch: an `nn.DataParallel`
/// model (`module.` names), f64 and f16 reference gradients, an int64 scalar count.
#[test]
fn imports_a_pytorch_state_dict() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/authors_state_dict.safetensors.gz"
    );
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let w = StateDict::from_safetensors_bytes("authors", &bytes).unwrap();
    assert_eq!(w.model.channels, 1);
    for (l, (name, t)) in w.parameters().enumerate() {
        assert_eq!(
            parameter_shapes(1)[l],
            (name.clone(), t.shape().to_vec()),
            "order"
        );
        for (i, &v) in t.data().iter().enumerate() {
            assert_eq!(v, (i % 251) as f32 / 256.0 + l as f32, "{name}[{i}]");
        }
    }
    let dec = decoder_weights(&w);
    let r = w.reference.expect("reference gradients");
    assert_eq!(r.count, 7);
    for (l, g) in r.grads.iter().enumerate() {
        assert_eq!(g.shape(), dec[l].shape());
        for (i, &v) in g.data().iter().enumerate() {
            assert_eq!(v, (i % 13) as f32 / 8.0 - l as f32, "ref_grad.{l}[{i}]");
        }
    }
}

fn named(w: &StateDict) -> Vec<(String, Tensor<f32>)> {
    w.parameters().map(|(n, t)| (n, t.clone())).collect()
}

#[test]
fn reports_missing_unexpected_and_misshaped_tensors() {
    let w = random_weights(1, 5, false);
    let mut v = named(&w);
    v.retain(|(n, _)| n != "up.4.bias");
    v.push(("down.8.weight".into(), Tensor::zeros(&[1])));
    v[2].1 = Tensor::zeros(&[32, 32, 3, 3]);
    let err = StateDict::from_named("bad.safetensors", v, None)
        .unwrap_err()
        .to_string();
    for part in [
        "bad.safetensors",
        "missing tensor `up.4.bias`",
        "unexpected tensor `down.8.weight`",
        "`down.2.weight` has shape [32, 32, 3, 3], expected [32, 32, 4, 4]",
    ] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
    // Reference gradients without their count, and a count of the wrong type.
    let mut v = named(&w);
    for (l, t) in decoder_weights(&w).iter().enumerate() {
        v.push((format!("ref_grad.{l}"), t.clone()));
    }
    let err = StateDict::from_named("f", v, None).unwrap_err().to_string();
    assert!(err.contains("ref_grad_count"), "{err}");
}

#[test]
fn refuses_bad_files_and_dtypes() {
    let w = random_weights(1, 9, true);
    let bytes = w.to_safetensors_bytes().unwrap();
    for cut in [0, 7, 8, 100, bytes.len() - 1] {
        let err = StateDict::from_safetensors_bytes("cut.safetensors", &bytes[..cut])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cut.safetensors: "), "{err}");
    }
    // An int32 weight: the dtype is named.
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = named(&w)
        .into_iter()
        .map(|(n, t)| {
            let data = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (n, data, t.shape().to_vec(), safetensors::Dtype::F32)
        })
        .collect();
    tensors[0].3 = safetensors::Dtype::I32;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, dt)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let file = safetensors::serialize(views, None).unwrap();
    let err = StateDict::from_safetensors_bytes("i32.safetensors", &file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`down.0.weight` has dtype I32"), "{err}");
}

#[test]
fn half_precision_conversion() {
    let cases: [(u16, f32); 9] = [
        (0x3c00, 1.0),
        (0xc000, -2.0),
        (0x7bff, 65504.0),
        (0x0001, 2.0f32.powi(-24)),
        (0x03ff, 1023.0 * 2.0f32.powi(-24)),
        (0x0400, 2.0f32.powi(-14)),
        (0x3555, 0.333_251_95),
        (0x7c00, f32::INFINITY),
        (0xfc00, f32::NEG_INFINITY),
    ];
    for (h, want) in cases {
        assert_eq!(f16_to_f32(h), want, "{h:#06x}");
    }
    assert!(f16_to_f32(0x7e00).is_nan());
    assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    // Monotone over all finite positive halves.
    for h in 1..0x7c00u16 {
        assert!(f16_to_f32(h) > f16_to_f32(h - 1), "{h:#06x}");
    }
}

#[test]
fn a_detector_round_trips_through_every_format() {
    let w = random_weights(3, 11, true);
    let d = Detector::from(w.clone());
    let gcm = Detector::from_bytes("m.gcm", &d.to_bytes()).unwrap();
    assert_eq!(gcm, d);
    let st = Detector::from_bytes("m.safetensors", &d.to_safetensors_bytes().unwrap()).unwrap();
    assert_eq!(st, d);
    // Without reference gradients: zeros and count 0, so the gradient term is zero.
    let bare = Detector::from(random_weights(1, 12, false));
    assert!(!bare.has_reference());
    assert_eq!(bare.reference(), &ReferenceGradients::zeros(1));
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let mut w = random_weights(1, 13, true);
    w.model.params[2].data_mut()[5] = f32::INFINITY;
    let bytes = w.to_safetensors_bytes().unwrap();
    let err = Detector::from_bytes("inf.safetensors", &bytes)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("inf.safetensors") && err.contains("down.2.weight"),
        "{err}"
    );
    let mut w = random_weights(1, 14, true);
    w.reference.as_mut().unwrap().grads[1].data_mut()[0] = f32::NAN;
    let d = Detector::from(w);
    let err = Detector::from_bytes("nan.gcm", &d.to_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nan.gcm") && err.contains("ref_grad.1"),
        "{err}"
    );
}

/// A folder given as a model is an I/O error naming it; a file that starts as none of the
/// formats is said to be no model (not that a safetensors header is too large); a file that
/// starts as a safetensors file but is cut short keeps the safetensors reader's words.
#[test]
fn what_is_not_a_model_is_refused_as_such() {
    let dir = std::env::temp_dir().join(format!("gradcon-not-a-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    match Detector::load(&dir).unwrap_err() {
        detector::Error::Io { path, source, .. } => {
            assert_eq!(path, dir);
            assert_eq!(source.kind(), std::io::ErrorKind::IsADirectory);
        }
        e => panic!("a folder: {e}"),
    }
    let text = dir.join("README.md");
    std::fs::write(&text, "# a text file\nwith some words\n").unwrap();
    let st = random_weights(1, 15, true).to_safetensors_bytes().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    for (what, bytes) in [
        ("text", std::fs::read(&text).unwrap()),
        ("empty", vec![]),
        ("png", png),
        ("one brace", b"{".to_vec()),
        ("zero header length", [&[0u8; 8][..], b"{}"].concat()),
        ("safetensors without its length", st[8..].to_vec()),
    ] {
        let err = Detector::from_bytes("m.bin", &bytes).unwrap_err();
        assert!(
            matches!(err, detector::Error::Format { .. }),
            "{what}: {err}"
        );
        assert_eq!(
            err.to_string(),
            format!("m.bin: {}", detector::NOT_A_MODEL),
            "{what}"
        );
    }
    let err = Detector::load(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: {}", text.display(), detector::NOT_A_MODEL)
    );
    let cut = Detector::from_bytes("cut.safetensors", &st[..st.len() / 2]).unwrap_err();
    assert!(
        cut.to_string()
            .starts_with("cut.safetensors: bad safetensors file: "),
        "{cut}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
