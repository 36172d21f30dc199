//! The tape: nodes in execution order, and [`Var`], a copyable handle to one of them.

use std::cell::RefCell;
use std::rc::Rc;

use core_tensor::{Element, Tensor};

use crate::ops::{self, Differentiable, Op};
use crate::{Error, Result};

/// Index of a node on its tape; parents always have smaller indices than their children.
pub type NodeId = usize;

/// One recorded value: the tensor, whether gradients flow to it, and the operation that made it
/// (`None` for leaves: parameters and constants).
#[derive(Debug)]
pub(crate) struct Node<T: Element> {
    pub(crate) value: Rc<Tensor<T>>,
    pub(crate) requires_grad: bool,
    pub(crate) op: Option<Op<T, NodeId>>,
}

/// A record of operations in execution order, for reverse-mode differentiation.
///
/// A tape owns its nodes behind a `RefCell`; there is no global state, so independent tapes run
/// on different threads at the same time (a tape itself is not `Send`: build one per thread).
/// [`Var`]s borrow the tape, so [`Tape::clear`] (which needs `&mut`) can only run once every
/// handle is gone; it keeps the node buffer's capacity for the next iteration.
///
/// ```
/// use autograd::prelude::*;
/// use core_tensor::Tensor;
/// let tape = Tape::<f64>::new();
/// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
/// let y = x.square().unwrap().sum().unwrap(); // y = sum x^2
/// let g = autograd::grad_tensors(y, &[x]).unwrap();
/// assert_eq!(g[0].data(), &[2.0, 4.0]);
/// ```
#[derive(Debug)]
pub struct Tape<T: Element> {
    nodes: RefCell<Vec<Node<T>>>,
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Self {
            nodes: RefCell::new(Vec::new()),
        }
    }

    /// A leaf that gradients are taken with respect to (a model parameter, an input).
    pub fn param(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(Rc::new(value), true, None)
    }

    /// A leaf that is not differentiated (data, targets, reference gradients).
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(Rc::new(value), false, None)
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.borrow().is_empty()
    }

    /// Forgets every node (and so every buffer the tape holds), keeping the allocation of the
    /// node list for reuse.
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
    }

    pub(crate) fn push(
        &self,
        value: Rc<Tensor<T>>,
        requires_grad: bool,
        op: Option<Op<T, NodeId>>,
    ) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            value,
            requires_grad,
            op,
        });
        Var {
            tape: self,
            id: nodes.len() - 1,
        }
    }

    pub(crate) fn value(&self, id: NodeId) -> Rc<Tensor<T>> {
        Rc::clone(&self.nodes.borrow()[id].value)
    }

    /// The operation of node `id` (cloned: rules record new nodes while they run).
    pub(crate) fn op(&self, id: NodeId) -> Option<Op<T, NodeId>> {
        self.nodes.borrow()[id].op.clone()
    }

    /// Runs `f` on the node list (read only).
    pub(crate) fn with_nodes<R>(&self, f: impl FnOnce(&[Node<T>]) -> R) -> R {
        f(&self.nodes.borrow())
    }
}

/// A handle to a node of a [`Tape`]: the tape and the node's index. `Copy`, so it is passed by
/// value freely; the operations come from the traits in [`crate::prelude`].
pub struct Var<'t, T: Element> {
    tape: &'t Tape<T>,
    id: NodeId,
}

impl<T: Element> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element> Copy for Var<'_, T> {}

impl<T: Element> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var#{} {:?}", self.id, self.tape.value(self.id))
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// The node's value (shared, not copied).
    pub fn value(&self) -> Rc<Tensor<T>> {
        self.tape.value(self.id)
    }

    /// The node's index on its tape.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Whether a parameter is among this node's ancestors (or it is one).
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }

    /// The value of a one-value tensor.
    pub fn to_scalar(&self) -> Result<T> {
        Ok(self.value().to_scalar()?)
    }

    /// A handle to node `id` of `tape` (ids handed to this come from the tape itself).
    pub(crate) fn at(tape: &'t Tape<T>, id: NodeId) -> Self {
        debug_assert!(id < tape.len());
        Self { tape, id }
    }

    pub(crate) fn same_tape(&self, other: &Self, op: &'static str) -> Result<()> {
        if std::ptr::eq(self.tape, other.tape) {
            Ok(())
        } else {
            Err(Error::ForeignTape { op })
        }
    }
}

impl<'t, T: Element> Differentiable<T> for Var<'t, T> {
    fn apply(op: Op<T, Self>) -> Result<Self> {
        let inputs = op.inputs();
        let first = *inputs[0];
        for v in &inputs[1..] {
            first.same_tape(v, op.name())?;
        }
        let requires_grad = inputs.iter().any(|v| v.requires_grad());
        let tape = first.tape;
        let out = ops::forward(&op.clone().map(&mut |v: Var<'t, T>| v.value()))?;
        Ok(tape.push(Rc::new(out), requires_grad, Some(op.map(&mut |v| v.id))))
    }

    fn value(&self) -> Rc<Tensor<T>> {
        Var::value(self)
    }

    fn constant_like(&self, value: Tensor<T>) -> Self {
        self.tape.constant(value)
    }
}

/// A plain tensor on which the operations compute at once and record nothing: the backward
/// rules run on it when no graph of the gradient is wanted.
#[derive(Debug, Clone)]
pub(crate) struct Eager<T: Element>(pub(crate) Rc<Tensor<T>>);

impl<T: Element> Differentiable<T> for Eager<T> {
    fn apply(op: Op<T, Self>) -> Result<Self> {
        Ok(Eager(Rc::new(ops::forward(
            &op.map(&mut |e: Eager<T>| e.0),
        )?)))
    }

    fn value(&self) -> Rc<Tensor<T>> {
        Rc::clone(&self.0)
    }

    fn constant_like(&self, value: Tensor<T>) -> Self {
        Eager(Rc::new(value))
    }

    fn accumulate(mut self, g: &Self) -> Result<Self> {
        match Rc::get_mut(&mut self.0) {
            // `a += 1 g` rounds once, as `a + g` does.
            Some(sum) if sum.shape() == g.0.shape() => {
                sum.axpy(T::ONE, &g.0)?;
                Ok(self)
            }
            _ => crate::ops::ElementwiseOps::add(&self, g),
        }
    }
}
