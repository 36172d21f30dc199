//! Elementwise operations: arithmetic, activations, scalar and per-channel broadcasting.

use std::rc::Rc;

use core_tensor::{Element, Layout, Tensor, TensorError};

use super::{check_scalar, Differentiable, Op, ReduceOps, Rule, ShapeOps};
use crate::tape::NodeId;
use crate::Result;

/// Elementwise operations; binary ones need equal shapes.
#[derive(Debug, Clone)]
pub enum ElementwiseOp<T, I> {
    Add(I, I),
    Sub(I, I),
    Mul(I, I),
    Div(I, I),
    Neg(I),
    Square(I),
    Sqrt(I),
    Exp(I),
    Relu(I),
    Sigmoid(I),
    /// `x + c`.
    AddScalar(I, T),
    /// `c x`.
    Scale(I, T),
    /// `s x` with `s` a one-value tensor.
    ScaleBy {
        x: I,
        s: I,
    },
    /// `max(x, t)`.
    ClampMin(I, T),
    /// `g` where `x > threshold`, else 0: ReLU's (and `ClampMin`'s) backward. Its derivative in
    /// `x` is zero wherever it exists, so only `g` receives a gradient.
    Gate {
        g: I,
        x: I,
        threshold: T,
    },
    /// `g s (1 - s)`: the sigmoid's backward from its output `s`, one pass instead of four.
    SigmoidBackward {
        g: I,
        s: I,
    },
    /// `x[n, c, h, w] + bias[c]` (`x` in the given layout).
    AddPerChannel {
        x: I,
        bias: I,
        layout: Layout,
    },
}

use ElementwiseOp as E;

impl<T: Element, I> ElementwiseOp<T, I> {
    pub(crate) fn map<J>(self, f: &mut impl FnMut(I) -> J) -> ElementwiseOp<T, J> {
        match self {
            E::Add(a, b) => E::Add(f(a), f(b)),
            E::Sub(a, b) => E::Sub(f(a), f(b)),
            E::Mul(a, b) => E::Mul(f(a), f(b)),
            E::Div(a, b) => E::Div(f(a), f(b)),
            E::Neg(x) => E::Neg(f(x)),
            E::Square(x) => E::Square(f(x)),
            E::Sqrt(x) => E::Sqrt(f(x)),
            E::Exp(x) => E::Exp(f(x)),
            E::Relu(x) => E::Relu(f(x)),
            E::Sigmoid(x) => E::Sigmoid(f(x)),
            E::AddScalar(x, c) => E::AddScalar(f(x), c),
            E::Scale(x, c) => E::Scale(f(x), c),
            E::ScaleBy { x, s } => {
                let x = f(x);
                E::ScaleBy { x, s: f(s) }
            }
            E::ClampMin(x, t) => E::ClampMin(f(x), t),
            E::Gate { g, x, threshold } => {
                let g = f(g);
                E::Gate {
                    g,
                    x: f(x),
                    threshold,
                }
            }
            E::SigmoidBackward { g, s } => {
                let g = f(g);
                E::SigmoidBackward { g, s: f(s) }
            }
            E::AddPerChannel { x, bias, layout } => {
                let x = f(x);
                E::AddPerChannel {
                    x,
                    bias: f(bias),
                    layout,
                }
            }
        }
    }

    pub(crate) fn inputs(&self) -> Vec<&I> {
        match self {
            E::Add(a, b) | E::Sub(a, b) | E::Mul(a, b) | E::Div(a, b) => vec![a, b],
            E::Neg(x)
            | E::Square(x)
            | E::Sqrt(x)
            | E::Exp(x)
            | E::Relu(x)
            | E::Sigmoid(x)
            | E::AddScalar(x, _)
            | E::Scale(x, _)
            | E::ClampMin(x, _) => vec![x],
            E::ScaleBy { x, s } => vec![x, s],
            E::Gate { g, x, .. } => vec![g, x],
            E::SigmoidBackward { g, s } => vec![g, s],
            E::AddPerChannel { x, bias, .. } => vec![x, bias],
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            E::Add(..) => "add",
            E::Sub(..) => "sub",
            E::Mul(..) => "mul",
            E::Div(..) => "div",
            E::Neg(_) => "neg",
            E::Square(_) => "square",
            E::Sqrt(_) => "sqrt",
            E::Exp(_) => "exp",
            E::Relu(_) => "relu",
            E::Sigmoid(_) => "sigmoid",
            E::AddScalar(..) => "add_scalar",
            E::Scale(..) => "scale",
            E::ScaleBy { .. } => "scale_by",
            E::ClampMin(..) => "clamp_min",
            E::Gate { .. } => "gate",
            E::SigmoidBackward { .. } => "sigmoid_backward",
            E::AddPerChannel { .. } => "add_per_channel",
        }
    }

    /// For operations with a kink (a point where the derivative jumps): the input whose position
    /// relative to the threshold selects the branch, and the threshold.
    pub(crate) fn kink(&self) -> Option<(&I, T)> {
        match self {
            E::Relu(x) => Some((x, T::ZERO)),
            E::ClampMin(x, t) => Some((x, *t)),
            E::Gate { x, threshold, .. } => Some((x, *threshold)),
            _ => None,
        }
    }
}

pub(crate) fn forward<T: Element>(op: &ElementwiseOp<T, Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    Ok(match op {
        E::Add(a, b) => a.add(b)?,
        E::Sub(a, b) => a.sub(b)?,
        E::Mul(a, b) => a.mul(b)?,
        E::Div(a, b) => a.div(b)?,
        E::Neg(x) => x.neg(),
        E::Square(x) => x.square(),
        E::Sqrt(x) => x.sqrt(),
        E::Exp(x) => x.exp(),
        E::Relu(x) => x.relu(),
        E::Sigmoid(x) => x.sigmoid(),
        E::AddScalar(x, c) => x.map(|v| v + *c),
        E::Scale(x, c) => x.scale(*c),
        E::ScaleBy { x, s } => {
            check_scalar("scale_by", s)?;
            x.scale(s.to_scalar()?)
        }
        E::ClampMin(x, t) => x.map(|v| if v > *t { v } else { *t }),
        E::Gate { g, x, threshold } => {
            if *threshold == T::ZERO {
                g.relu_backward(x)?
            } else {
                if g.shape() != x.shape() {
                    return Err(TensorError::ShapeMismatch {
                        op: "gate",
                        lhs: g.shape().to_vec(),
                        rhs: x.shape().to_vec(),
                    }
                    .into());
                }
                let data = g
                    .data()
                    .iter()
                    .zip(x.data())
                    .map(|(&gv, &xv)| if xv > *threshold { gv } else { T::ZERO })
                    .collect();
                Tensor::from_vec(data, g.shape())?
            }
        }
        E::SigmoidBackward { g, s } => g.sigmoid_backward(s)?,
        E::AddPerChannel { x, bias, layout } => {
            let mut y = Tensor::clone(x);
            y.add_per_channel(bias, *layout)?;
            y
        }
    })
}

/// Vector-Jacobian products of the elementwise operations.
pub(crate) fn backward<T: Element, V: Differentiable<T>>(
    op: &ElementwiseOp<T, NodeId>,
    r: &mut Rule<'_, V>,
) -> Result<()> {
    let gy = r.gy.clone();
    match *op {
        E::Add(a, b) => {
            if r.needs(a) {
                r.send(a, gy.clone());
            }
            if r.needs(b) {
                r.send(b, gy);
            }
        }
        E::Sub(a, b) => {
            if r.needs(a) {
                r.send(a, gy.clone());
            }
            if r.needs(b) {
                r.send(b, gy.neg()?);
            }
        }
        E::Mul(a, b) => {
            if r.needs(a) {
                r.send(a, gy.mul(&r.input(b))?);
            }
            if r.needs(b) {
                r.send(b, gy.mul(&r.input(a))?);
            }
        }
        E::Div(a, b) => {
            // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -(a/b)/b.
            let bv = r.input(b);
            if r.needs(a) {
                r.send(a, gy.div(&bv)?);
            }
            if r.needs(b) {
                r.send(b, gy.mul(&r.out)?.div(&bv)?.neg()?);
            }
        }
        E::Neg(x) => r.send(x, gy.neg()?),
        E::Square(x) => r.send(x, gy.mul(&r.input(x))?.scale(T::from_f64(2.0))?),
        // d sqrt(x) = 1 / (2 sqrt(x)).
        E::Sqrt(x) => r.send(x, gy.div(&r.out)?.scale(T::from_f64(0.5))?),
        E::Exp(x) => r.send(x, gy.mul(&r.out)?),
        E::Relu(x) => r.send(x, gy.gate(&r.input(x), T::ZERO)?),
        // s' = s (1 - s), from the output s.
        E::Sigmoid(x) => r.send(x, gy.sigmoid_backward(&r.out)?),
        // d/dg = s (1 - s); d/ds = g (1 - 2 s).
        E::SigmoidBackward { g, s } => {
            let sv = r.input(s);
            if r.needs(g) {
                r.send(g, gy.sigmoid_backward(&sv)?);
            }
            if r.needs(s) {
                let one_minus_2s = sv.scale(T::from_f64(-2.0))?.add_scalar(T::ONE)?;
                r.send(s, gy.mul(&r.input(g))?.mul(&one_minus_2s)?);
            }
        }
        E::AddScalar(x, _) => r.send(x, gy),
        E::Scale(x, c) => r.send(x, gy.scale(c)?),
        E::ScaleBy { x, s } => {
            if r.needs(x) {
                r.send(x, gy.scale_by(&r.input(s))?);
            }
            if r.needs(s) {
                let sv = r.input(s);
                r.send(s, gy.dot(&r.input(x))?.reshape(&sv.shape())?);
            }
        }
        E::ClampMin(x, t) => r.send(x, gy.gate(&r.input(x), t)?),
        E::Gate { g, x, threshold } => {
            // The gate is locally constant in x (almost everywhere): x receives nothing.
            r.send(g, gy.gate(&r.input(x), threshold)?);
        }
        E::AddPerChannel { x, bias, layout } => {
            if r.needs(x) {
                r.send(x, gy.clone());
            }
            if r.needs(bias) {
                r.send(bias, gy.sum_per_channel(layout)?);
            }
        }
    }
    Ok(())
}

fn ew<T: Element, V: Differentiable<T>>(op: ElementwiseOp<T, V>) -> Result<V> {
    V::apply(Op::Elementwise(op))
}

/// Elementwise operations on anything [`Differentiable`] (import with [`crate::prelude`]).
pub trait ElementwiseOps<T: Element>: Differentiable<T> {
    /// `self + other` (same shapes).
    fn add(&self, other: &Self) -> Result<Self> {
        ew(E::Add(self.clone(), other.clone()))
    }
    /// `self - other` (same shapes).
    fn sub(&self, other: &Self) -> Result<Self> {
        ew(E::Sub(self.clone(), other.clone()))
    }
    /// `self * other` elementwise (same shapes).
    fn mul(&self, other: &Self) -> Result<Self> {
        ew(E::Mul(self.clone(), other.clone()))
    }
    /// `self / other` elementwise (same shapes).
    fn div(&self, other: &Self) -> Result<Self> {
        ew(E::Div(self.clone(), other.clone()))
    }
    /// `-self`.
    fn neg(&self) -> Result<Self> {
        ew(E::Neg(self.clone()))
    }
    /// `self^2`.
    fn square(&self) -> Result<Self> {
        ew(E::Square(self.clone()))
    }
    /// `sqrt(self)`; its derivative `1 / (2 sqrt(x))` is infinite at 0.
    fn sqrt(&self) -> Result<Self> {
        ew(E::Sqrt(self.clone()))
    }
    /// `e^self`.
    fn exp(&self) -> Result<Self> {
        ew(E::Exp(self.clone()))
    }
    /// `max(self, 0)`; derivative `1[x > 0]` (0 at the kink).
    fn relu(&self) -> Result<Self> {
        ew(E::Relu(self.clone()))
    }
    /// `1 / (1 + e^-self)`; derivative `s (1 - s)`.
    fn sigmoid(&self) -> Result<Self> {
        ew(E::Sigmoid(self.clone()))
    }
    /// `self + c`.
    fn add_scalar(&self, c: T) -> Result<Self> {
        ew(E::AddScalar(self.clone(), c))
    }
    /// `c * self` (alias of [`ElementwiseOps::scale`]).
    fn mul_scalar(&self, c: T) -> Result<Self> {
        self.scale(c)
    }
    /// `c * self`.
    fn scale(&self, c: T) -> Result<Self> {
        ew(E::Scale(self.clone(), c))
    }
    /// `s * self` with `s` a differentiable one-value tensor.
    fn scale_by(&self, s: &Self) -> Result<Self> {
        ew(E::ScaleBy {
            x: self.clone(),
            s: s.clone(),
        })
    }
    /// `max(self, t)`; derivative `1[x > t]`.
    fn clamp_min(&self, t: T) -> Result<Self> {
        ew(E::ClampMin(self.clone(), t))
    }
    /// `self` where `x > threshold`, else 0 (a gradient gated by a kink's side).
    fn gate(&self, x: &Self, threshold: T) -> Result<Self> {
        ew(E::Gate {
            g: self.clone(),
            x: x.clone(),
            threshold,
        })
    }
    /// ReLU's backward: `self * 1[x > 0]`, with `self` the incoming gradient.
    fn relu_backward(&self, x: &Self) -> Result<Self> {
        self.gate(x, T::ZERO)
    }
    /// The sigmoid's backward `self * s (1 - s)`, with `self` the incoming gradient and `s` the
    /// sigmoid's output.
    fn sigmoid_backward(&self, s: &Self) -> Result<Self> {
        ew(E::SigmoidBackward {
            g: self.clone(),
            s: s.clone(),
        })
    }
    /// `self[n, c, h, w] + bias[c]` for a `self` in `layout` and a `[C]` bias.
    fn add_per_channel(&self, bias: &Self, layout: Layout) -> Result<Self> {
        ew(E::AddPerChannel {
            x: self.clone(),
            bias: bias.clone(),
            layout,
        })
    }
}

impl<T: Element, V: Differentiable<T>> ElementwiseOps<T> for V {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{assert_grads, random};
    use crate::Tape;

    #[test]
    fn forward_values() {
        let tape = Tape::<f64>::new();
        let a = tape.constant(Tensor::from_vec(vec![1.0, -2.0, 4.0], &[3]).unwrap());
        let b = tape.constant(Tensor::from_vec(vec![2.0, 0.5, -1.0], &[3]).unwrap());
        let v = |x: Var<'_, f64>| x.value().data().to_vec();
        assert_eq!(v(a.add(&b).unwrap()), [3.0, -1.5, 3.0]);
        assert_eq!(v(a.sub(&b).unwrap()), [-1.0, -2.5, 5.0]);
        assert_eq!(v(a.mul(&b).unwrap()), [2.0, -1.0, -4.0]);
        assert_eq!(v(a.div(&b).unwrap()), [0.5, -4.0, -4.0]);
        assert_eq!(v(a.relu().unwrap()), [1.0, 0.0, 4.0]);
        assert_eq!(v(a.clamp_min(1.5).unwrap()), [1.5, 1.5, 4.0]);
        assert_eq!(v(b.gate(&a, 0.0).unwrap()), [2.0, 0.0, -1.0]);
        assert_eq!(v(b.gate(&a, 2.0).unwrap()), [0.0, 0.0, -1.0]);
        assert_eq!(v(a.add_scalar(1.0).unwrap()), [2.0, -1.0, 5.0]);
        let s = tape.constant(Tensor::from_vec(vec![0.5, 0.25, 1.0], &[3]).unwrap());
        assert_eq!(v(b.sigmoid_backward(&s).unwrap()), [0.5, 0.09375, 0.0]);
        let s = tape.constant(Tensor::scalar(3.0));
        assert_eq!(v(a.scale_by(&s).unwrap()), [3.0, -6.0, 12.0]);
        let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 1, 2]).unwrap());
        let bias = tape.constant(Tensor::from_vec(vec![10.0, 20.0], &[2]).unwrap());
        assert_eq!(
            v(x.add_per_channel(&bias, Layout::Nchw).unwrap()),
            [11.0, 12.0, 23.0, 24.0]
        );
        assert_eq!(
            v(x.add_per_channel(&bias, Layout::Nhwc).unwrap()),
            [11.0, 22.0, 13.0, 24.0]
        );
    }

    use crate::Var;

    #[test]
    fn shape_mismatch_is_an_error_naming_the_op() {
        let tape = Tape::<f32>::new();
        let a = tape.constant(Tensor::zeros(&[2]));
        let b = tape.constant(Tensor::zeros(&[3]));
        let e = a.add(&b).unwrap_err().to_string();
        assert!(e.contains("add"), "{e}");
    }

    #[test]
    fn foreign_tapes_are_rejected() {
        let (t1, t2) = (Tape::<f64>::new(), Tape::<f64>::new());
        let a = t1.constant(Tensor::zeros(&[2]));
        let b = t2.constant(Tensor::zeros(&[2]));
        assert!(matches!(
            a.mul(&b),
            Err(crate::Error::ForeignTape { op: "mul" })
        ));
    }

    #[test]
    fn gradients_first_and_second_order() {
        // Inputs kept away from kinks and singularities so that every draw is smooth.
        let shape = [2, 3];
        let x = random(&shape, 1, 0.5, 2.0);
        let y = random(&shape, 2, 0.5, 2.0).scale(-1.0);
        let s = Tensor::scalar(0.7);
        assert_grads(|v| v[0].add(&v[1]), &[x.clone(), y.clone()]);
        assert_grads(|v| v[0].sub(&v[1]), &[x.clone(), y.clone()]);
        assert_grads(|v| v[0].mul(&v[1]), &[x.clone(), y.clone()]);
        assert_grads(|v| v[0].div(&v[1]), &[x.clone(), y.clone()]);
        assert_grads(|v| v[0].neg(), std::slice::from_ref(&x));
        assert_grads(|v| v[0].square(), std::slice::from_ref(&y));
        assert_grads(|v| v[0].sqrt(), std::slice::from_ref(&x));
        assert_grads(|v| v[0].exp(), std::slice::from_ref(&y));
        assert_grads(|v| v[0].relu(), std::slice::from_ref(&x));
        assert_grads(|v| v[0].relu(), std::slice::from_ref(&y));
        assert_grads(|v| v[0].sigmoid(), std::slice::from_ref(&y));
        let sig = random(&shape, 7, 0.05, 0.95);
        assert_grads(|v| v[0].sigmoid_backward(&v[1]), &[y.clone(), sig]);
        assert_grads(|v| v[0].add_scalar(3.0), std::slice::from_ref(&x));
        assert_grads(|v| v[0].scale(-1.5), std::slice::from_ref(&x));
        assert_grads(|v| v[0].scale_by(&v[1]), &[x.clone(), s]);
        assert_grads(|v| v[0].clamp_min(1.0), &[x.clone().scale(0.9)]);
        let mixed = random(&shape, 5, -1.0, 1.0);
        assert_grads(|v| v[0].gate(&v[1], 0.0), &[x.clone(), mixed]);
        let nchw = random(&[2, 3, 2, 2], 3, -1.0, 1.0);
        let bias = random(&[3], 4, -1.0, 1.0);
        assert_grads(
            |v| v[0].add_per_channel(&v[1], Layout::Nchw),
            &[nchw, bias.clone()],
        );
        let nhwc = random(&[2, 2, 2, 3], 6, -1.0, 1.0);
        assert_grads(|v| v[0].add_per_channel(&v[1], Layout::Nhwc), &[nhwc, bias]);
    }
}
