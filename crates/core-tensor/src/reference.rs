//! Naive loop references in f64: the oracle every fast kernel is tested against.
//!
//! Each function is the definition written as loops, accumulating in f64 whatever the element
//! type. Shapes are assumed valid (the public kernels check them first).

use crate::conv::{Conv2dSpec, ConvTranspose2dSpec};
use crate::{Element, Tensor};

fn f64s<T: Element>(t: &Tensor<T>) -> Vec<f64> {
    t.data().iter().map(|v| v.to_f64()).collect()
}

/// `y[n,o,i,j] = b[o] + sum_{c,p,q} x[n,c,i s-pad+p, j s-pad+q] w[o,c,p,q]`.
pub fn conv2d<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: Conv2dSpec,
) -> Tensor<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, kh, kw) = (ws[0], ws[2], ws[3]);
    let [ho, wo] = spec.output_hw([h, wd], [kh, kw]).expect("valid geometry");
    let (xv, wv) = (f64s(x), f64s(w));
    let bv = b.map(f64s);
    let mut y = vec![0.0; n * o * ho * wo];
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = bv.as_ref().map_or(0.0, |b| b[oi]);
                    for ci in 0..c {
                        for p in 0..kh {
                            for q in 0..kw {
                                let r =
                                    (i * spec.stride[0] + p) as isize - spec.padding[0] as isize;
                                let s =
                                    (j * spec.stride[1] + q) as isize - spec.padding[1] as isize;
                                if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                                    continue;
                                }
                                let xi = ((ni * c + ci) * h + r as usize) * wd + s as usize;
                                let wi = ((oi * c + ci) * kh + p) * kw + q;
                                acc += xv[xi] * wv[wi];
                            }
                        }
                    }
                    y[((ni * o + oi) * ho + i) * wo + j] = acc;
                }
            }
        }
    }
    Tensor::from_vec(y, &[n, o, ho, wo]).expect("sizes agree")
}

/// `y[n,o, i s-pad+p, j s-pad+q] += x[n,c,i,j] w[c,o,p,q]`, plus `b[o]` (PyTorch's ConvTranspose2d).
pub fn conv_transpose2d<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    spec: ConvTranspose2dSpec,
) -> Tensor<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, kh, kw) = (ws[1], ws[2], ws[3]);
    let [ho, wo] = spec.output_hw([h, wd], [kh, kw]).expect("valid geometry");
    let (xv, wv) = (f64s(x), f64s(w));
    let mut y = vec![0.0; n * o * ho * wo];
    if let Some(b) = b {
        let bv = f64s(b);
        for (k, v) in y.iter_mut().enumerate() {
            *v = bv[(k / (ho * wo)) % o];
        }
    }
    for ni in 0..n {
        for ci in 0..c {
            for i in 0..h {
                for j in 0..wd {
                    let xval = xv[((ni * c + ci) * h + i) * wd + j];
                    for oi in 0..o {
                        for p in 0..kh {
                            for q in 0..kw {
                                let r =
                                    (i * spec.stride[0] + p) as isize - spec.padding[0] as isize;
                                let s =
                                    (j * spec.stride[1] + q) as isize - spec.padding[1] as isize;
                                if r < 0 || s < 0 || r >= ho as isize || s >= wo as isize {
                                    continue;
                                }
                                let wi = ((ci * o + oi) * kh + p) * kw + q;
                                y[((ni * o + oi) * ho + r as usize) * wo + s as usize] +=
                                    xval * wv[wi];
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(y, &[n, o, ho, wo]).expect("sizes agree")
}

/// `dw[o,c,p,q] = sum_{n,i,j} x[n,c,i s-pad+p, j s-pad+q] gy[n,o,i,j]`.
pub fn conv2d_weight_grad<T: Element>(
    x: &Tensor<T>,
    gy: &Tensor<T>,
    kernel_hw: [usize; 2],
    spec: Conv2dSpec,
) -> Tensor<f64> {
    let (xs, gs) = (x.shape(), gy.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, ho, wo) = (gs[1], gs[2], gs[3]);
    let [kh, kw] = kernel_hw;
    let (xv, gv) = (f64s(x), f64s(gy));
    let mut dw = vec![0.0; o * c * kh * kw];
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let g = gv[((ni * o + oi) * ho + i) * wo + j];
                    for ci in 0..c {
                        for p in 0..kh {
                            for q in 0..kw {
                                let r =
                                    (i * spec.stride[0] + p) as isize - spec.padding[0] as isize;
                                let s =
                                    (j * spec.stride[1] + q) as isize - spec.padding[1] as isize;
                                if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                                    continue;
                                }
                                dw[((oi * c + ci) * kh + p) * kw + q] +=
                                    xv[((ni * c + ci) * h + r as usize) * wd + s as usize] * g;
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(dw, &[o, c, kh, kw]).expect("sizes agree")
}

/// `C = op(A) op(B)` with `op(A)` `m x k` and `op(B)` `k x n`, row-major, in f64.
pub fn gemm<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for l in 0..k {
                let av = if ta { a[l * m + i] } else { a[i * k + l] };
                let bv = if tb { b[j * k + l] } else { b[l * n + j] };
                acc += av.to_f64() * bv.to_f64();
            }
            c[i * n + j] = acc;
        }
    }
    c
}
