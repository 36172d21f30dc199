//! Replays `fuzz/corpus/options/` through the option-parsing fuzz target's entry point:
//! parsing and checking any command line gives a value or an error, never a panic.

use std::path::Path;

#[test]
fn option_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/options");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| gradcon_cli::fuzz_options(&bytes));
        assert!(r.is_ok(), "{} panics", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
    eprintln!("options: {n} command lines replayed");
}
