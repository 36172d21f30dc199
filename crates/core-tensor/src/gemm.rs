//! Matrix multiplication: `C <- alpha op(A) op(B) + beta C`.
//!
//! `f32` runs this crate's own register-tile kernels (module `kernels`) on the named [`Isa`] path;
//! `f64` runs the same driver with the generic scalar kernel. Every entry of `C` is a sum over `k` in
//! the same order whatever the thread count (threads split the rows of `C`, never `k`), so the
//! result is bit-identical with any number of threads.

use rayon::prelude::*;

use crate::pool::with_scratch;
use crate::transpose::transpose;
use crate::{Element, Isa, Result, Tensor, TensorError};

pub(crate) mod kernels;

use kernels::{Kernel, TileArgs, MAX_MR, MAX_TILE};

/// Reduction block: `KC` rows of packed `B` (`KC x NR` values) stay in L1 across the row tiles.
const KC: usize = 256;
/// Below this many multiply-adds a GEMM runs on the calling thread only.
const PAR_MIN_MACS: usize = 1 << 21;

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transpose {
    No,
    Yes,
}

/// `C <- alpha op(A) op(B) + beta C` on row-major slices, on the detected SIMD path.
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
    gemm_on(Isa::detect(), m, k, n, alpha, a, ta, b, tb, beta, c)
}

/// [`gemm`] on a named SIMD path.
///
/// # Panics
/// If a slice is shorter than its matrix, or the CPU cannot run `isa`.
pub fn gemm_on<T: Element>(
    isa: Isa,
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
    assert!(
        isa.is_supported(),
        "gemm: the {isa} kernels cannot run on this CPU"
    );
    isa.record();
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for v in c.iter_mut() {
            *v = if beta == T::ZERO { T::ZERO } else { beta * *v };
        }
        return;
    }
    let kern = Kernel::<T>::for_isa(isa);
    let (mr, nr) = (kern.mr, kern.nr);
    // Row `i` of op(A) starts at `a + i a_row`; consecutive `k` are `a_step` apart.
    let (a_row, a_step) = match ta {
        Transpose::No => (k, 1),
        Transpose::Yes => (1, m),
    };
    let panels = n.div_ceil(nr);
    let parallel = m * n * k >= PAR_MIN_MACS && m > mr;
    // Row blocks of whole tiles, about four per thread, so the threads share the work evenly.
    let block_rows = if parallel {
        mr * m
            .div_ceil(mr)
            .div_ceil(4 * rayon::current_num_threads())
            .max(1)
    } else {
        m
    };
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        // Later reduction blocks add to what the first one wrote.
        let beta = if pc == 0 { beta } else { T::ONE };
        with_scratch::<T, _>(panels * kc * nr, |packed| {
            // B panel `jp` holds rows pc..pc+kc of columns jp*nr.., zero-padded to nr columns.
            for jp in 0..panels {
                let panel = &mut packed[jp * kc * nr..(jp + 1) * kc * nr];
                let (j0, cols) = (jp * nr, nr.min(n - jp * nr));
                for (p, row) in panel.chunks_exact_mut(nr).enumerate() {
                    row[cols..].fill(T::ZERO);
                    if tb == Transpose::No {
                        row[..cols].copy_from_slice(&b[(pc + p) * n + j0..][..cols]);
                    }
                }
                if tb == Transpose::Yes {
                    // B is stored n x k: its rows j0.. become the panel's columns.
                    let src = &b[j0 * k + pc..];
                    transpose(kern.isa, src, k, panel, nr, cols, kc);
                }
            }
            let packed = &*packed;
            let block = |(bi, cb): (usize, &mut [T])| {
                let i0 = bi * block_rows;
                let rows_here = cb.len() / n;
                let mut tile = [T::ZERO; MAX_TILE];
                let taps = [(pc * a_step) as isize];
                for it in (0..rows_here).step_by(mr) {
                    let valid = mr.min(rows_here - it);
                    let mut rows = [a.as_ptr(); MAX_MR];
                    for (i, r) in rows.iter_mut().enumerate().take(mr) {
                        // Rows past the end repeat the last valid row; their results are dropped.
                        let row = i0 + it + i.min(valid - 1);
                        *r = a[row * a_row..].as_ptr();
                    }
                    for jp in 0..panels {
                        let cols = nr.min(n - jp * nr);
                        // Whole tiles of `C <- op(A) op(B) (+ C)` go straight to C; the others
                        // through the tile buffer.
                        let direct =
                            cols == nr && alpha == T::ONE && (beta == T::ZERO || beta == T::ONE);
                        let tp = tile.as_mut_ptr();
                        let out = if direct {
                            kern.out_rows(cb[it * n + jp * nr..].as_mut_ptr(), n, valid, tp)
                        } else {
                            kern.out_rows(tp, nr, mr, tp)
                        };
                        let args = TileArgs {
                            rows,
                            taps: &taps,
                            kc,
                            a_step,
                            b: packed[jp * kc * nr..].as_ptr(),
                            b_step: nr,
                            out,
                            accumulate: direct && beta == T::ONE,
                            site: crate::flops::Site::Gemm,
                        };
                        // SAFETY: row `r` of op(A) reads `a[r a_row + (pc + p) a_step]` for
                        // p < kc, inside `a` (asserted length, `pc + kc <= k`); the panel holds
                        // kc rows of nr values; output rows are `nr` values of distinct rows of
                        // `cb` (whole tile inside it) or of the tile buffer; the CPU supports
                        // `isa` (asserted).
                        unsafe { kern.run(&args) };
                        if direct {
                            continue;
                        }
                        for i in 0..valid {
                            let crow = &mut cb[(it + i) * n + jp * nr..][..cols];
                            let trow = &tile[i * nr..][..cols];
                            if beta == T::ZERO {
                                for (cv, &tv) in crow.iter_mut().zip(trow) {
                                    *cv = alpha * tv;
                                }
                            } else {
                                for (cv, &tv) in crow.iter_mut().zip(trow) {
                                    *cv = alpha * tv + beta * *cv;
                                }
                            }
                        }
                    }
                }
            };
            if parallel {
                c.par_chunks_mut(block_rows * n).enumerate().for_each(block);
            } else {
                c.chunks_mut(block_rows * n).enumerate().for_each(block);
            }
        });
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
