//! What several integration tests share.

use autograd::prelude::*;
use core_tensor::{Conv2dSpec, ConvTranspose2dSpec, Element, Tensor};

/// A GradCon-style loss on a two-layer autoencoder (`p`: conv weight and bias, transposed conv
/// weight and bias): the reconstruction MSE of `x` plus the cosine alignment, weighted -0.03,
/// of the decoder weight's gradient (taken with `create_graph`) with `r`.
pub fn tiny_gradcon_loss<'t, T: Element>(
    p: &[Var<'t, T>],
    x: &Tensor<T>,
    r: &Tensor<T>,
) -> Var<'t, T> {
    let tape = p[0].tape();
    let xv = tape.constant(x.clone());
    let h = xv
        .conv2d(&p[0], Some(&p[1]), Conv2dSpec::new(2, 2))
        .unwrap()
        .relu()
        .unwrap();
    let y = h
        .conv_transpose2d(&p[2], Some(&p[3]), ConvTranspose2dSpec::new(2, 2, 0))
        .unwrap()
        .sigmoid()
        .unwrap();
    let mse = y.mse_loss(&xv).unwrap();
    let g = autograd::grad(mse, &[p[2]], true).unwrap()[0];
    let cos = g.cosine_similarity(&tape.constant(r.clone())).unwrap();
    mse.add(&cos.scale(T::from_f64(-0.03)).unwrap()).unwrap()
}
