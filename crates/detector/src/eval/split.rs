//! The one-class splits of the GradCon protocol, deterministic from a seed.
//!
//! Every split indexes a *pool*: the official training images followed by the official test
//! images (`pool[i]` is training image `i` for `i < n_train`, test image `i - n_train` after).
//!
//! - MNIST and CIFAR-10 ([`holdout_split`]): the training images of the normal class, shuffled,
//!   with `round(val_fraction * n)` of them held out for validation; the test set is every test
//!   image of the normal class plus as many images drawn at random from the other classes' test
//!   images (half anomalies).
//! - Fashion-MNIST ([`fold_split`]): training and test images pooled; each class shuffled and cut
//!   into 5 equal folds (the remainder of `n / 5` left out); folds 0-2 train, fold 3 validation,
//!   fold 4 test, with as many anomalies drawn from the other classes' fold 4.

use core_tensor::Rng;

/// Indices into the pool for one normal class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneClassSplit {
    pub normal_class: u8,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    /// `true` where `test[i]` is of the normal class.
    pub test_is_normal: Vec<bool>,
}

/// Stream tags, so that each use of the seed draws from its own sub-stream.
const TAG_HOLDOUT: u64 = 0x5350_4c49_545f_4831; // "SPLIT_H1"
const TAG_FOLDS: u64 = 0x5350_4c49_545f_4631; // "SPLIT_F1"
const TAG_ANOMALIES: u64 = 0x5350_4c49_545f_4131; // "SPLIT_A1"

fn indices_of(labels: &[u8], class: u8, offset: usize) -> Vec<usize> {
    labels
        .iter()
        .enumerate()
        .filter(|&(_, &l)| l == class)
        .map(|(i, _)| i + offset)
        .collect()
}

/// `normal` followed by `normal.len()` anomalies drawn without replacement from `others`.
fn balanced_test(
    normal: Vec<usize>,
    mut others: Vec<usize>,
    rng: &mut Rng,
) -> (Vec<usize>, Vec<bool>) {
    rng.shuffle(&mut others);
    others.truncate(normal.len());
    let mut is_normal = vec![true; normal.len()];
    is_normal.resize(normal.len() + others.len(), false);
    let mut test = normal;
    test.extend(others);
    (test, is_normal)
}

/// The MNIST / CIFAR-10 split (see the module docs). `val_fraction` in `[0, 1)`.
pub fn holdout_split(
    train_labels: &[u8],
    test_labels: &[u8],
    normal_class: u8,
    val_fraction: f64,
    seed: u64,
) -> OneClassSplit {
    let c = normal_class as u64;
    let mut train = indices_of(train_labels, normal_class, 0);
    Rng::derive(&[seed, TAG_HOLDOUT, c]).shuffle(&mut train);
    let n_val = (val_fraction * train.len() as f64).round() as usize;
    let val = train.drain(..n_val.min(train.len())).collect();

    let n_train = train_labels.len();
    let normal = indices_of(test_labels, normal_class, n_train);
    let others = (0..test_labels.len())
        .filter(|&i| test_labels[i] != normal_class)
        .map(|i| i + n_train)
        .collect();
    let (test, test_is_normal) =
        balanced_test(normal, others, &mut Rng::derive(&[seed, TAG_ANOMALIES, c]));
    OneClassSplit {
        normal_class,
        train,
        val,
        test,
        test_is_normal,
    }
}

/// The Fashion-MNIST split (see the module docs): `pool_labels` are the training labels
/// followed by the test labels; `classes` is the number of classes.
///
/// With `use_validation == false`, fold 3 is left unused (training stays folds 0-2).
pub fn fold_split(
    pool_labels: &[u8],
    classes: u8,
    normal_class: u8,
    use_validation: bool,
    seed: u64,
) -> OneClassSplit {
    let folds_of = |class: u8| -> [Vec<usize>; 5] {
        let mut idx = indices_of(pool_labels, class, 0);
        Rng::derive(&[seed, TAG_FOLDS, class as u64]).shuffle(&mut idx);
        let size = idx.len() / 5;
        std::array::from_fn(|f| idx[f * size..(f + 1) * size].to_vec())
    };
    let [f0, f1, f2, f3, f4] = folds_of(normal_class);
    let train = [f0, f1, f2].concat();
    let val = if use_validation { f3 } else { Vec::new() };
    let others = (0..classes)
        .filter(|&k| k != normal_class)
        .flat_map(|k| {
            let [.., fold4] = folds_of(k);
            fold4
        })
        .collect();
    let (test, test_is_normal) = balanced_test(
        f4,
        others,
        &mut Rng::derive(&[seed, TAG_ANOMALIES, normal_class as u64]),
    );
    OneClassSplit {
        normal_class,
        train,
        val,
        test,
        test_is_normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn labels(n: usize, classes: u8, shift: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 7 + shift) % classes as usize) as u8)
            .collect()
    }

    #[test]
    fn holdout_is_disjoint_balanced_and_seeded() {
        let (tr, te) = (labels(1000, 10, 0), labels(300, 10, 3));
        let s = holdout_split(&tr, &te, 4, 0.1, 11);
        assert_eq!(s.train.len() + s.val.len(), 100);
        assert_eq!(s.val.len(), 10);
        let all: HashSet<_> = s.train.iter().chain(&s.val).collect();
        assert_eq!(all.len(), 100);
        assert!(s.train.iter().all(|&i| i < 1000 && tr[i] == 4));
        assert_eq!(s.test.len(), 60);
        for (&i, &normal) in s.test.iter().zip(&s.test_is_normal) {
            assert!(i >= 1000);
            assert_eq!(te[i - 1000] == 4, normal);
        }
        assert_eq!(s.test_is_normal.iter().filter(|&&n| n).count(), 30);
        assert_eq!(s, holdout_split(&tr, &te, 4, 0.1, 11));
        assert_ne!(s.val, holdout_split(&tr, &te, 4, 0.1, 12).val);
    }

    #[test]
    fn folds_partition_each_class() {
        let pool = labels(7000, 10, 1);
        let s = fold_split(&pool, 10, 2, true, 5);
        assert_eq!((s.train.len(), s.val.len()), (420, 140));
        assert_eq!(s.test.len(), 280);
        let seen: HashSet<_> = s.train.iter().chain(&s.val).chain(&s.test).collect();
        assert_eq!(seen.len(), 840);
        assert!(s.train.iter().chain(&s.val).all(|&i| pool[i] == 2));
        for (&i, &normal) in s.test.iter().zip(&s.test_is_normal) {
            assert_eq!(pool[i] == 2, normal);
        }
        // An anomaly of class k comes from k's fold 4, which is also k's own test fold.
        let other = fold_split(&pool, 10, 3, true, 5);
        let anomalies_3: HashSet<_> = s.test.iter().filter(|&&i| pool[i] == 3).collect();
        let own_3: HashSet<_> = other.test.iter().filter(|&&i| pool[i] == 3).collect();
        assert!(anomalies_3.is_subset(&own_3));
        assert!(fold_split(&pool, 10, 2, false, 5).val.is_empty());
    }
}
