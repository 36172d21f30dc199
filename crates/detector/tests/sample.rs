//! The Fashion-MNIST sample shipped in `data/fashion-mnist-sample/`.

use std::path::{Path, PathBuf};

use detector::data::{load_fashion_mnist, Split};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-sample")
}

#[test]
fn shipped_sample_has_200_and_100_images_per_class() {
    let train = load_fashion_mnist(&sample_dir(), Split::Train).unwrap();
    assert_eq!(
        (train.len(), train.channels(), train.height(), train.width()),
        (2000, 1, 28, 28)
    );
    assert_eq!(train.class_counts(10), [200; 10]);
    let test = load_fashion_mnist(&sample_dir(), Split::Test).unwrap();
    assert_eq!(test.len(), 1000);
    assert_eq!(test.class_counts(10), [100; 10]);
    // Real images, not blanks: Fashion-MNIST's mean pixel is about 73.
    let mean =
        train.images().iter().map(|&v| f64::from(v)).sum::<f64>() / train.images().len() as f64;
    assert!((60.0..90.0).contains(&mean), "mean pixel {mean}");
}

/// With the full Fashion-MNIST at hand, the documented selection rule gives the sample exactly.
#[test]
fn sample_follows_the_selection_rule() {
    let Some(root) = std::env::var_os("GRADCON_DATA").filter(|v| !v.is_empty()) else {
        eprintln!("SKIPPED sample_follows_the_selection_rule: GRADCON_DATA is not set");
        return;
    };
    let root = PathBuf::from(root);
    if !root.join("fashion-mnist").is_dir() {
        eprintln!("SKIPPED sample_follows_the_selection_rule: no fashion-mnist/ in GRADCON_DATA");
        return;
    }
    for (split, per_class) in [(Split::Train, 200), (Split::Test, 100)] {
        let full = load_fashion_mnist(&root, split).unwrap();
        let mut taken = [0usize; 10];
        let keep: Vec<usize> = (0..full.len())
            .filter(|&i| {
                let t = &mut taken[usize::from(full.labels()[i])];
                *t += 1;
                *t <= per_class
            })
            .collect();
        let want = full.take(&keep).unwrap();
        assert_eq!(
            load_fashion_mnist(&sample_dir(), split).unwrap(),
            want,
            "{split:?}"
        );
    }
}
