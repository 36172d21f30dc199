//! The composite GradCon training loss through the full eight-layer autoencoder:
//! `J = MSE + alpha * (-(1/4) sum_l cos(dMSE/dW_l, r_l))`, whose gradient needs the gradient of
//! a gradient (the decoder weight gradients are built with `create_graph`).

use autograd::check::{gradcheck, gradgradcheck, random, CheckError, CheckOptions};
use autograd::prelude::*;
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Rng, Tensor};

const ALPHA: f64 = 0.03;

/// One layer: weight shape, bias length, and whether it is a transposed convolution with which
/// padding.
struct Layer {
    weight: [usize; 4],
    transposed: Option<usize>,
}

/// The autoencoder of the method: 4 convolutions k4 s2 p2 (ReLU), then transposed convolutions
/// k4 s2 with paddings 2, 1, 2, 1 (ReLU x3, sigmoid). `widths` are the 4 encoder widths.
fn architecture(c: usize, widths: [usize; 4], decoder: &[(usize, usize, usize)]) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut prev = c;
    for w in widths {
        layers.push(Layer {
            weight: [w, prev, 4, 4],
            transposed: None,
        });
        prev = w;
    }
    for &(i, o, p) in decoder {
        layers.push(Layer {
            weight: [i, o, 4, 4],
            transposed: Some(p),
        });
    }
    layers
}

/// PyTorch's default initialisation: uniform in +-1/sqrt(fan_in), fan_in = weight.size(1) k k.
fn init(layers: &[Layer], seed: u64) -> Vec<Tensor<f64>> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut params = Vec::new();
    for l in layers {
        let [a, b, kh, kw] = l.weight;
        let bound = 1.0 / ((b * kh * kw) as f64).sqrt();
        params.push(Tensor::uniform(&l.weight, -bound, bound, &mut rng));
        let out = if l.transposed.is_some() { b } else { a };
        params.push(Tensor::uniform(&[out], -bound, bound, &mut rng));
    }
    params
}

/// `J` from the parameters `p` (weight, bias per layer), the images `x` and references `r`.
fn gradcon_loss<'t>(
    layers: &[Layer],
    p: &[Var<'t, f64>],
    x: Var<'t, f64>,
    r: &[Var<'t, f64>],
) -> autograd::Result<Var<'t, f64>> {
    let mut h = x;
    let n_dec = layers.iter().filter(|l| l.transposed.is_some()).count();
    let mut dec_weights = Vec::new();
    let mut dec_seen = 0;
    for (l, layer) in layers.iter().enumerate() {
        let (w, b) = (&p[2 * l], &p[2 * l + 1]);
        h = match layer.transposed {
            None => h.conv2d(w, Some(b), Conv2dSpec::new(2, 2))?.relu()?,
            Some(pad) => {
                dec_weights.push(*w);
                dec_seen += 1;
                let y = h.conv_transpose2d(w, Some(b), ConvTranspose2dSpec::new(2, pad, 0))?;
                if dec_seen == n_dec {
                    y.sigmoid()?
                } else {
                    y.relu()?
                }
            }
        };
    }
    let mse = h.mse_loss(&x)?;
    let g = autograd::grad(mse, &dec_weights, true)?;
    let tape = x.tape();
    let mut cos_sum = tape.constant(Tensor::scalar(0.0));
    for (gl, rl) in g.iter().zip(r) {
        cos_sum = cos_sum.add(&gl.cosine_similarity(rl)?)?;
    }
    let l_grad = cos_sum.scale(-1.0 / dec_weights.len() as f64)?;
    mse.add(&l_grad.scale(ALPHA)?)
}

/// Runs a check with direction seeds 0, 1, ... until a draw does not cross a kink (the rule of
/// `autograd::check`); any other failure fails the test.
fn check_discarding_kinks(run: impl Fn(u64) -> Result<usize, CheckError>) {
    for seed in 0..8 {
        match run(seed) {
            Ok(n) => {
                assert!(n > 0);
                return;
            }
            Err(CheckError::Kink { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("every draw crossed a kink");
}

#[test]
fn full_autoencoder_first_order_every_parameter() {
    let layers = architecture(
        1,
        [32, 32, 64, 64],
        &[(64, 64, 2), (64, 32, 1), (32, 32, 2), (32, 1, 1)],
    );
    let params = init(&layers, 7);
    let x = random(&[2, 1, 28, 28], 8, 0.0, 1.0);
    let refs: Vec<Tensor<f64>> = (0..4)
        .map(|l| random(&layers[4 + l].weight, 100 + l as u64, -1.0, 1.0))
        .collect();
    check_discarding_kinks(|seed| {
        let opts = CheckOptions {
            directions: 1,
            seed,
            ..CheckOptions::default()
        };
        gradcheck(
            |p| {
                let tape = p[0].tape();
                let xv = tape.constant(x.clone());
                let r: Vec<_> = refs.iter().map(|t| tape.constant(t.clone())).collect();
                gradcon_loss(&layers, p, xv, &r)
            },
            &params,
            &opts,
        )
        .map(|rep| {
            // Every parameter tensor was checked on its own, then all together.
            assert_eq!(rep.comparisons.len(), params.len() + 1);
            rep.comparisons.len()
        })
    });
}

#[test]
fn small_autoencoder_second_order() {
    // Same structure at a size where a third derivative of the MSE is affordable: 8x8 input,
    // encoder 8 -> 5 -> 3, decoder 3 -> 4 -> 8.
    let layers = vec![
        Layer {
            weight: [2, 1, 4, 4],
            transposed: None,
        },
        Layer {
            weight: [2, 2, 4, 4],
            transposed: None,
        },
        Layer {
            weight: [2, 2, 4, 4],
            transposed: Some(2),
        },
        Layer {
            weight: [2, 1, 4, 4],
            transposed: Some(1),
        },
    ];
    let params = init(&layers, 3);
    let x = random(&[2, 1, 8, 8], 4, 0.0, 1.0);
    let refs: Vec<Tensor<f64>> = (0..2)
        .map(|l| random(&layers[2 + l].weight, 50 + l as u64, -1.0, 1.0))
        .collect();
    check_discarding_kinks(|seed| {
        let opts = CheckOptions {
            directions: 1,
            seed,
            ..CheckOptions::default()
        };
        gradgradcheck(
            |p| {
                let tape = p[0].tape();
                let xv = tape.constant(x.clone());
                let r: Vec<_> = refs.iter().map(|t| tape.constant(t.clone())).collect();
                gradcon_loss(&layers, p, xv, &r)
            },
            &params,
            &opts,
        )
        .map(|rep| rep.comparisons.len())
    });
}

#[test]
fn alignment_term_changes_the_gradient() {
    // With alpha > 0 the gradient of J differs from that of the MSE alone: the second-order
    // term is really there (guards against a detached inner gradient).
    let layers = architecture(
        1,
        [4, 4, 4, 4],
        &[(4, 4, 2), (4, 4, 1), (4, 4, 2), (4, 1, 1)],
    );
    let params = init(&layers, 11);
    let x = random(&[2, 1, 28, 28], 12, 0.0, 1.0);
    let tape = Tape::<f64>::new();
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let xv = tape.constant(x);
    let r: Vec<_> = (0..4)
        .map(|l| tape.constant(random(&layers[4 + l].weight, 20 + l as u64, -1.0, 1.0)))
        .collect();
    let j = gradcon_loss(&layers, &p, xv, &r).unwrap();
    let gj = autograd::grad_tensors(j, &p[..2]).unwrap();
    assert!(gj[0].data().iter().all(|v| v.is_finite()));
    // The encoder's first weight only reaches L_grad through the decoder gradients.
    let mut h = xv;
    for (l, layer) in layers.iter().enumerate() {
        let (w, b) = (&p[2 * l], &p[2 * l + 1]);
        h = match layer.transposed {
            None => h
                .conv2d(w, Some(b), Conv2dSpec::new(2, 2))
                .unwrap()
                .relu()
                .unwrap(),
            Some(pad) => {
                let y = h
                    .conv_transpose2d(w, Some(b), ConvTranspose2dSpec::new(2, pad, 0))
                    .unwrap();
                if l == layers.len() - 1 {
                    y.sigmoid().unwrap()
                } else {
                    y.relu().unwrap()
                }
            }
        };
    }
    let gm = autograd::grad_tensors(h.mse_loss(&xv).unwrap(), &p[..2]).unwrap();
    assert!(gj[0].max_abs_diff(&gm[0]).unwrap() > 1e-9);
}
