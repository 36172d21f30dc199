//! Register-tile microkernels shared by GEMM and the convolutions.
//!
//! A microkernel computes one `MR x NR` tile of a product,
//!
//! `tile[i][j] = sum_{t < taps} sum_{p < kc} rows[i][off[t] + p a_step] * b[(t kc + p) b_step + j]`,
//!
//! reading row `i` of the left operand through its own pointer (an *indirect* GEMM): a plain
//! row-major matrix has `rows[i] = a + i lda`, a packed panel `rows[i] = panel + i` with
//! `a_step = MR`, and a convolution points each row at the top-left input pixel of one output
//! position, its taps `off[t]` at the kernel offsets of an NHWC image, so no im2col matrix is ever
//! built. The right operand `b` is a panel of `NR` columns, `b_step` values apart per row,
//! zero-padded to `NR`. Each x86-64 path is a `#[target_feature]` wrapper around one
//! `#[inline(always)]` body; the portable path's body is written over `wide` vectors, compiled
//! for the build's target. [`Kernel::for_isa`] chooses one per call.

use std::any::Any;

use crate::{Element, Isa};

/// The largest `MR` of any path (sizes the row-pointer array).
pub(crate) const MAX_MR: usize = 8;
/// The largest `MR * NR` of any path (sizes the tile buffer).
pub(crate) const MAX_TILE: usize = 8 * 32;

/// Operands of one tile: see the module documentation for the formula.
///
/// The tile's row `i` is written to (or, with `accumulate`, added to) the `NR` values at
/// `out[i]`; a caller that needs another layout points the rows into a tile buffer.
#[derive(Debug)]
pub(crate) struct TileArgs<'a, T> {
    /// One pointer per tile row (`MR` of them; unused rows may repeat a valid pointer).
    pub rows: [*const T; MAX_MR],
    /// Offsets added to every row pointer, one per tap.
    pub taps: &'a [isize],
    /// Reduction steps per tap.
    pub kc: usize,
    /// Distance between consecutive reduction steps within a row.
    pub a_step: usize,
    /// The right-operand panel: `taps.len() * kc` rows of `NR` values, `b_step` apart.
    pub b: *const T,
    pub b_step: usize,
    /// Destination of each tile row (`NR` values each; rows past the valid ones may share a
    /// dummy row).
    pub out: [*mut T; MAX_MR],
    /// Add to the destination instead of overwriting it.
    pub accumulate: bool,
    /// What the tile is part of (for [`crate::flops`]).
    pub site: crate::flops::Site,
}

/// A microkernel: its tile size and entry point.
#[derive(Clone, Copy)]
pub(crate) struct Kernel<T> {
    /// The path this kernel was chosen for (also names the path of helper loops).
    pub isa: Isa,
    pub mr: usize,
    pub nr: usize,
    /// Computes the tile and writes it to `out`.
    ///
    /// # Safety
    /// Every address the formula reads must be inside one live allocation, each `out[i]` must
    /// be valid for `NR` reads and writes and not overlap another row or the inputs, and the CPU
    /// must support the kernel's instruction set.
    run: unsafe fn(&TileArgs<'_, T>),
}

impl<T> std::fmt::Debug for Kernel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernel({}x{})", self.mr, self.nr)
    }
}

impl<T: Element> Kernel<T> {
    /// The kernel of `isa` for `T`: the SIMD paths for `f32`, the generic one for `f64`.
    ///
    /// The caller must have checked `isa.is_supported()`.
    pub fn for_isa(isa: Isa) -> Self {
        let f32_kernel: Kernel<f32> = match isa {
            Isa::Scalar => Kernel::generic(),
            Isa::Portable => Kernel {
                isa,
                mr: portable::MR,
                nr: portable::NR,
                run: portable::tile,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                isa,
                mr: 6,
                nr: 16,
                run: x86::avx2_6x16,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                isa,
                mr: 8,
                nr: 32,
                run: x86::avx512_8x32,
            },
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("no x86 path is supported on this target"),
        };
        // The generic kernel runs for f64 on every path, but is recorded under the named one.
        // `T` is `f32` exactly when the downcast succeeds; other types take the generic kernel.
        match (&f32_kernel as &dyn Any).downcast_ref::<Kernel<T>>() {
            Some(k) => *k,
            None => Kernel {
                isa,
                ..Kernel::generic()
            },
        }
    }

    /// The scalar kernel, generic in the element type.
    pub fn generic() -> Self {
        Kernel {
            isa: Isa::Scalar,
            mr: GENERIC_MR,
            nr: GENERIC_NR,
            run: generic_tile::<T>,
        }
    }

    /// Runs the kernel.
    ///
    /// # Safety
    /// Every address `rows[i] + off[t] + p a_step` (`i < mr`, `t < taps`, `p < kc`) and
    /// `b + r b_step + j` (`r < taps kc`, `j < nr`) must be readable; `out[i] + j` (`j < nr`)
    /// writable, distinct for distinct rows unless a row is a dummy nobody reads, and disjoint
    /// from the inputs; and the CPU must support the instruction set this kernel was chosen for.
    #[inline]
    pub unsafe fn run(&self, args: &TileArgs<'_, T>) {
        crate::flops::add(args.site, self.mr * self.nr * args.kc * args.taps.len());
        // SAFETY: forwarded contract.
        unsafe { (self.run)(args) }
    }

    /// Destination rows `i < valid` at `first + i row_len`, the others at `dummy`.
    pub fn out_rows(
        &self,
        first: *mut T,
        row_len: usize,
        valid: usize,
        dummy: *mut T,
    ) -> [*mut T; MAX_MR] {
        std::array::from_fn(|i| {
            if i < valid.min(self.mr) {
                first.wrapping_add(i * row_len)
            } else {
                dummy
            }
        })
    }
}

const GENERIC_MR: usize = 4;
const GENERIC_NR: usize = 16;

/// # Safety
/// See [`Kernel::run`].
unsafe fn generic_tile<T: Element>(args: &TileArgs<'_, T>) {
    const MR: usize = GENERIC_MR;
    const NR: usize = GENERIC_NR;
    let mut acc = [[T::ZERO; NR]; MR];
    let mut b = args.b;
    for &off in args.taps {
        // SAFETY: the caller guarantees every row address of this tap is readable.
        let rows: [*const T; MR] = std::array::from_fn(|i| unsafe { args.rows[i].offset(off) });
        for p in 0..args.kc {
            // SAFETY: row `b` of the panel holds `NR` readable values (caller's contract).
            let bv: [T; NR] = std::array::from_fn(|j| unsafe { *b.add(j) });
            for i in 0..MR {
                // SAFETY: `rows[i] + p a_step` is readable (caller's contract).
                let a = unsafe { *rows[i].add(p * args.a_step) };
                for j in 0..NR {
                    acc[i][j] += a * bv[j];
                }
            }
            // SAFETY: stays within (or one past) the panel the caller described.
            b = unsafe { b.add(args.b_step) };
        }
    }
    for i in 0..MR {
        // SAFETY: `out[i]` holds NR writable values (caller's contract).
        let dst = unsafe { std::slice::from_raw_parts_mut(args.out[i], NR) };
        if args.accumulate {
            for (d, &a) in dst.iter_mut().zip(&acc[i]) {
                *d += a;
            }
        } else {
            dst.copy_from_slice(&acc[i]);
        }
    }
}

/// The portable kernel: `wide` vectors of four lanes (one SSE2, NEON or simd128 register).
mod portable {
    use std::ptr;

    use wide::f32x4;

    use super::TileArgs;

    /// Tile rows.
    pub(super) const MR: usize = 4;
    /// Tile columns: `NV` vectors of four.
    pub(super) const NR: usize = 4 * NV;
    const NV: usize = 4;

    /// The body: `MR` rows x `NR` columns in `MR NV` accumulators, one broadcast of the left
    /// operand per row and step. `mul_add` rounds twice where `wide` has no fused multiply-add
    /// (SSE2), as the scalar kernel does.
    ///
    /// The shape, 4 x 16, was measured on SSE2 on one thread against 6 x 8, 5 x 8, 8 x 8,
    /// 4 x 12, 3 x 16 and 8 x 4. On sgemm 64..512, 4 x 16, 6 x 8 and 5 x 8 ran within 3 % of
    /// each other (about 35 GFLOP/s, the multiply-plus-add ceiling of SSE2 on this CPU, which
    /// the compiler's vectorisation of the scalar kernel reaches too) and the others 10-25 %
    /// slower. On the GradCon layers (CPU time), 6 x 8 ran the adjoint convolutions
    /// (`enc3.input_grad`, `dec1.forward`, `dec2.forward`) at 0.90-0.91x the scalar path and
    /// 4 x 16 at 0.98-1.01x: 6 x 8 broadcasts half again as often per multiply-add, and an SSE2
    /// broadcast is a load and a shuffle. Sixteen accumulators take all of SSE2's sixteen
    /// registers, leaving none for the right operand (NEON has 32).
    ///
    /// # Safety
    /// See `Kernel::run`.
    #[inline(always)]
    unsafe fn body<const MR: usize, const NV: usize>(args: &TileArgs<'_, f32>) {
        let load = |p: *const f32| {
            // SAFETY: every caller passes a pointer valid for 4 reads (`Kernel::run`'s contract
            // covers the panel's rows and the output rows); no alignment is needed.
            f32x4::new(unsafe { ptr::read_unaligned(p.cast::<[f32; 4]>()) })
        };
        // SAFETY: the caller guarantees the addresses read and written are valid (see
        // `Kernel::run`); the vectors need no CPU support beyond the build's target.
        unsafe {
            let mut acc = [[f32x4::ZERO; NV]; MR];
            let mut b = args.b;
            let a_step = args.a_step;
            for &off in args.taps {
                let rows: [*const f32; MR] = std::array::from_fn(|i| args.rows[i].offset(off));
                for p in 0..args.kc {
                    let bv: [f32x4; NV] = std::array::from_fn(|v| load(b.add(4 * v)));
                    let q = p * a_step;
                    for i in 0..MR {
                        let a = f32x4::splat(*rows[i].add(q));
                        for v in 0..NV {
                            acc[i][v] = a.mul_add(bv[v], acc[i][v]);
                        }
                    }
                    b = b.add(args.b_step);
                }
            }
            for i in 0..MR {
                let out = args.out[i];
                for v in 0..NV {
                    let dst = out.add(4 * v);
                    let value = if args.accumulate {
                        acc[i][v] + load(dst)
                    } else {
                        acc[i][v]
                    };
                    ptr::write_unaligned(dst.cast::<[f32; 4]>(), value.to_array());
                }
            }
        }
    }

    /// # Safety
    /// See `Kernel::run`.
    pub(super) unsafe fn tile(args: &TileArgs<'_, f32>) {
        // SAFETY: forwarded contract.
        unsafe { body::<MR, NV>(args) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::TileArgs;

    /// The AVX-512 body: 8 rows x 32 columns in 16 zmm accumulators, two FMAs per broadcast.
    #[inline(always)]
    unsafe fn avx512_8x32_body(args: &TileArgs<'_, f32>) {
        const MR: usize = 8;
        // SAFETY: the caller guarantees the addresses read and written are valid (see
        // `Kernel::run`) and that AVX-512F is available.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            let mut b = args.b;
            let a_step = args.a_step;
            for &off in args.taps {
                let rows: [*const f32; MR] = std::array::from_fn(|i| args.rows[i].offset(off));
                for p in 0..args.kc {
                    let b0 = _mm512_loadu_ps(b);
                    let b1 = _mm512_loadu_ps(b.add(16));
                    let q = p * a_step;
                    for i in 0..MR {
                        let a = _mm512_set1_ps(*rows[i].add(q));
                        acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
                        acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
                    }
                    b = b.add(args.b_step);
                }
            }
            for i in 0..MR {
                let out = args.out[i];
                if args.accumulate {
                    acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(out));
                    acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(out.add(16)));
                }
                _mm512_storeu_ps(out, acc[i][0]);
                _mm512_storeu_ps(out.add(16), acc[i][1]);
            }
        }
    }

    /// # Safety
    /// See `Kernel::run`; the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512_8x32(args: &TileArgs<'_, f32>) {
        // SAFETY: forwarded contract; the features the body needs are enabled here.
        unsafe { avx512_8x32_body(args) }
    }

    /// The AVX2 body: 6 rows x 16 columns in 12 ymm accumulators.
    #[inline(always)]
    unsafe fn avx2_6x16_body(args: &TileArgs<'_, f32>) {
        const MR: usize = 6;
        // SAFETY: the caller guarantees the addresses read and written are valid (see
        // `Kernel::run`) and that AVX2 and FMA are available.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            let mut b = args.b;
            let a_step = args.a_step;
            for &off in args.taps {
                let rows: [*const f32; MR] = std::array::from_fn(|i| args.rows[i].offset(off));
                for p in 0..args.kc {
                    let b0 = _mm256_loadu_ps(b);
                    let b1 = _mm256_loadu_ps(b.add(8));
                    let q = p * a_step;
                    for i in 0..MR {
                        let a = _mm256_broadcast_ss(&*rows[i].add(q));
                        acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                        acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
                    }
                    b = b.add(args.b_step);
                }
            }
            for i in 0..MR {
                let out = args.out[i];
                if args.accumulate {
                    acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(out));
                    acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(out.add(8)));
                }
                _mm256_storeu_ps(out, acc[i][0]);
                _mm256_storeu_ps(out.add(8), acc[i][1]);
            }
        }
    }

    /// # Safety
    /// See `Kernel::run`; the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2_6x16(args: &TileArgs<'_, f32>) {
        // SAFETY: forwarded contract; the features the body needs are enabled here.
        unsafe { avx2_6x16_body(args) }
    }
}
