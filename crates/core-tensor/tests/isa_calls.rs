//! The named SIMD path is the one that runs: [`Isa::calls`] of that path grows by one per kernel
//! call and the other paths' counters stay put.
//!
//! The counters are process-wide, so this binary holds a single test: no other test can run
//! kernels concurrently and move a counter.

use core_tensor::simd::{PAR_MAP_MIN, PAR_REDUCE_MIN};
use core_tensor::{Binary, Element, Isa, Tensor, Unary};

fn counts() -> [u64; 3] {
    Isa::ALL.map(Isa::calls)
}

/// Runs `f` and checks that exactly `isa`'s counter moved, by `expected` calls.
fn assert_only(isa: Isa, expected: u64, what: &str, f: impl FnOnce()) {
    let before = counts();
    f();
    let after = counts();
    for other in Isa::ALL {
        let moved = after[other as usize] - before[other as usize];
        let want = if other == isa { expected } else { 0 };
        assert_eq!(
            moved, want,
            "{what} on {isa}: the {other} counter moved by {moved}"
        );
    }
}

#[test]
fn each_named_path_runs_and_no_other() {
    // Forces the path the tensor methods pick; read once by `Isa::detect`, which nothing in
    // this process has called yet.
    std::env::set_var("GRADCON_ISA", "scalar");
    assert_eq!(
        Isa::detect(),
        Isa::Scalar,
        "GRADCON_ISA=scalar must lower the path"
    );

    let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.01 - 3.0).collect();
    let mut out = vec![0.0f32; x.len()];
    for isa in Isa::supported() {
        assert_only(isa, 1, "unary", || {
            f32::unary(isa, Unary::Exp, &x, &mut out)
        });
        assert_only(isa, 1, "binary", || {
            f32::binary(isa, Binary::Mul, &x, &x, &mut out)
        });
        assert_only(isa, 1, "scale", || f32::scale(isa, 2.0, &x, &mut out));
        assert_only(isa, 1, "axpy", || f32::axpy(isa, 2.0, &x, &mut out));
        assert_only(isa, 1, "sum", || {
            f32::sum_slice(isa, &x);
        });
        assert_only(isa, 1, "dot", || {
            f32::dot_slice(isa, &x, &x);
        });
        // A large call splits into parallel chunks but still records one call on one path.
        let big = vec![1.0f32; PAR_MAP_MIN.max(PAR_REDUCE_MIN) + 5];
        let mut big_out = vec![0.0f32; big.len()];
        assert_only(isa, 1, "parallel unary", || {
            f32::unary(isa, Unary::Sigmoid, &big, &mut big_out)
        });
        assert_only(isa, 1, "parallel sum", || {
            f32::sum_slice(isa, &big);
        });
    }

    // Tensor methods run on the detected (here: forced) path.
    let t = Tensor::from_vec(x.clone(), &[10, 100]).unwrap();
    assert_only(Isa::Scalar, 3, "tensor methods", || {
        let e = t.exp();
        let s = e.add(&t).unwrap();
        s.sum();
    });
}
