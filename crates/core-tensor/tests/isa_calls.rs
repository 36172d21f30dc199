//! The named SIMD path is the one that runs: [`Isa::calls`] of that path grows by one per kernel
//! call and the other paths' counters stay put, for every kernel family (elementwise maps,
//! reductions, shifted sums, GEMM, and the convolutions with their gradients) on every path
//! this CPU runs, the portable one included.
//!
//! The counters are process-wide, so this binary holds a single test: no other test can run
//! kernels concurrently and move a counter.

use core_tensor::conv::{
    conv2d_input_grad_on, conv2d_on, conv2d_weight_grad_on, conv2d_weight_grad_sq_norms_on,
    conv_transpose2d_on, Conv2dSpec, ConvTranspose2dSpec,
};
use core_tensor::gemm::gemm_on;
use core_tensor::simd::{PAR_MAP_MIN, PAR_REDUCE_MIN};
use core_tensor::{Binary, Element, Isa, Layout, Rng, Tensor, Transpose, Unary};

fn counts() -> [u64; Isa::ALL.len()] {
    Isa::ALL.map(Isa::calls)
}

/// Runs `f` and checks that exactly `isa`'s counter moved, by `expected` calls.
fn assert_only(isa: Isa, expected: u64, what: &str, f: impl FnOnce()) {
    let moved = moved_by(what, isa, f);
    assert_eq!(moved, expected, "{what} on {isa}: {moved} calls recorded");
}

/// Runs `f`, checks that no other path's counter moved and returns how far `isa`'s did.
fn moved_by(what: &str, isa: Isa, f: impl FnOnce()) -> u64 {
    let before = counts();
    f();
    let after = counts();
    for other in Isa::ALL.into_iter().filter(|&o| o != isa) {
        let moved = after[other as usize] - before[other as usize];
        assert_eq!(
            moved, 0,
            "{what} on {isa}: the {other} counter moved by {moved}"
        );
    }
    after[isa as usize] - before[isa as usize]
}

/// Composite kernels record their own call and those of the kernels they run (dot products,
/// shifted sums): at least one, all on `isa`.
fn assert_ran(isa: Isa, what: &str, f: impl FnOnce()) {
    let moved = moved_by(what, isa, f);
    assert!(moved >= 1, "{what} on {isa}: no call recorded");
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
        assert_only(isa, 1, "shifted sum", || {
            f32::shifted_sum(isa, &[0, 3], &[0.5, -1.0], &x, &mut out[..900])
        });
        assert_only(isa, 1, "gemm", || {
            let mut c = vec![0.0f32; 13 * 11];
            let b = &x[..17 * 11];
            gemm_on(
                isa,
                13,
                17,
                11,
                1.0,
                &x,
                Transpose::No,
                b,
                Transpose::Yes,
                0.0,
                &mut c,
            );
        });
        convolutions(isa);
    }

    // Tensor methods run on the detected (here: forced) path.
    let t = Tensor::from_vec(x.clone(), &[10, 100]).unwrap();
    assert_only(Isa::Scalar, 3, "tensor methods", || {
        let e = t.exp();
        let s = e.add(&t).unwrap();
        s.sum();
    });
}

/// Every convolution kernel on `isa`, in both layouts, with an output of one channel (the
/// narrow adjoint) and of many (the tiled one).
fn convolutions(isa: Isa) {
    let mut rng = Rng::seed_from_u64(5);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for (c, o) in [(3, 1), (4, 9)] {
            let images = |t: Tensor<f32>| t.relayout(Layout::Nchw, layout).unwrap();
            let x = images(Tensor::uniform(&[2, c, 9, 9], -1.0, 1.0, &mut rng));
            let w = Tensor::uniform(&[o, c, 4, 4], -1.0, 1.0, &mut rng);
            let spec = Conv2dSpec::new(2, 1).in_layout(layout);
            let y = conv2d_on(isa, &x, &w, None, spec);
            let what = format!("conv2d {layout:?} c={c} o={o}");
            assert_ran(isa, &what, || {
                conv2d_on(isa, &x, &w, None, spec).unwrap();
            });
            let gy = y.unwrap();
            assert_ran(isa, &format!("input grad, {what}"), || {
                conv2d_input_grad_on(isa, &gy, &w, [9, 9], spec).unwrap();
            });
            assert_ran(isa, &format!("weight grad, {what}"), || {
                conv2d_weight_grad_on(isa, &x, &gy, [4, 4], spec).unwrap();
            });
            assert_ran(isa, &format!("sq norms, {what}"), || {
                conv2d_weight_grad_sq_norms_on(isa, &x, &gy, [4, 4], spec).unwrap();
            });
            let wt = Tensor::uniform(&[c, o, 4, 4], -1.0, 1.0, &mut rng);
            let tspec = ConvTranspose2dSpec::new(2, 1, 0).in_layout(layout);
            assert_ran(isa, &format!("conv_transpose2d, {what}"), || {
                conv_transpose2d_on(isa, &x, &wt, None, tspec).unwrap();
            });
        }
    }
}
