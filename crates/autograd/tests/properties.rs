//! Property tests: every operation's first and second derivatives against central finite
//! differences in f64, over random shapes and values. Draws whose perturbation crosses a kink
//! (ReLU, clamp, gate) are discarded, never accepted with a looser tolerance.

use autograd::check::{gradcheck, gradgradcheck, random, CheckError, CheckOptions};
use autograd::prelude::*;
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Layout, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn opts(seed: u64) -> CheckOptions {
    CheckOptions {
        directions: 1,
        seed,
        ..CheckOptions::default()
    }
}

/// Runs both checks; a kink rejects the draw, anything else fails the property.
fn check<F>(f: F, inputs: &[Tensor<f64>], seed: u64) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> autograd::Result<Var<'t, f64>>,
{
    for result in [
        gradcheck(&f, inputs, &opts(seed)),
        gradgradcheck(&f, inputs, &opts(seed)),
    ] {
        match result {
            Ok(_) => {}
            Err(CheckError::Kink { .. }) => {
                return Err(TestCaseError::reject("perturbation crosses a kink"))
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }
    Ok(())
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..4)
}

fn nchw() -> impl Strategy<Value = Vec<usize>> {
    (1usize..4, 1usize..5, 1usize..5, 1usize..5).prop_map(|(n, c, h, w)| vec![n, c, h, w])
}

/// Values in `[-2, 2)`, and values whose magnitude lies in `[0.5, 2)` with random signs.
fn signed(shape: &[usize], seed: u64) -> Tensor<f64> {
    random(shape, seed, -2.0, 2.0)
}
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mag = random(shape, seed, 0.5, 2.0);
    let sign = random(shape, seed ^ 0xabcd, -1.0, 1.0);
    mag.mul(
        &sign
            .data()
            .iter()
            .map(|s| s.signum())
            .collect::<Vec<_>>()
            .pipe(&sign),
    )
    .unwrap()
}

trait Pipe {
    fn pipe(self, like: &Tensor<f64>) -> Tensor<f64>;
}
impl Pipe for Vec<f64> {
    fn pipe(self, like: &Tensor<f64>) -> Tensor<f64> {
        Tensor::from_vec(self, like.shape()).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn binary_arithmetic(s in shape(), seed in any::<u64>()) {
        let (a, b) = (signed(&s, seed), signed(&s, seed + 1));
        let d = away_from_zero(&s, seed + 2);
        check(|v| v[0].add(&v[1]), &[a.clone(), b.clone()], seed)?;
        check(|v| v[0].sub(&v[1]), &[a.clone(), b.clone()], seed)?;
        check(|v| v[0].mul(&v[1]), &[a.clone(), b.clone()], seed)?;
        check(|v| v[0].div(&v[1]), &[a.clone(), d], seed)?;
        // The sigmoid's backward at outputs s in (0, 1).
        let s = random(&s, seed + 3, 0.02, 0.98);
        check(|v| v[0].sigmoid_backward(&v[1]), &[a, s], seed)?;
    }

    #[test]
    fn unary_maps(s in shape(), seed in any::<u64>()) {
        let x = signed(&s, seed);
        let pos = random(&s, seed + 1, 0.5, 2.0);
        check(|v| v[0].neg(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].square(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].sqrt(), &[pos], seed)?;
        check(|v| v[0].exp(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].sigmoid(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].add_scalar(0.7), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].scale(-1.3), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].mul_scalar(2.5), std::slice::from_ref(&x), seed)?;
    }

    #[test]
    fn kinked_maps(s in shape(), seed in any::<u64>(), t in -1.0f64..1.0) {
        let (x, g) = (signed(&s, seed), signed(&s, seed + 1));
        // Squared afterwards so that the second derivative is not identically zero.
        check(|v| v[0].relu()?.square(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].clamp_min(t)?.square(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].gate(&v[1], t), &[g.clone(), x.clone()], seed)?;
        check(|v| v[0].relu_backward(&v[1]), &[g, x], seed)?;
    }

    #[test]
    fn scalar_broadcasts(s in shape(), seed in any::<u64>()) {
        let x = signed(&s, seed);
        let c = Tensor::scalar(random(&[1], seed + 1, -2.0, 2.0).data()[0]);
        check(|v| v[0].scale_by(&v[1]), &[x, c.clone()], seed)?;
        check(|v| v[0].broadcast(&s)?.square(), &[c], seed)?;
    }

    #[test]
    fn reductions(s in shape(), seed in any::<u64>()) {
        let (a, b) = (signed(&s, seed), signed(&s, seed + 1));
        check(|v| v[0].sum(), std::slice::from_ref(&a), seed)?;
        check(|v| v[0].mean(), std::slice::from_ref(&a), seed)?;
        check(|v| v[0].dot(&v[1]), &[a.clone(), b.clone()], seed)?;
        check(|v| v[0].norm(), std::slice::from_ref(&a), seed)?;
        check(|v| v[0].mse_loss(&v[1]), &[a.clone(), b.clone()], seed)?;
        check(|v| v[0].cosine_similarity(&v[1]), &[a, b], seed)?;
    }

    #[test]
    fn per_channel(s in nchw(), nhwc in any::<bool>(), seed in any::<u64>()) {
        let layout = if nhwc { Layout::Nhwc } else { Layout::Nchw };
        let s = layout.shape([s[0], s[1], s[2], s[3]]).to_vec();
        let x = signed(&s, seed);
        let b = signed(&[layout.to_nchw([s[0], s[1], s[2], s[3]])[1]], seed + 1);
        check(|v| v[0].sum_per_channel(layout)?.square(), std::slice::from_ref(&x), seed)?;
        check(
            |v| v[0].expand_per_channel(&s, layout)?.square(),
            std::slice::from_ref(&b),
            seed,
        )?;
        check(|v| v[0].add_per_channel(&v[1], layout)?.square(), &[x, b], seed)?;
    }

    #[test]
    fn reshape_and_flatten(s in shape(), seed in any::<u64>()) {
        let x = signed(&s, seed);
        let n: usize = s.iter().product();
        check(|v| v[0].reshape(&[1, n])?.square(), std::slice::from_ref(&x), seed)?;
        check(|v| v[0].flatten()?.square(), &[x], seed)?;
    }
}

/// Convolution geometry: batch 1-3, channels 1-4, sizes 1-9, kernel 1-4, stride 1-3,
/// padding 0-2, output padding below the stride, NCHW or NHWC images.
#[derive(Debug, Clone)]
struct Geometry {
    n: usize,
    c: usize,
    o: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    output_padding: [usize; 2],
    bias: bool,
    layout: Layout,
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (
        (1usize..=3, 1usize..=4, 1usize..=4),
        ([1usize..=9, 1usize..=9], [1usize..=4, 1usize..=4]),
        ([1usize..=3, 1usize..=3], [0usize..=2, 0usize..=2]),
        ([0usize..3, 0usize..3], any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((n, c, o), (hw, k), (stride, padding), (op, bias, nhwc))| Geometry {
                n,
                c,
                o,
                hw,
                k,
                stride,
                padding,
                output_padding: [op[0] % stride[0], op[1] % stride[1]],
                bias,
                layout: if nhwc { Layout::Nhwc } else { Layout::Nchw },
            },
        )
}

impl Geometry {
    fn conv(&self) -> Conv2dSpec {
        Conv2dSpec {
            stride: self.stride,
            padding: self.padding,
            layout: self.layout,
        }
    }
    /// The shape of `n` images of `c` channels, `h x w`, in the geometry's layout.
    fn images(&self, c: usize, [h, w]: [usize; 2]) -> Vec<usize> {
        self.layout.shape([self.n, c, h, w]).to_vec()
    }
    fn transpose(&self) -> ConvTranspose2dSpec {
        ConvTranspose2dSpec {
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            layout: self.layout,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_any_geometry(g in geometry(), seed in any::<u64>()) {
        let out = g.conv().output_hw(g.hw, g.k);
        prop_assume!(out.is_ok());
        let x = signed(&g.images(g.c, g.hw), seed);
        let w = signed(&[g.o, g.c, g.k[0], g.k[1]], seed + 1);
        let spec = g.conv();
        if g.bias {
            let b = signed(&[g.o], seed + 2);
            check(|v| v[0].conv2d(&v[1], Some(&v[2]), spec), &[x, w, b], seed)?;
        } else {
            check(|v| v[0].conv2d(&v[1], None, spec), &[x, w], seed)?;
        }
    }

    #[test]
    fn conv_transpose2d_any_geometry(g in geometry(), seed in any::<u64>()) {
        let spec = g.transpose();
        prop_assume!(spec.output_hw(g.hw, g.k).is_ok());
        // Input channels c, output channels o: weight [c, o, kh, kw].
        let x = signed(&g.images(g.c, g.hw), seed);
        let w = signed(&[g.c, g.o, g.k[0], g.k[1]], seed + 1);
        if g.bias {
            let b = signed(&[g.o], seed + 2);
            check(|v| v[0].conv_transpose2d(&v[1], Some(&v[2]), spec), &[x, w, b], seed)?;
        } else {
            check(|v| v[0].conv_transpose2d(&v[1], None, spec), &[x, w], seed)?;
        }
    }

    #[test]
    fn conv2d_weight_grad_any_geometry(g in geometry(), seed in any::<u64>()) {
        let spec = g.conv();
        let out = spec.output_hw(g.hw, g.k);
        prop_assume!(out.is_ok());
        let x = signed(&g.images(g.c, g.hw), seed);
        let gy = signed(&g.images(g.o, out.unwrap()), seed + 1);
        let k = g.k;
        check(|v| v[0].conv2d_weight_grad(&v[1], k, spec), &[x, gy], seed)?;
    }

    /// A conv -> ReLU -> transposed conv -> sigmoid -> MSE chain: rules composed, with kinks.
    #[test]
    fn small_autoencoder(seed in any::<u64>(), n in 1usize..=2) {
        let x = random(&[n, 2, 6, 6], seed, 0.0, 1.0);
        let w1 = signed(&[3, 2, 3, 3], seed + 1).scale(0.5);
        let b1 = signed(&[3], seed + 2);
        let w2 = signed(&[3, 2, 3, 3], seed + 3).scale(0.5);
        let b2 = signed(&[2], seed + 4);
        let enc = Conv2dSpec::new(2, 1);
        let dec = ConvTranspose2dSpec::new(2, 1, 1);
        check(
            |v| {
                let h = v[0].conv2d(&v[1], Some(&v[2]), enc)?.relu()?;
                let y = h.conv_transpose2d(&v[3], Some(&v[4]), dec)?.sigmoid()?;
                y.mse_loss(&v[0])
            },
            &[x, w1, b1, w2, b2],
            seed,
        )?;
    }

    /// Eager and recorded backward passes run the same rules: identical values, bit for bit,
    /// also where a node's gradients are summed (eager sums add in place).
    #[test]
    fn eager_equals_recorded(seed in any::<u64>()) {
        let tape = Tape::<f64>::new();
        let x = tape.param(random(&[2, 2, 5, 5], seed, -1.0, 1.0));
        let w = tape.param(signed(&[3, 2, 3, 3], seed + 1));
        let y = x.conv2d(&w, None, Conv2dSpec::new(1, 1)).unwrap().relu().unwrap();
        // y is used three times: its three gradients are accumulated.
        let l = y.mul(&y).unwrap().add(&y.sigmoid().unwrap()).unwrap().mean().unwrap();
        let eager = autograd::grad_tensors(l, &[x, w]).unwrap();
        let recorded = autograd::grad(l, &[x, w], true).unwrap();
        for (e, r) in eager.iter().zip(&recorded) {
            prop_assert_eq!(e, &*r.value());
        }
    }
}
