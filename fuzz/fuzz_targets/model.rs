//! The model loader (model file, checkpoint or safetensors bytes): a model or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    detector::fuzz_entry::model(data);
});
