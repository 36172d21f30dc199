//! Matrix multiplication: `C <- alpha op(A) op(B) + beta C`, through `matrixmultiply`.

use crate::{Element, Result, Tensor, TensorError};

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transpose {
    No,
    Yes,
}

/// `C <- alpha op(A) op(B) + beta C` on row-major slices.
///
/// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`. A is stored `m x k` (or `k x m` when
/// transposed), B `k x n` (or `n x k`). With `beta == 0` the old contents of `C` are ignored
/// (NaN included).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn gemm<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    ta: Transpose,
    b: &[T],
    tb: Transpose,
    beta: T,
    c: &mut [T],
) {
    assert!(a.len() >= m * k, "gemm: A holds {} < {m}x{k}", a.len());
    assert!(b.len() >= k * n, "gemm: B holds {} < {k}x{n}", b.len());
    assert!(c.len() >= m * n, "gemm: C holds {} < {m}x{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = match ta {
        Transpose::No => (k as isize, 1),
        Transpose::Yes => (1, m as isize),
    };
    let (rsb, csb) = match tb {
        Transpose::No => (n as isize, 1),
        Transpose::Yes => (1, k as isize),
    };
    // SAFETY: the asserts above show each slice covers its matrix under these strides, and `c`
    // is a unique borrow, so it aliases neither input.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// `op(A) op(B)` for rank-2 tensors.
pub fn matmul<T: Element>(
    a: &Tensor<T>,
    ta: Transpose,
    b: &Tensor<T>,
    tb: Transpose,
) -> Result<Tensor<T>> {
    let bad = || TensorError::ShapeMismatch {
        op: "matmul",
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    };
    let (&[ar, ac], &[br, bc]) = (a.shape(), b.shape()) else {
        return Err(bad());
    };
    let (m, k) = if ta == Transpose::No {
        (ar, ac)
    } else {
        (ac, ar)
    };
    let (k2, n) = if tb == Transpose::No {
        (br, bc)
    } else {
        (bc, br)
    };
    if k != k2 {
        return Err(bad());
    }
    let mut c = Tensor::zeros(&[m, n]);
    gemm(
        m,
        k,
        n,
        T::ONE,
        a.data(),
        ta,
        b.data(),
        tb,
        T::ZERO,
        c.data_mut(),
    );
    Ok(c)
}
