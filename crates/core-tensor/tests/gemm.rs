//! GEMM against the naive f64 reference, on every SIMD path this CPU runs.

use core_tensor::gemm::{gemm_on, matmul};
use core_tensor::{reference, Element, Isa, Rng, Tensor, TensorError, Transpose};
use proptest::prelude::*;

const SIZES: [usize; 8] = [0, 1, 2, 7, 13, 31, 67, 300];

fn random<T: Element>(len: usize, rng: &mut Rng) -> Vec<T> {
    (0..len)
        .map(|_| T::from_f64(2.0 * rng.next_f64() - 1.0))
        .collect()
}

/// Runs `C <- alpha op(A) op(B) + beta C` and checks every entry against the reference.
fn check<T: Element>(isa: Isa, m: usize, k: usize, n: usize, ta: bool, tb: bool, seed: u64) {
    let mut rng = Rng::seed_from_u64(seed);
    let a: Vec<T> = random(m * k, &mut rng);
    let b: Vec<T> = random(k * n, &mut rng);
    let c0: Vec<T> = random(m * n, &mut rng);
    let (alpha, beta) = (0.75, -1.5);
    let tr = |t: bool| if t { Transpose::Yes } else { Transpose::No };
    let mut c = c0.clone();
    let before = isa.calls();
    gemm_on(
        isa,
        m,
        k,
        n,
        T::from_f64(alpha),
        &a,
        tr(ta),
        &b,
        tr(tb),
        T::from_f64(beta),
        &mut c,
    );
    assert!(isa.calls() > before, "{isa}: the named path did not run");
    let ab = reference::gemm(m, k, n, &a, ta, &b, tb);
    let eps = if T::NAME == "f32" { 1e-6 } else { 1e-14 };
    for i in 0..m * n {
        let want = alpha * ab[i] + beta * c0[i].to_f64();
        let got = c[i].to_f64();
        assert!(
            (got - want).abs() <= eps * (k as f64 + 10.0) * (1.0 + want.abs()),
            "{isa} {} m={m} k={k} n={n} ta={ta} tb={tb}: C[{i}] = {got}, want {want}",
            T::NAME
        );
    }
    // beta = 0 ignores C entirely, NaN included.
    let mut c = vec![T::from_f64(f64::NAN); m * n];
    gemm_on(
        isa,
        m,
        k,
        n,
        T::ONE,
        &a,
        tr(ta),
        &b,
        tr(tb),
        T::ZERO,
        &mut c,
    );
    for i in 0..m * n {
        let got = c[i].to_f64();
        assert!(
            (got - ab[i]).abs() <= eps * (k as f64 + 10.0) * (1.0 + ab[i].abs()),
            "{isa} beta=0 m={m} k={k} n={n}: C[{i}] = {got}, want {}",
            ab[i]
        );
    }
}

#[test]
fn edge_and_prime_sizes_all_transposes() {
    for isa in Isa::supported() {
        for &m in &SIZES[..7] {
            for &k in &SIZES {
                for &n in &SIZES[..7] {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        let seed = (m * 1_000_000 + k * 1000 + n) as u64;
                        check::<f32>(isa, m, k, n, ta, tb, seed);
                        check::<f64>(isa, m, k, n, ta, tb, seed);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sizes_match_reference(
        m in 0usize..80, k in 0usize..300, n in 0usize..80,
        ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>(),
    ) {
        for isa in Isa::supported() {
            check::<f32>(isa, m, k, n, ta, tb, seed);
            check::<f64>(isa, m, k, n, ta, tb, seed);
        }
    }
}

#[test]
fn large_products_do_not_depend_on_the_thread_count() {
    let (m, k, n) = (301, 517, 203);
    let mut rng = Rng::seed_from_u64(3);
    let a: Vec<f32> = random(m * k, &mut rng);
    let b: Vec<f32> = random(k * n, &mut rng);
    for isa in Isa::supported() {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut c = vec![0.0f32; m * n];
                    gemm_on(
                        isa,
                        m,
                        k,
                        n,
                        1.0,
                        &a,
                        Transpose::No,
                        &b,
                        Transpose::Yes,
                        0.0,
                        &mut c,
                    );
                    c
                })
        };
        assert_eq!(run(1), run(2), "{isa}");
        assert_eq!(run(1), run(3), "{isa}");
    }
}

#[test]
fn matmul_checks_shapes() {
    let a = Tensor::<f32>::zeros(&[3, 4]);
    let b = Tensor::<f32>::zeros(&[5, 2]);
    assert!(matches!(
        matmul(&a, Transpose::No, &b, Transpose::No),
        Err(TensorError::ShapeMismatch { op: "matmul", .. })
    ));
    let b = Tensor::<f32>::full(&[4, 2], 1.0);
    let a = Tensor::<f32>::full(&[3, 4], 0.5);
    let c = matmul(&a, Transpose::No, &b, Transpose::No).unwrap();
    assert_eq!(c.shape(), [3, 2]);
    assert!(c.data().iter().all(|&v| v == 2.0));
}

#[test]
#[should_panic(expected = "gemm: B holds")]
fn short_slices_panic_with_the_operand_named() {
    let mut c = vec![0.0f32; 4];
    gemm_on(
        Isa::Scalar,
        2,
        2,
        2,
        1.0,
        &[0.0; 4],
        Transpose::No,
        &[0.0; 3],
        Transpose::No,
        0.0,
        &mut c,
    );
}
