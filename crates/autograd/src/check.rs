//! Finite-difference checks of first and second derivatives, for anyone adding an operation.
//!
//! Both checks compare a vector-Jacobian product with a central difference along random
//! directions, in f64, with PyTorch's reference settings (`eps = 1e-6`, `atol = 1e-5`,
//! `rtol = 1e-3`): for `s(x) = <u, f(x)>` with a fixed random `u`,
//!
//! `<grad s(x), v>  ~  (s(x + eps v) - s(x - eps v)) / (2 eps)`,
//!
//! accepted when `|analytic - numeric| <= atol + rtol |numeric|`. Every input is checked alone
//! (the direction is zero elsewhere), then all together.
//!
//! [`gradgradcheck`] applies the same test to the map `(x, u) -> vjp(x, u) = u^T J_f(x)`, built
//! with `create_graph`, perturbing every input together with the incoming gradient `u`.
//!
//! **Kinks.** At a point where ReLU (or `clamp_min`, or a gate) switches branch the derivative
//! jumps and a central difference across it measures neither side. Rule: a check evaluates which
//! side of its threshold every kink input lies on at `x - eps v`, `x` and `x + eps v`; if any
//! differs, the draw is rejected with [`CheckError::Kink`] (never accepted by loosening the
//! tolerance). Property tests discard such draws (`prop_assume!`); fixed tests pick another seed.

use std::fmt;

use core_tensor::{Rng, Tensor};

use crate::ops::{Op, ReduceOps};
use crate::{grad, grad_tensors, Error, Tape, Var};

/// Step, tolerances, number of random directions and their seed.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    /// Random directions per input (and as many joint ones).
    pub directions: usize,
    pub seed: u64,
}

impl Default for CheckOptions {
    /// PyTorch's `gradcheck` defaults (`eps 1e-6`, `atol 1e-5`, `rtol 1e-3`), two directions.
    fn default() -> Self {
        Self {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            directions: 2,
            seed: 0,
        }
    }
}

/// One directional comparison that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The perturbed input, or `None` when all were perturbed together.
    pub input: Option<usize>,
    pub analytic: f64,
    pub numeric: f64,
}

/// Every comparison a successful check made.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub comparisons: Vec<Comparison>,
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckError {
    /// Building or differentiating the function failed.
    Autograd(Error),
    /// The analytic and numeric directional derivatives disagree.
    Mismatch {
        order: u8,
        input: Option<usize>,
        analytic: f64,
        numeric: f64,
        tolerance: f64,
    },
    /// The perturbation moved a kink input across its threshold: the draw is not differentiable
    /// there and says nothing about the rules (see the module documentation).
    Kink { order: u8, input: Option<usize> },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = |i: &Option<usize>| match i {
            Some(k) => format!("input {k}"),
            None => "all inputs".to_string(),
        };
        match self {
            Self::Autograd(e) => write!(f, "gradient check: {e}"),
            Self::Mismatch {
                order,
                input,
                analytic,
                numeric,
                tolerance,
            } => write!(
                f,
                "order-{order} check along {}: analytic {analytic:e}, numeric {numeric:e}, \
                 difference {:e} above tolerance {tolerance:e}",
                which(input),
                (analytic - numeric).abs()
            ),
            Self::Kink { order, input } => write!(
                f,
                "order-{order} check along {}: the perturbation crosses a kink",
                which(input)
            ),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<Error> for CheckError {
    fn from(e: Error) -> Self {
        Self::Autograd(e)
    }
}

/// A tensor of values uniform in `[low, high)` from a seed (for tests and checks).
pub fn random(shape: &[usize], seed: u64, low: f64, high: f64) -> Tensor<f64> {
    Tensor::uniform(shape, low, high, &mut Rng::seed_from_u64(seed))
}

/// Checks the first derivatives of `f` at `inputs` (see the module documentation).
///
/// ```
/// use autograd::prelude::*;
/// use autograd::check::{gradcheck, random, CheckOptions};
/// let x = random(&[3], 1, 0.5, 1.0);
/// gradcheck(|v| v[0].exp()?.mul(&v[0]), &[x], &CheckOptions::default()).unwrap();
/// ```
pub fn gradcheck<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let u = probe_for(&f, inputs, opts.seed ^ 0x5eed_0001)?;
    let s = scalar_fn(|v| {
        let y = f(v)?;
        y.dot(&y.tape().constant(u.clone()))
    });
    directional(&s, inputs, opts, 1)
}

/// Checks the second derivatives of `f` at `inputs`: [`gradcheck`] of the map
/// `(x, u) -> u^T J_f(x)` built with `create_graph`, perturbing `x` and `u` together.
pub fn gradgradcheck<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let mut all = inputs.to_vec();
    all.push(probe_for(&f, inputs, opts.seed ^ 0x5eed_0002)?);
    let w: Vec<Tensor<f64>> = inputs
        .iter()
        .enumerate()
        .map(|(k, x)| random(x.shape(), opts.seed ^ (0x5eed_1000 + k as u64), -1.0, 1.0))
        .collect();
    let k = inputs.len();
    let s = scalar_fn(|v| {
        let (x, u) = (&v[..k], v[k]);
        let tape = u.tape();
        let vjp = grad(f(x)?.dot(&u)?, x, true)?;
        let mut total = tape.constant(Tensor::scalar(0.0));
        for (g, wk) in vjp.iter().zip(&w) {
            total = crate::ops::ElementwiseOps::add(&total, &g.dot(&tape.constant(wk.clone()))?)?;
        }
        Ok(total)
    });
    directional(&s, &all, opts, 2)
}

/// Runs [`gradcheck`] and [`gradgradcheck`] with the default options and panics with the
/// failure (a kink included: pick inputs away from kinks) - for unit tests of operations.
pub fn assert_grads<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let opts = CheckOptions::default();
    if let Err(e) = gradcheck(&f, inputs, &opts) {
        panic!("{e}");
    }
    if let Err(e) = gradgradcheck(&f, inputs, &opts) {
        panic!("{e}");
    }
}

/// Gives a closure the higher-ranked signature the checks need (inference alone does not).
fn scalar_fn<S>(s: S) -> S
where
    S: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    s
}

/// A random incoming gradient `u` of `f`'s output shape.
fn probe_for<F>(f: &F, inputs: &[Tensor<f64>], seed: u64) -> Result<Tensor<f64>, CheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x.clone())).collect();
    let y = f(&vars)?;
    let shape = y.value().shape().to_vec();
    Ok(random(&shape, seed, -1.0, 1.0))
}

/// The scalar `s` at `inputs`, with the side of every kink input relative to its threshold.
fn evaluate<S>(s: &S, inputs: &[Tensor<f64>]) -> Result<(f64, Vec<bool>), CheckError>
where
    S: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x.clone())).collect();
    let value = s(&vars)?.to_scalar()?;
    Ok((value, kink_sides(&tape)))
}

fn kink_sides(tape: &Tape<f64>) -> Vec<bool> {
    tape.with_nodes(|nodes| {
        let mut sides = Vec::new();
        for node in nodes {
            if let Some(Op::Elementwise(op)) = &node.op {
                if let Some((&x, t)) = op.kink() {
                    sides.extend(nodes[x].value.data().iter().map(|&v| v > t));
                }
            }
        }
        sides
    })
}

fn directional<S>(
    s: &S,
    inputs: &[Tensor<f64>],
    opts: &CheckOptions,
    order: u8,
) -> Result<CheckReport, CheckError>
where
    S: for<'t> Fn(&[Var<'t, f64>]) -> crate::Result<Var<'t, f64>>,
{
    let (analytic_grads, base_sides) = {
        let tape = Tape::new();
        let vars: Vec<_> = inputs.iter().map(|x| tape.param(x.clone())).collect();
        let out = s(&vars)?;
        let g = grad_tensors(out, &vars)?;
        (g, kink_sides(&tape))
    };
    let mut rng = Rng::seed_from_u64(opts.seed);
    let mut comparisons = Vec::new();
    let targets: Vec<Option<usize>> = (0..inputs.len()).map(Some).chain([None]).collect();
    for _ in 0..opts.directions {
        for &target in &targets {
            let dirs: Vec<Tensor<f64>> = inputs
                .iter()
                .enumerate()
                .map(|(k, x)| {
                    let d = Tensor::uniform(x.shape(), -1.0, 1.0, &mut rng);
                    if target.is_none_or(|t| t == k) {
                        d
                    } else {
                        Tensor::zeros(x.shape())
                    }
                })
                .collect();
            let shifted = |sign: f64| -> Vec<Tensor<f64>> {
                inputs
                    .iter()
                    .zip(&dirs)
                    .map(|(x, d)| {
                        let mut y = x.clone();
                        y.axpy(sign * opts.eps, d).expect("same shape");
                        y
                    })
                    .collect()
            };
            let (plus, sides_plus) = evaluate(s, &shifted(1.0))?;
            let (minus, sides_minus) = evaluate(s, &shifted(-1.0))?;
            if sides_plus != base_sides || sides_minus != base_sides {
                return Err(CheckError::Kink {
                    order,
                    input: target,
                });
            }
            let numeric = (plus - minus) / (2.0 * opts.eps);
            let mut analytic = 0.0;
            for (g, d) in analytic_grads.iter().zip(&dirs) {
                // A gradient of the wrong shape is a broken rule: an error, not a panic.
                analytic += g.dot(d).map_err(Error::from)?;
            }
            let tolerance = opts.atol + opts.rtol * numeric.abs();
            // A NaN on either side fails too.
            let close = (analytic - numeric).abs() <= tolerance;
            if !close {
                return Err(CheckError::Mismatch {
                    order,
                    input: target,
                    analytic,
                    numeric,
                    tolerance,
                });
            }
            comparisons.push(Comparison {
                input: target,
                analytic,
                numeric,
            });
        }
    }
    Ok(CheckReport { comparisons })
}
