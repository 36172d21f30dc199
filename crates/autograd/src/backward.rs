//! The reverse sweep: [`grad`] (recorded or eager) and the one place gradients accumulate.

use std::rc::Rc;

use core_tensor::{Element, Tensor};

use crate::ops::{self, Differentiable, Rule};
use crate::tape::{Eager, NodeId, Tape, Var};
use crate::Result;

/// Gradients of the scalar `output` with respect to `inputs`: `d output / d input_k`, each of
/// its input's shape (zeros where `output` does not depend on an input).
///
/// With `create_graph = true` the backward pass is recorded on the tape, so the gradients are
/// ordinary variables that can be differentiated again, to any order (PyTorch's
/// `create_graph=True`). With `false` the rules run eagerly on plain tensors, nothing but the
/// returned constants is recorded, and every intermediate gradient is freed as soon as it has
/// been used.
///
/// ```
/// use autograd::prelude::*;
/// use core_tensor::Tensor;
/// let tape = Tape::<f64>::new();
/// let x = tape.param(Tensor::scalar(3.0));
/// let y = x.square()?.mul(&x)?; // x^3
/// let [dy] = autograd::grad(y, &[x], true)?[..] else { unreachable!() };
/// let [d2y] = autograd::grad(dy, &[x], true)?[..] else { unreachable!() };
/// assert_eq!(dy.to_scalar()?, 27.0); // 3 x^2
/// assert_eq!(d2y.to_scalar()?, 18.0); // 6 x
/// # Ok::<(), autograd::Error>(())
/// ```
pub fn grad<'t, T: Element>(
    output: Var<'t, T>,
    inputs: &[Var<'t, T>],
    create_graph: bool,
) -> Result<Vec<Var<'t, T>>> {
    if create_graph {
        let tape = output.tape();
        check_inputs(output, inputs)?;
        let seed = tape.constant(Tensor::full(output.value().shape(), T::ONE));
        let lift = |id: NodeId| var_at(tape, id);
        let grads = backprop(tape, output.id(), &ids(inputs), seed, &lift)?;
        Ok(grads
            .into_iter()
            .zip(inputs)
            .map(|(g, x)| g.unwrap_or_else(|| x.constant_like(Tensor::zeros(x.value().shape()))))
            .collect())
    } else {
        let grads = grad_tensors(output, inputs)?;
        Ok(grads
            .into_iter()
            .map(|g| output.tape().constant(g))
            .collect())
    }
}

/// [`grad`] without recording: the gradients as plain tensors.
pub fn grad_tensors<'t, T: Element>(
    output: Var<'t, T>,
    inputs: &[Var<'t, T>],
) -> Result<Vec<Tensor<T>>> {
    let grads = eager_grads(output, &ids(inputs))?;
    Ok(grads
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| match g {
            Some(Eager(t)) => Rc::try_unwrap(t).unwrap_or_else(|t| Tensor::clone(&t)),
            None => Tensor::zeros(x.value().shape()),
        })
        .collect())
}

/// Eager gradients of `output` with respect to arbitrary nodes (leaves or intermediates):
/// `None` where the output does not depend on a node.
pub(crate) fn eager_grads<T: Element>(
    output: Var<'_, T>,
    wanted: &[NodeId],
) -> Result<Vec<Option<Eager<T>>>> {
    let tape = output.tape();
    ops::check_scalar("grad", &output.value())?;
    let seed = Eager(Rc::new(Tensor::full(output.value().shape(), T::ONE)));
    let lift = |id: NodeId| Eager(tape.value(id));
    backprop(tape, output.id(), wanted, seed, &lift)
}

fn ids<T: Element>(vars: &[Var<'_, T>]) -> Vec<NodeId> {
    vars.iter().map(Var::id).collect()
}

fn var_at<T: Element>(tape: &Tape<T>, id: NodeId) -> Var<'_, T> {
    Var::at(tape, id)
}

fn check_inputs<T: Element>(output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<()> {
    ops::check_scalar("grad", &output.value())?;
    for x in inputs {
        output.same_tape(x, "grad")?;
    }
    Ok(())
}

/// Adds `g` to the gradient collected so far in `slot`: the only place gradients accumulate.
fn accumulate<T: Element, V: Differentiable<T>>(slot: &mut Option<V>, g: V) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => prev.accumulate(&g)?,
    });
    Ok(())
}

/// The reverse sweep from `output` (seeded with `seed`) to the nodes `wanted`, running each
/// node's rule on values of type `V` (`lift` turns a node into one).
///
/// Only nodes that depend on a wanted node are visited, and rules only compute the gradients of
/// such inputs, so no work (or, when recording, no node) is spent on branches that cannot reach
/// a wanted node. Gradients of intermediate nodes are dropped once their rule has run.
pub(crate) fn backprop<T: Element, V: Differentiable<T>>(
    tape: &Tape<T>,
    output: NodeId,
    wanted: &[NodeId],
    seed: V,
    lift: &dyn Fn(NodeId) -> V,
) -> Result<Vec<Option<V>>> {
    let n = output + 1;
    let mut is_wanted = vec![false; n];
    for &w in wanted.iter().filter(|&&w| w < n) {
        is_wanted[w] = true;
    }
    // needed[i]: node i is a wanted node or has one among its ancestors.
    let needed = tape.with_nodes(|nodes| {
        let mut needed = is_wanted.clone();
        for i in 0..n {
            if !needed[i] {
                if let Some(op) = &nodes[i].op {
                    needed[i] = op.inputs().iter().any(|&&p| needed[p]);
                }
            }
        }
        needed
    });
    let mut grads: Vec<Option<V>> = vec![None; n];
    if needed[output] {
        grads[output] = Some(seed);
    }
    for i in (0..n).rev() {
        if !needed[i] {
            continue;
        }
        let gy = if is_wanted[i] {
            grads[i].clone()
        } else {
            grads[i].take()
        };
        let (Some(gy), Some(op)) = (gy, tape.op(i)) else {
            continue;
        };
        let needs = |p: NodeId| needed[p];
        let mut rule = Rule {
            out: lift(i),
            gy,
            lift,
            needs: &needs,
            sent: Vec::new(),
        };
        ops::backward(&op, &mut rule)?;
        for (p, g) in rule.sent {
            if needed[p] {
                accumulate(&mut grads[p], g)?;
            }
        }
    }
    Ok(wanted
        .iter()
        .map(|&w| if w < n { grads[w].clone() } else { None })
        .collect())
}
