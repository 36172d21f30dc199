//! Convolution kernels against the naive f64 references, on every SIMD path this CPU runs.

use core_tensor::conv::{
    conv2d_input_grad_on, conv2d_on, conv2d_weight_grad_on, conv2d_weight_grad_per_example_on,
    conv2d_weight_grad_sq_norms_and_dots_on, conv2d_weight_grad_sq_norms_on, conv_transpose2d_on,
    Conv2dSpec, ConvTranspose2dSpec,
};
use core_tensor::{reference, Element, Isa, Layout, Rng, Tensor, TensorError};
use proptest::prelude::*;

/// One random convolution: `x [n, c, h, w]`, weight `[o, c, kh, kw]`, stride, padding and an
/// output padding below the stride (for the transposed convolution).
#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    c: usize,
    o: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    out_pad: [usize; 2],
    seed: u64,
}

impl Case {
    fn spec(&self) -> Conv2dSpec {
        Conv2dSpec {
            stride: self.stride,
            padding: self.pad,
            layout: Layout::Nchw,
        }
    }
    fn tspec(&self) -> ConvTranspose2dSpec {
        ConvTranspose2dSpec {
            stride: self.stride,
            padding: self.pad,
            output_padding: self.out_pad,
            layout: Layout::Nchw,
        }
    }
    fn conv_out(&self) -> Option<[usize; 2]> {
        self.spec().output_hw(self.hw, self.k).ok()
    }
    fn tconv_out(&self) -> Option<[usize; 2]> {
        self.tspec().output_hw(self.hw, self.k).ok()
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=5, 1usize..=9, 1usize..=9),
        ([1usize..=17, 1usize..=17], [1usize..=5, 1usize..=5]),
        ([1usize..=3, 1usize..=3], [0usize..=2, 0usize..=2]),
        ([0usize..3, 0usize..3], any::<u64>()),
    )
        .prop_map(|((n, c, o), (hw, k), (stride, pad), (op, seed))| Case {
            n,
            c,
            o,
            hw,
            k,
            stride,
            pad,
            out_pad: [op[0] % stride[0], op[1] % stride[1]],
            seed,
        })
}

/// A random convolution on a batch large enough that the kernels' chunks hold several
/// examples (a chunk holds one example below 16 of them).
fn batch_case() -> impl Strategy<Value = Case> {
    (case(), 1usize..=40, [1usize..=9, 1usize..=9]).prop_map(|(cs, n, hw)| Case { n, hw, ..cs })
}

fn random<T: Element>(shape: &[usize], rng: &mut Rng) -> Tensor<T> {
    Tensor::uniform(shape, -1.0, 1.0, rng)
}

/// Checks `got` against the f64 reference, allowing rounding of a `terms`-long sum in `T`.
fn assert_close<T: Element>(what: &str, got: &Tensor<T>, want: &Tensor<f64>, terms: usize) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let eps = if T::NAME == "f32" { 1e-6 } else { 1e-14 };
    let tol = eps * (terms as f64 + 10.0);
    for (i, (g, w)) in got.data().iter().zip(want.data()).enumerate() {
        let err = (g.to_f64() - w).abs();
        assert!(
            err <= tol * (1.0 + w.abs()),
            "{what}: value {i}: got {g}, want {w} (tolerance {tol})"
        );
    }
}

fn check_conv2d<T: Element>(cs: Case) {
    let Some([ho, wo]) = cs.conv_out() else {
        return;
    };
    let mut rng = Rng::seed_from_u64(cs.seed);
    let x: Tensor<T> = random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], &mut rng);
    let w: Tensor<T> = random(&[cs.o, cs.c, cs.k[0], cs.k[1]], &mut rng);
    let b: Tensor<T> = random(&[cs.o], &mut rng);
    let gy: Tensor<T> = random(&[cs.n, cs.o, ho, wo], &mut rng);
    let taps = cs.c * cs.k[0] * cs.k[1];
    for isa in Isa::supported() {
        let before = isa.calls();
        let y = conv2d_on(isa, &x, &w, Some(&b), cs.spec()).unwrap();
        assert!(isa.calls() > before, "{isa}: the named path did not run");
        let want = reference::conv2d(&x, &w, Some(&b), cs.spec());
        assert_close(&format!("conv2d {isa} {cs:?}"), &y, &want, taps);

        let gx = conv2d_input_grad_on(isa, &gy, &w, cs.hw, cs.spec()).unwrap();
        let tspec = core_tensor::conv::transpose_spec_for(&gy, &w, cs.hw, cs.spec()).unwrap();
        // Where an input is seen only as padding no transposed-convolution spec exists (the
        // adjoint property below still covers that case).
        if tspec.output_hw([ho, wo], cs.k).is_ok() {
            let want = reference::conv_transpose2d(&gy, &w, None, tspec);
            assert_close(
                &format!("conv2d_input_grad {isa} {cs:?}"),
                &gx,
                &want,
                cs.o * 9,
            );
        }

        let dw = conv2d_weight_grad_on(isa, &x, &gy, cs.k, cs.spec()).unwrap();
        let want = reference::conv2d_weight_grad(&x, &gy, cs.k, cs.spec());
        let terms = cs.n * ho * wo;
        assert_close(
            &format!("conv2d_weight_grad {isa} {cs:?}"),
            &dw,
            &want,
            terms,
        );

        // Per example: each slice is a batch-of-one call; their sum is the batched gradient.
        let per = conv2d_weight_grad_per_example_on(isa, &x, &gy, cs.k, cs.spec()).unwrap();
        assert_eq!(per.shape(), [cs.n, cs.o, cs.c, cs.k[0], cs.k[1]]);
        let len = dw.len();
        let mut sum = vec![0.0; len];
        for e in 0..cs.n {
            let xe = slice_example(&x, e);
            let ge = slice_example(&gy, e);
            let one = conv2d_weight_grad_on(isa, &xe, &ge, cs.k, cs.spec()).unwrap();
            assert_eq!(
                &per.data()[e * len..(e + 1) * len],
                one.data(),
                "per-example slice {e} {isa} {cs:?}"
            );
            for (s, v) in sum.iter_mut().zip(one.data()) {
                *s += v.to_f64();
            }
        }
        let sum = Tensor::from_vec(sum, dw.shape()).unwrap();
        assert_close(&format!("per-example sum {isa} {cs:?}"), &dw, &sum, terms);

        let norms = conv2d_weight_grad_sq_norms_on(isa, &x, &gy, cs.k, cs.spec()).unwrap();
        check_sq_norms(&format!("{isa} {cs:?}"), &x, &gy, cs, &norms);
        check_dots(&format!("{isa} {cs:?}"), isa, &x, &gy, cs, &norms);
    }
}

/// The norms with dot products: the same norms, and `<dw_e, r>` against the f64 reference
/// where they come; returns whether they did.
fn check_dots<T: Element>(
    what: &str,
    isa: Isa,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    cs: Case,
    norms: &[T],
) -> bool {
    let mut rng = Rng::seed_from_u64(cs.seed ^ 0xd0);
    let r: Tensor<T> = random(&[cs.o, cs.c, cs.k[0], cs.k[1]], &mut rng);
    let (again, dots) =
        conv2d_weight_grad_sq_norms_and_dots_on(isa, x, gy, cs.k, cs.spec(), &r).unwrap();
    assert_eq!(again, norms, "{what}: norms with dot products");
    let Some(dots) = dots else {
        return false;
    };
    assert_eq!(dots.len(), cs.n, "{what}: one dot product per example");
    let eps = if T::NAME == "f32" { 1e-6 } else { 1e-14 };
    let sq = |t: &Tensor<T>| t.data().iter().map(|v| v.to_f64().powi(2)).sum::<f64>();
    for (e, &got) in dots.iter().enumerate() {
        let (xe, ge) = (slice_example(x, e), slice_example(gy, e));
        let dw = reference::conv2d_weight_grad(&xe, &ge, cs.k, cs.spec());
        let want: f64 = dw
            .data()
            .iter()
            .zip(r.data())
            .map(|(a, b)| a * b.to_f64())
            .sum();
        // |<dw, r>| <= |dw| |r| <= |gy| |x| sqrt(kh kw) |r|.
        let bound = (sq(&ge) * sq(&xe) * (cs.k[0] * cs.k[1]) as f64 * sq(&r)).sqrt();
        let tol = eps * 100.0 * (want.abs() + bound);
        assert!(
            (got.to_f64() - want).abs() <= tol,
            "{what}: dot of example {e}: got {got}, want {want} (tolerance {tol})"
        );
    }
    true
}

/// `norms[e]` against `|dw_e|^2` of the f64 reference, allowing the rounding of either way of
/// forming it (the Gram form's terms are bounded by `|gy_e|^2 |x_e|^2 kh kw`).
fn check_sq_norms<T: Element>(what: &str, x: &Tensor<T>, gy: &Tensor<T>, cs: Case, norms: &[T]) {
    assert_eq!(norms.len(), cs.n, "{what}: one norm per example");
    let eps = if T::NAME == "f32" { 1e-6 } else { 1e-14 };
    for (e, &got) in norms.iter().enumerate() {
        let (xe, ge) = (slice_example(x, e), slice_example(gy, e));
        let want: f64 = reference::conv2d_weight_grad(&xe, &ge, cs.k, cs.spec())
            .data()
            .iter()
            .map(|v| v * v)
            .sum();
        let sq = |t: &Tensor<T>| t.data().iter().map(|v| v.to_f64().powi(2)).sum::<f64>();
        let bound = sq(&ge) * sq(&xe) * (cs.k[0] * cs.k[1]) as f64;
        let tol = eps * 100.0 * (want + bound);
        let err = (got.to_f64() - want).abs();
        assert!(
            err <= tol,
            "{what}: example {e}: got {got}, want {want} (tolerance {tol})"
        );
    }
}

/// The squared-norm kernel on the decoder layers of the GradCon model (as the forward
/// convolutions their weight gradients are phrased in): both of its ways are taken.
#[test]
fn sq_norms_of_the_decoder_layers() {
    // (n, c, o, input side, output side, padding): dec1 ... dec4 with one image channel.
    for (n, c, o, hw, pad) in [
        (3, 64, 64, 4, 2),
        (3, 32, 64, 8, 1),
        (3, 32, 32, 14, 2),
        (3, 1, 32, 28, 1),
    ] {
        let cs = Case {
            n,
            c,
            o,
            hw: [hw, hw],
            k: [4, 4],
            stride: [2, 2],
            pad: [pad, pad],
            out_pad: [0, 0],
            seed: 5,
        };
        let [ho, wo] = cs.conv_out().unwrap();
        let mut rng = Rng::seed_from_u64(cs.seed);
        let x: Tensor<f32> = random(&[n, c, hw, hw], &mut rng);
        let gy: Tensor<f32> = random(&[n, o, ho, wo], &mut rng);
        for isa in Isa::supported() {
            let norms = conv2d_weight_grad_sq_norms_on(isa, &x, &gy, cs.k, cs.spec()).unwrap();
            check_sq_norms(&format!("{isa} {cs:?}"), &x, &gy, cs, &norms);
            // dec1 and dec2 take the Gram matrices, dec3 and dec4 form each gradient, and then
            // bring the dot products along.
            let formed = check_dots(&format!("{isa} {cs:?}"), isa, &x, &gy, cs, &norms);
            assert_eq!(formed, c <= 32 && o == 32, "{isa} {cs:?}: dot products");
        }
    }
}

fn check_conv_transpose2d<T: Element>(cs: Case) {
    let Some([ho, wo]) = cs.tconv_out() else {
        return;
    };
    let mut rng = Rng::seed_from_u64(cs.seed ^ 0x5eed);
    // Transposed convolution: input [n, i, h, w], weight [i, o, kh, kw].
    let x: Tensor<T> = random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], &mut rng);
    let w: Tensor<T> = random(&[cs.c, cs.o, cs.k[0], cs.k[1]], &mut rng);
    let b: Tensor<T> = random(&[cs.o], &mut rng);
    let gy: Tensor<T> = random(&[cs.n, cs.o, ho, wo], &mut rng);
    for isa in Isa::supported() {
        let y = conv_transpose2d_on(isa, &x, &w, Some(&b), cs.tspec()).unwrap();
        let want = reference::conv_transpose2d(&x, &w, Some(&b), cs.tspec());
        assert_close(
            &format!("conv_transpose2d {isa} {cs:?}"),
            &y,
            &want,
            cs.c * 9,
        );
        // Its input gradient is a conv2d of the output gradient with the same weight, and its
        // weight gradient the conv2d weight gradient with input and output gradient swapped.
        let gx = conv2d_on(isa, &gy, &w, None, cs.tspec().forward()).unwrap();
        assert_eq!(gx.shape(), x.shape());
        let dw = conv2d_weight_grad_on(isa, &gy, &x, cs.k, cs.tspec().forward()).unwrap();
        let want = reference::conv2d_weight_grad(&gy, &x, cs.k, cs.tspec().forward());
        let terms = cs.n * cs.hw[0] * cs.hw[1];
        assert_close(
            &format!("convT weight grad {isa} {cs:?}"),
            &dw,
            &want,
            terms,
        );
    }
}

fn slice_example<T: Element>(t: &Tensor<T>, e: usize) -> Tensor<T> {
    let s = t.shape();
    let len = s[1] * s[2] * s[3];
    Tensor::from_vec(
        t.data()[e * len..(e + 1) * len].to_vec(),
        &[1, s[1], s[2], s[3]],
    )
    .unwrap()
}

/// `<conv2d(x), y> = <x, conv_transpose2d(y)>` and the same for `conv2d_input_grad`, in f64.
fn check_adjoint(cs: Case) {
    let Some([ho, wo]) = cs.conv_out() else {
        return;
    };
    let mut rng = Rng::seed_from_u64(cs.seed ^ 0xad);
    let x: Tensor<f64> = random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], &mut rng);
    let w: Tensor<f64> = random(&[cs.o, cs.c, cs.k[0], cs.k[1]], &mut rng);
    let y: Tensor<f64> = random(&[cs.n, cs.o, ho, wo], &mut rng);
    for isa in Isa::supported() {
        let lhs = conv2d_on(isa, &x, &w, None, cs.spec())
            .unwrap()
            .dot(&y)
            .unwrap();
        let gx = conv2d_input_grad_on(isa, &y, &w, cs.hw, cs.spec()).unwrap();
        let rhs = x.dot(&gx).unwrap();
        assert!(
            (lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()),
            "{isa} {cs:?}: <conv x, y> = {lhs}, <x, conv^T y> = {rhs}"
        );
        // The transposed convolution whose output is x's size, with the derived output padding.
        let tspec = core_tensor::conv::transpose_spec_for(&y, &w, cs.hw, cs.spec()).unwrap();
        if tspec.output_hw([ho, wo], cs.k).is_ok() {
            let gx2 = conv_transpose2d_on(isa, &y, &w, None, tspec).unwrap();
            assert_eq!(gx2.data(), gx.data(), "{isa} {cs:?}");
        }
    }
}

/// Every kernel gives the same values, bit for bit, on NHWC images as on NCHW ones (the NCHW
/// results being checked against the references above): the kernels compute in NHWC either way,
/// only the copies in and out differ.
fn check_layouts<T: Element>(cs: Case) {
    let nhwc = |t: &Tensor<T>| t.relayout(Layout::Nchw, Layout::Nhwc).unwrap();
    let same = |what: &str, nchw: &Tensor<T>, got: &Tensor<T>| {
        assert_eq!(got.data(), nhwc(nchw).data(), "{what} {cs:?}");
    };
    let (spec, nspec) = (cs.spec(), cs.spec().in_layout(Layout::Nhwc));
    let mut rng = Rng::seed_from_u64(cs.seed ^ 0x1a);
    if let Some([ho, wo]) = cs.conv_out() {
        let x: Tensor<T> = random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], &mut rng);
        let w: Tensor<T> = random(&[cs.o, cs.c, cs.k[0], cs.k[1]], &mut rng);
        let b: Tensor<T> = random(&[cs.o], &mut rng);
        let gy: Tensor<T> = random(&[cs.n, cs.o, ho, wo], &mut rng);
        let (xn, gyn) = (nhwc(&x), nhwc(&gy));
        for isa in Isa::supported() {
            let y = conv2d_on(isa, &x, &w, Some(&b), spec).unwrap();
            same(
                "conv2d",
                &y,
                &conv2d_on(isa, &xn, &w, Some(&b), nspec).unwrap(),
            );
            let gx = conv2d_input_grad_on(isa, &gy, &w, cs.hw, spec).unwrap();
            let gxn = conv2d_input_grad_on(isa, &gyn, &w, cs.hw, nspec).unwrap();
            same("conv2d_input_grad", &gx, &gxn);
            let weight_grads = [
                conv2d_weight_grad_on(isa, &x, &gy, cs.k, spec),
                conv2d_weight_grad_on(isa, &xn, &gyn, cs.k, nspec),
                conv2d_weight_grad_per_example_on(isa, &x, &gy, cs.k, spec),
                conv2d_weight_grad_per_example_on(isa, &xn, &gyn, cs.k, nspec),
            ]
            .map(Result::unwrap);
            assert_eq!(weight_grads[0], weight_grads[1], "weight grad {cs:?}");
            assert_eq!(weight_grads[2], weight_grads[3], "per example {cs:?}");
            assert_eq!(
                conv2d_weight_grad_sq_norms_on(isa, &x, &gy, cs.k, spec).unwrap(),
                conv2d_weight_grad_sq_norms_on(isa, &xn, &gyn, cs.k, nspec).unwrap(),
                "sq norms {cs:?}"
            );
        }
    }
    if let Some([ho, wo]) = cs.tconv_out() {
        let x: Tensor<T> = random(&[cs.n, cs.c, cs.hw[0], cs.hw[1]], &mut rng);
        let w: Tensor<T> = random(&[cs.c, cs.o, cs.k[0], cs.k[1]], &mut rng);
        let b: Tensor<T> = random(&[cs.o], &mut rng);
        let tspec = cs.tspec();
        for isa in Isa::supported() {
            let y = conv_transpose2d_on(isa, &x, &w, Some(&b), tspec).unwrap();
            let yn =
                conv_transpose2d_on(isa, &nhwc(&x), &w, Some(&b), tspec.in_layout(Layout::Nhwc))
                    .unwrap();
            same("conv_transpose2d", &y, &yn);
            assert_eq!(y.shape()[2..], [ho, wo]);
        }
    }
}

/// Example `e` of a batch in `layout` as a batch of one.
fn one_example<T: Element>(t: &Tensor<T>, e: usize) -> Tensor<T> {
    let len = t.len() / t.shape()[0];
    let mut shape = t.shape().to_vec();
    shape[0] = 1;
    Tensor::from_vec(t.data()[e * len..(e + 1) * len].to_vec(), &shape).unwrap()
}

/// Asserts that example `e` of `batch` (`n` examples) holds the bits of `alone(e)`, for each `e`.
fn assert_examples_alone<T: Element>(
    what: &str,
    batch: &[T],
    n: usize,
    alone: impl Fn(usize) -> Vec<T>,
) {
    let per = batch.len() / n;
    for e in 0..n {
        let own = alone(e);
        assert!(
            bytemuck::cast_slice::<T, u8>(&batch[e * per..][..per])
                == bytemuck::cast_slice::<T, u8>(&own),
            "{what}: example {e} differs from its result alone"
        );
    }
}

/// Every kernel that computes per example gives each example the bits it gets alone, on every
/// path and in both layouts: the batch is run on `threads` workers, each example alone on one.
/// (The weight gradient proper sums over the batch and is not per example.)
fn check_examples_alone<T: Element>(cs: Case, layout: Layout, threads: usize) {
    let (spec, tspec) = (cs.spec().in_layout(layout), cs.tspec().in_layout(layout));
    let image = |c: usize, hw: [usize; 2]| layout.shape([cs.n, c, hw[0], hw[1]]);
    let mut rng = Rng::seed_from_u64(cs.seed ^ 0xe1);
    if let Some(out) = cs.conv_out() {
        let x: Tensor<T> = random(&image(cs.c, cs.hw), &mut rng);
        let w: Tensor<T> = random(&[cs.o, cs.c, cs.k[0], cs.k[1]], &mut rng);
        let b: Tensor<T> = random(&[cs.o], &mut rng);
        let gy: Tensor<T> = random(&image(cs.o, out), &mut rng);
        let r: Tensor<T> = random(w.shape(), &mut rng);
        for isa in Isa::supported() {
            let (y, gx, per, norms, (norms2, dots)) = on_threads(threads, || {
                (
                    conv2d_on(isa, &x, &w, Some(&b), spec).unwrap(),
                    conv2d_input_grad_on(isa, &gy, &w, cs.hw, spec).unwrap(),
                    conv2d_weight_grad_per_example_on(isa, &x, &gy, cs.k, spec).unwrap(),
                    conv2d_weight_grad_sq_norms_on(isa, &x, &gy, cs.k, spec).unwrap(),
                    conv2d_weight_grad_sq_norms_and_dots_on(isa, &x, &gy, cs.k, spec, &r).unwrap(),
                )
            });
            let (xe, gye) = (|e| one_example(&x, e), |e| one_example(&gy, e));
            let what = |name: &str| format!("{name} {isa} {layout:?} {threads} threads {cs:?}");
            assert_examples_alone(&what("conv2d"), y.data(), cs.n, |e| {
                conv2d_on(isa, &xe(e), &w, Some(&b), spec)
                    .unwrap()
                    .data()
                    .to_vec()
            });
            assert_examples_alone(&what("conv2d_input_grad"), gx.data(), cs.n, |e| {
                let g = conv2d_input_grad_on(isa, &gye(e), &w, cs.hw, spec).unwrap();
                g.data().to_vec()
            });
            assert_examples_alone(&what("weight grad per example"), per.data(), cs.n, |e| {
                let g = conv2d_weight_grad_per_example_on(isa, &xe(e), &gye(e), cs.k, spec);
                g.unwrap().data().to_vec()
            });
            let norms_alone =
                |e| conv2d_weight_grad_sq_norms_on(isa, &xe(e), &gye(e), cs.k, spec).unwrap();
            assert_examples_alone(&what("sq norms"), &norms, cs.n, norms_alone);
            assert_examples_alone(&what("sq norms with dots"), &norms2, cs.n, norms_alone);
            if let Some(dots) = dots {
                assert_examples_alone(&what("dots"), &dots, cs.n, |e| {
                    conv2d_weight_grad_sq_norms_and_dots_on(isa, &xe(e), &gye(e), cs.k, spec, &r)
                        .unwrap()
                        .1
                        .unwrap()
                });
            }
        }
    }
    if cs.tconv_out().is_some() {
        let x: Tensor<T> = random(&image(cs.c, cs.hw), &mut rng);
        let w: Tensor<T> = random(&[cs.c, cs.o, cs.k[0], cs.k[1]], &mut rng);
        let b: Tensor<T> = random(&[cs.o], &mut rng);
        for isa in Isa::supported() {
            let y = on_threads(threads, || {
                conv_transpose2d_on(isa, &x, &w, Some(&b), tspec).unwrap()
            });
            let what = format!("conv_transpose2d {isa} {layout:?} {threads} threads {cs:?}");
            assert_examples_alone(&what, y.data(), cs.n, |e| {
                let y = conv_transpose2d_on(isa, &one_example(&x, e), &w, Some(&b), tspec);
                y.unwrap().data().to_vec()
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn each_example_gets_the_bits_it_gets_alone_f32(
        cs in batch_case(),
        nhwc in any::<bool>(),
        threads in 1usize..=3,
    ) {
        let layout = if nhwc { Layout::Nhwc } else { Layout::Nchw };
        check_examples_alone::<f32>(cs, layout, threads);
    }

    #[test]
    fn each_example_gets_the_bits_it_gets_alone_f64(cs in batch_case(), threads in 1usize..=3) {
        check_examples_alone::<f64>(cs, Layout::Nhwc, threads);
    }

    #[test]
    fn layouts_agree_bit_for_bit_f32(cs in case()) {
        check_layouts::<f32>(cs);
    }

    #[test]
    fn layouts_agree_bit_for_bit_f64(cs in case()) {
        check_layouts::<f64>(cs);
    }

    #[test]
    fn conv2d_family_matches_reference_f32(cs in case()) {
        check_conv2d::<f32>(cs);
    }

    #[test]
    fn conv2d_family_matches_reference_f64(cs in case()) {
        check_conv2d::<f64>(cs);
    }

    #[test]
    fn conv_transpose2d_family_matches_reference_f32(cs in case()) {
        check_conv_transpose2d::<f32>(cs);
    }

    #[test]
    fn conv_transpose2d_family_matches_reference_f64(cs in case()) {
        check_conv_transpose2d::<f64>(cs);
    }

    #[test]
    fn conv_transpose2d_is_the_adjoint_of_conv2d(cs in case()) {
        check_adjoint(cs);
    }
}

/// The eight layers of the GradCon autoencoder at a small batch, exactly as the model runs them.
#[test]
fn model_layers_match_reference() {
    let layers: [(bool, usize, usize, usize, usize); 8] = [
        (false, 1, 32, 28, 2),
        (false, 32, 32, 15, 2),
        (false, 32, 64, 8, 2),
        (false, 64, 64, 5, 2),
        (true, 64, 64, 3, 2),
        (true, 64, 32, 4, 1),
        (true, 32, 32, 8, 2),
        (true, 32, 1, 14, 1),
    ];
    for (i, &(transposed, cin, cout, size, pad)) in layers.iter().enumerate() {
        let mut cs = Case {
            n: 3,
            c: cin,
            o: cout,
            hw: [size; 2],
            k: [4; 2],
            stride: [2; 2],
            pad: [pad; 2],
            out_pad: [0; 2],
            seed: i as u64,
        };
        if transposed {
            check_conv_transpose2d::<f32>(cs);
        } else {
            check_conv2d::<f32>(cs);
        }
        // With 32 and 64 channels the NHWC kernels store whole panels in place.
        check_layouts::<f32>(cs);
        cs.n = 2;
        check_adjoint(cs);
    }
}

/// Runs `f` on a rayon pool of `threads` threads.
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::seed_from_u64(7);
    let spec = Conv2dSpec::new(2, 2);
    let x: Tensor<f32> = random(&[37, 32, 15, 15], &mut rng);
    let w: Tensor<f32> = random(&[32, 32, 4, 4], &mut rng);
    let gy: Tensor<f32> = random(&[37, 32, 8, 8], &mut rng);
    for isa in Isa::supported() {
        let run = || {
            (
                conv2d_on(isa, &x, &w, None, spec).unwrap(),
                conv2d_input_grad_on(isa, &gy, &w, [15, 15], spec).unwrap(),
                conv2d_weight_grad_on(isa, &x, &gy, [4, 4], spec).unwrap(),
                conv2d_weight_grad_per_example_on(isa, &x, &gy, [4, 4], spec).unwrap(),
                conv2d_weight_grad_sq_norms_on(isa, &x, &gy, [4, 4], spec).unwrap(),
            )
        };
        let one = on_threads(1, run);
        let two = on_threads(2, run);
        let three = on_threads(3, run);
        assert_eq!(one, two, "{isa}: 1 vs 2 threads");
        assert_eq!(one, three, "{isa}: 1 vs 3 threads");
    }
}

/// Values computed by PyTorch 2.x (float64), generated by:
///
/// ```python
/// import torch, torch.nn.functional as F
/// x = torch.arange(2*2*5*4, dtype=torch.float64).reshape(2, 2, 5, 4).sin()
/// w = torch.arange(3*2*3*2, dtype=torch.float64).reshape(3, 2, 3, 2).cos()
/// b = torch.tensor([0.5, -0.25, 1.0], dtype=torch.float64)
/// y = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0))
/// gy = torch.arange(y.numel(), dtype=torch.float64).reshape(y.shape).mul(0.1).cos()
/// gx = torch.nn.grad.conv2d_input(x.shape, w, gy, stride=(2, 1), padding=(1, 0))
/// gw = torch.nn.grad.conv2d_weight(x, w.shape, gy, stride=(2, 1), padding=(1, 0))
/// t = F.conv_transpose2d(gy, w, None, stride=(2, 1), padding=(1, 0), output_padding=(1, 0))
/// for v in (y, gx, gw, t): print(list(v.shape), v.flatten()[:8].tolist(), v.sum().item())
/// ```
#[test]
fn matches_pytorch_values() {
    let seq = |shape: &[usize], f: fn(f64) -> f64| {
        let n = shape.iter().product::<usize>();
        Tensor::from_vec((0..n).map(|i| f(i as f64)).collect(), shape).unwrap()
    };
    let x: Tensor<f64> = seq(&[2, 2, 5, 4], f64::sin);
    let w: Tensor<f64> = seq(&[3, 2, 3, 2], f64::cos);
    let b = Tensor::from_vec(vec![0.5, -0.25, 1.0], &[3]).unwrap();
    let gy: Tensor<f64> = seq(&[2, 3, 3, 3], |i| (0.1 * i).cos());
    let spec = Conv2dSpec {
        stride: [2, 1],
        padding: [1, 0],
        layout: Layout::Nchw,
    };
    let tspec = ConvTranspose2dSpec {
        stride: [2, 1],
        padding: [1, 0],
        output_padding: [1, 0],
        layout: Layout::Nchw,
    };
    #[rustfmt::skip]
    let expected: [(&[usize], [f64; 8], f64); 4] = [
        (&[2, 3, 3, 3], [-0.24625795705940567, -0.2020792831669428, 0.4875878458647065,
            -1.987021765332186, 0.3714828141871419, 2.8481455016554427, 3.2759809032785787,
            3.781515466146037], 25.898437523155806),
        (&[2, 2, 5, 4], [-0.47813104380605154, -1.945178195670004, -1.9161039234585338,
            -1.1932774079111224, 0.01674016435980996, 0.6677219593930437, 0.5964514330857147,
            0.43247793179291744], -1.8562586518941813),
        (&[3, 2, 3, 2], [-3.8844831816722127, 0.17933957392242406, 2.5843229158414163,
            0.0011246859302681544, -3.7488937584641095, 0.7168843012523474, 0.8864509008614033,
            4.392743189853068], 0.7302724330415522),
        (&[2, 2, 6, 4], [-0.47813104380605154, -1.945178195670004, -1.9161039234585338,
            -1.1932774079111224, 0.01674016435980996, 0.6677219593930437, 0.5964514330857147,
            0.43247793179291744], 5.870986474071985),
    ];
    for isa in Isa::supported() {
        let got = [
            conv2d_on(isa, &x, &w, Some(&b), spec).unwrap(),
            conv2d_input_grad_on(isa, &gy, &w, [5, 4], spec).unwrap(),
            conv2d_weight_grad_on(isa, &x, &gy, [3, 2], spec).unwrap(),
            conv_transpose2d_on(isa, &gy, &w, None, tspec).unwrap(),
        ];
        for (k, (t, (shape, head, sum))) in got.iter().zip(expected).enumerate() {
            assert_eq!(t.shape(), shape, "{isa} result {k}");
            for (g, w) in t.data().iter().zip(head) {
                assert!((g - w).abs() < 1e-12, "{isa} result {k}: {g} vs {w}");
            }
            assert!(
                (t.sum() - sum).abs() < 1e-11,
                "{isa} result {k}: sum {}",
                t.sum()
            );
        }
        // The same in f32, at f32 accuracy.
        let got = conv2d_on::<f32>(isa, &x.cast(), &w.cast(), Some(&b.cast()), spec).unwrap();
        for (g, w) in got.data().iter().zip(expected[0].1) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{isa} f32: {g} vs {w}");
        }
    }
}

#[test]
fn invalid_geometry_is_an_error_naming_op_and_shapes() {
    let x = Tensor::<f32>::zeros(&[2, 3, 5, 5]);
    let w = Tensor::<f32>::zeros(&[4, 3, 3, 3]);
    let isa = Isa::Scalar;
    let geometry = |r: core_tensor::Result<Tensor<f32>>, op: &str, what: &str| match r {
        Err(e @ TensorError::InvalidGeometry { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(op), "{msg}");
            assert!(msg.contains(what), "{msg} lacks {what}");
        }
        other => panic!("{op}: expected a geometry error, got {other:?}"),
    };
    // Zero stride.
    geometry(
        conv2d_on(isa, &x, &w, None, Conv2dSpec::new(0, 0)),
        "conv2d",
        "stride",
    );
    // Kernel larger than the padded input.
    let big = Tensor::<f32>::zeros(&[4, 3, 8, 8]);
    geometry(
        conv2d_on(isa, &x, &big, None, Conv2dSpec::new(1, 1)),
        "conv2d",
        "[4, 3, 8, 8]",
    );
    // Channel mismatch.
    let w2 = Tensor::<f32>::zeros(&[4, 2, 3, 3]);
    geometry(
        conv2d_on(isa, &x, &w2, None, Conv2dSpec::new(1, 0)),
        "conv2d",
        "channels",
    );
    // Output padding not below the stride.
    let wt = Tensor::<f32>::zeros(&[3, 4, 3, 3]);
    geometry(
        conv_transpose2d_on(isa, &x, &wt, None, ConvTranspose2dSpec::new(2, 0, 2)),
        "conv_transpose2d",
        "output padding",
    );
    geometry(
        conv_transpose2d_on(isa, &x, &w, None, ConvTranspose2dSpec::new(1, 0, 0)),
        "conv_transpose2d",
        "channels",
    );
    // Batch mismatch and wrong output-gradient size in the weight gradient.
    let gy = Tensor::<f32>::zeros(&[3, 4, 3, 3]);
    geometry(
        conv2d_weight_grad_on(isa, &x, &gy, [3, 3], Conv2dSpec::new(1, 0)),
        "conv2d_weight_grad",
        "batch",
    );
    let gy = Tensor::<f32>::zeros(&[2, 4, 4, 3]);
    geometry(
        conv2d_weight_grad_on(isa, &x, &gy, [3, 3], Conv2dSpec::new(1, 0)),
        "conv2d_weight_grad",
        "output gradient",
    );
    geometry(
        conv2d_weight_grad_per_example_on(isa, &x, &gy, [3, 3], Conv2dSpec::new(1, 0)),
        "conv2d_weight_grad",
        "output gradient",
    );
    // An input gradient that cannot be sized back to the input.
    let gy = Tensor::<f32>::zeros(&[2, 4, 3, 3]);
    geometry(
        conv2d_input_grad_on(isa, &gy, &w, [9, 9], Conv2dSpec::new(1, 0)),
        "conv2d_input_grad",
        "output gradient",
    );
    // Bias of the wrong shape, and a rank that is not 4.
    let bias = Tensor::<f32>::zeros(&[5]);
    match conv2d_on(isa, &x, &w, Some(&bias), Conv2dSpec::new(1, 0)) {
        Err(e @ TensorError::InvalidShape { .. }) => {
            assert!(e.to_string().contains("conv2d") && e.to_string().contains("[5]"))
        }
        other => panic!("bias: {other:?}"),
    }
    let bias = Tensor::<f32>::zeros(&[3]);
    assert!(matches!(
        conv_transpose2d_on(isa, &x, &wt, Some(&bias), ConvTranspose2dSpec::new(1, 0, 0)),
        Err(TensorError::InvalidShape {
            op: "conv_transpose2d",
            ..
        })
    ));
    let flat = Tensor::<f32>::zeros(&[2, 75]);
    assert!(matches!(
        conv2d_on(isa, &flat, &w, None, Conv2dSpec::new(1, 0)),
        Err(TensorError::InvalidShape { op: "conv2d", .. })
    ));
}

#[test]
fn empty_batches_and_channels_give_empty_or_zero_results() {
    let spec = Conv2dSpec::new(1, 1);
    for isa in Isa::supported() {
        let x = Tensor::<f32>::zeros(&[0, 3, 5, 5]);
        let w = Tensor::<f32>::full(&[4, 3, 3, 3], 1.0);
        assert_eq!(
            conv2d_on(isa, &x, &w, None, spec).unwrap().shape(),
            [0, 4, 5, 5]
        );
        let gy = Tensor::<f32>::zeros(&[0, 4, 5, 5]);
        let dw = conv2d_weight_grad_on(isa, &x, &gy, [3, 3], spec).unwrap();
        assert!(dw.data().iter().all(|&v| v == 0.0));
        // No input channels: the output is the bias alone.
        let x = Tensor::<f32>::zeros(&[2, 0, 5, 5]);
        let w = Tensor::<f32>::zeros(&[4, 0, 3, 3]);
        let b = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]).unwrap();
        let y = conv2d_on(isa, &x, &w, Some(&b), spec).unwrap();
        assert_eq!(y.data()[25 * 3], 4.0);
    }
}

/// A padding larger than the kernel span: the output padding alone restores the size
/// (input 1, kernel 3, stride 3, padding 2: the conv output is 1, and `op = 2`).
#[test]
fn input_grad_spec_with_padding_beyond_the_span() {
    let spec = Conv2dSpec::new(3, 2);
    let gy = Tensor::<f64>::zeros(&[1, 1, 1, 1]);
    let w = Tensor::<f64>::zeros(&[1, 1, 3, 3]);
    let t = core_tensor::conv::transpose_spec_for(&gy, &w, [1, 1], spec).unwrap();
    assert_eq!(t.output_padding, [2, 2]);
    let dx = core_tensor::conv::conv2d_input_grad(&gy, &w, [1, 1], spec).unwrap();
    assert_eq!(dx.shape(), &[1, 1, 1, 1]);
}

/// The packed weights are kept between calls under the weight tensor's content id: a call
/// after the weights change in place (as an optimiser step changes them), or with a clone,
/// must give what freshly packed weights give, on every path.
#[test]
fn weights_changed_in_place_are_packed_again() {
    let mut rng = Rng::seed_from_u64(7);
    for isa in Isa::supported() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            let nchw_x = random::<f32>(&[2, 32, 8, 8], &mut rng);
            let x = nchw_x.relayout(Layout::Nchw, layout).unwrap();
            let mut w = random::<f32>(&[64, 32, 4, 4], &mut rng);
            let spec = Conv2dSpec::new(2, 1).in_layout(layout);
            let tspec = ConvTranspose2dSpec::new(2, 1, 0).in_layout(layout);
            let y = conv2d_on(isa, &x, &w, None, spec).unwrap();
            let gy = random::<f32>(y.shape(), &mut rng);
            let wt = random::<f32>(&[64, 32, 4, 4], &mut rng);
            let mut wt = wt;
            let t = conv_transpose2d_on(isa, &y, &wt, None, tspec).unwrap();
            for _ in 0..3 {
                // Same values: the same bits, cached or not (and from a clone).
                assert_eq!(conv2d_on(isa, &x, &w.clone(), None, spec).unwrap(), y);
                assert_eq!(conv_transpose2d_on(isa, &y, &wt, None, tspec).unwrap(), t);
            }
            for v in w.data_mut() {
                *v = -*v;
            }
            for v in wt.data_mut() {
                *v *= 2.0;
            }
            let negated = conv2d_on(isa, &x, &w, None, spec).unwrap();
            let fresh_w = Tensor::from_vec(w.data().to_vec(), w.shape()).unwrap();
            assert_eq!(
                negated,
                conv2d_on(isa, &x, &fresh_w, None, spec).unwrap(),
                "{isa}"
            );
            for (a, b) in negated.data().iter().zip(y.data()) {
                assert_eq!(
                    *a, -*b,
                    "{isa} {layout:?}: the old packed weights were used"
                );
            }
            let doubled = conv_transpose2d_on(isa, &y, &wt, None, tspec).unwrap();
            for (a, b) in doubled.data().iter().zip(t.data()) {
                assert_eq!(
                    *a,
                    2.0 * *b,
                    "{isa} {layout:?}: the old packed weights were used"
                );
            }
            // The input gradient packs the forward weights the same way.
            let gx = conv2d_input_grad_on(isa, &gy, &w, [8, 8], spec).unwrap();
            let gx_fresh = conv2d_input_grad_on(isa, &gy, &fresh_w, [8, 8], spec).unwrap();
            assert_eq!(gx, gx_fresh, "{isa} {layout:?}");
        }
    }
}

/// The scatter adjoint (kernel extents not multiples of the stride) with chunks of several
/// examples and positions that do not fill whole tiles: its tiles once ran across examples, so
/// a pixel's terms were added in an order that depended on the example's place in the chunk.
#[test]
fn scatter_adjoint_gives_each_example_its_own_bits() {
    for (c, o, hw, pad, n) in [(9, 7, 5, 0, 20), (17, 5, 6, 1, 24), (40, 3, 4, 0, 17)] {
        let cs = Case {
            n,
            c,
            o,
            hw: [hw; 2],
            k: [3; 2],
            stride: [2; 2],
            pad: [pad; 2],
            out_pad: [0; 2],
            seed: 3,
        };
        for layout in [Layout::Nchw, Layout::Nhwc] {
            check_examples_alone::<f32>(cs, layout, 2);
        }
    }
}
