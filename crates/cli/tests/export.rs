//! `gradcon export --torch`: the weights file holds exactly the authors' 16 parameter names
//! (what a strict `load_state_dict` needs), with `module.` under `--data-parallel`, and the
//! reference gradients (with the threshold in the metadata) go to a second file beside it.
//! `benches/peer/authors_checkpoint.py selftest` loads both strictly in PyTorch.

use std::path::Path;
use std::process::Command;

use detector::io::safetensors::{parameter_shapes, StateDict};
use detector::Detector;

#[test]
fn the_torch_export_holds_the_state_dict_alone() {
    let dir = std::env::temp_dir().join(format!("gradcon-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/fashion-mnist-0.gcm");
    for (data_parallel, prefix) in [(false, ""), (true, "module.")] {
        let out = dir.join(format!("w{}.safetensors", data_parallel as u8));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradcon"));
        cmd.args(["export", "--torch", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(&out);
        if data_parallel {
            cmd.arg("--data-parallel");
        }
        assert!(cmd.status().unwrap().success());
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort();
        let mut want: Vec<String> = parameter_shapes(1)
            .into_iter()
            .map(|(n, _)| format!("{prefix}{n}"))
            .collect();
        want.sort();
        assert_eq!(names, want);
        // The two files together give back the model.
        let refs = std::fs::read(out.with_extension("ref_grad.safetensors")).unwrap();
        let w = StateDict::from_safetensors_bytes("w", &bytes).unwrap();
        let r = StateDict::from_safetensors_bytes("r", &refs);
        assert!(r.is_err(), "the beside file holds no parameters");
        let original = Detector::load(&model).unwrap();
        assert_eq!(&w.model, original.autoencoder());
        assert!(w.reference.is_none());
        let st = safetensors::SafeTensors::deserialize(&refs).unwrap();
        assert_eq!(st.names().len(), 5, "ref_grad.0-3 and ref_grad_count");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
