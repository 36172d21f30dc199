//! The closed set of primitive operations, one file per family.
//!
//! Each family file holds the operation's enum variants, its forward computation on tensors, its
//! backward rule and its unit tests. A backward rule is written once, generically over
//! [`Differentiable`], with the same operations as forward passes: run on [`crate::Var`]s it
//! records the backward pass (gradients of gradients), run on plain tensors it computes at once
//! and records nothing. This file only dispatches to the families.

use std::rc::Rc;

use core_tensor::{Element, Tensor};

use crate::tape::NodeId;
use crate::Result;

pub mod conv;
pub mod elementwise;
pub mod loss;
pub mod reduce;
pub mod shape;

pub use conv::{ConvOp, ConvOps};
pub use elementwise::{ElementwiseOp, ElementwiseOps};
pub use loss::LossOps;
pub use reduce::{ReduceOp, ReduceOps};
pub use shape::{ShapeOp, ShapeOps};

/// A primitive operation with its inputs of type `I` (node ids on a tape, variables, or tensors)
/// and its parameters. Closed: adding a variant without a backward rule does not compile.
#[derive(Debug, Clone)]
pub enum Op<T, I> {
    Elementwise(ElementwiseOp<T, I>),
    Reduce(ReduceOp<I>),
    Shape(ShapeOp<I>),
    Conv(ConvOp<I>),
}

impl<T: Element, I> Op<T, I> {
    /// The same operation with every input replaced by `f(input)`, in a fixed order.
    pub fn map<J>(self, f: &mut impl FnMut(I) -> J) -> Op<T, J> {
        match self {
            Op::Elementwise(o) => Op::Elementwise(o.map(f)),
            Op::Reduce(o) => Op::Reduce(o.map(f)),
            Op::Shape(o) => Op::Shape(o.map(f)),
            Op::Conv(o) => Op::Conv(o.map(f)),
        }
    }

    /// The inputs, in the order [`Op::map`] visits them (never empty).
    pub fn inputs(&self) -> Vec<&I> {
        match self {
            Op::Elementwise(o) => o.inputs(),
            Op::Reduce(o) => o.inputs(),
            Op::Shape(o) => o.inputs(),
            Op::Conv(o) => o.inputs(),
        }
    }

    /// The operation's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Elementwise(o) => o.name(),
            Op::Reduce(o) => o.name(),
            Op::Shape(o) => o.name(),
            Op::Conv(o) => o.name(),
        }
    }
}

/// Computes an operation's value from its input tensors.
pub(crate) fn forward<T: Element>(op: &Op<T, Rc<Tensor<T>>>) -> Result<Tensor<T>> {
    match op {
        Op::Elementwise(o) => elementwise::forward(o),
        Op::Reduce(o) => reduce::forward(o),
        Op::Shape(o) => shape::forward(o),
        Op::Conv(o) => conv::forward(o),
    }
}

/// Sends the gradient of each needed input of `op` through `rule`.
pub(crate) fn backward<T: Element, V: Differentiable<T>>(
    op: &Op<T, NodeId>,
    rule: &mut Rule<'_, V>,
) -> Result<()> {
    match op {
        Op::Elementwise(o) => elementwise::backward(o, rule),
        Op::Reduce(o) => reduce::backward(o, rule),
        Op::Shape(o) => shape::backward(o, rule),
        Op::Conv(o) => conv::backward(o, rule),
    }
}

/// Something the operations apply to: a recorded [`crate::Var`] (the operation is recorded) or,
/// inside the engine, a plain tensor (computed at once). The operations themselves are the
/// default methods of the family traits ([`ElementwiseOps`], [`ReduceOps`], [`ShapeOps`],
/// [`ConvOps`], [`LossOps`]), implemented for every `Differentiable`.
pub trait Differentiable<T: Element>: Clone + Sized {
    /// Runs (and, for variables, records) one primitive operation.
    fn apply(op: Op<T, Self>) -> Result<Self>;
    /// The current value.
    fn value(&self) -> Rc<Tensor<T>>;
    /// A constant in the same context (on the same tape for variables).
    fn constant_like(&self, value: Tensor<T>) -> Self;
    /// The value's shape.
    fn shape(&self) -> Vec<usize> {
        self.value().shape().to_vec()
    }
    /// `self + g`: two gradients of one node summed. Variables record an `add`; plain values
    /// that own their tensor add in place (the same sums, without a new tensor).
    fn accumulate(self, g: &Self) -> Result<Self> {
        self.add(g)
    }
}

/// What a backward rule sees: the node's output and incoming gradient, its inputs on demand, and
/// where to send their gradients. Rules only compute the gradients of inputs that [`Rule::needs`].
pub(crate) struct Rule<'a, V> {
    pub(crate) out: V,
    pub(crate) gy: V,
    pub(crate) lift: &'a dyn Fn(NodeId) -> V,
    pub(crate) needs: &'a dyn Fn(NodeId) -> bool,
    pub(crate) sent: Vec<(NodeId, V)>,
}

impl<V: Clone> Rule<'_, V> {
    /// Input `id` as a value the rule can compute with.
    pub(crate) fn input(&self, id: NodeId) -> V {
        (self.lift)(id)
    }
    /// Whether the gradient of input `id` is wanted.
    pub(crate) fn needs(&self, id: NodeId) -> bool {
        (self.needs)(id)
    }
    /// Hands the gradient of input `id` to the engine (which accumulates it).
    pub(crate) fn send(&mut self, id: NodeId, g: V) {
        self.sent.push((id, g));
    }
}

/// Shape check for rules and ops that need a one-value tensor.
pub(crate) fn check_scalar<T: Element>(op: &'static str, t: &Tensor<T>) -> Result<()> {
    if t.len() == 1 {
        Ok(())
    } else {
        Err(crate::Error::NotScalar {
            op,
            shape: t.shape().to_vec(),
        })
    }
}
