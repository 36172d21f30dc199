//! How much arithmetic the kernels execute, counted where the feature `flop-count` is on (off,
//! every function here is empty and the counters stay zero).
//!
//! A register tile counts `MR NR` multiply-adds per reduction step whether or not all its rows
//! and columns are wanted (partial tiles and zero-padded panels are executed in full), so the
//! totals are the work done, to set beside a framework's count of the work needed.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where multiply-adds are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Matrix products (`gemm`).
    Gemm,
    /// Convolutions, forward (also the input gradient of a transposed convolution).
    ConvForward,
    /// The adjoint by output phase (transposed convolutions, input gradients).
    ConvPhased,
    /// The adjoint by scattered columns (kernels not a multiple of the stride).
    ConvScatter,
    /// Weight gradients (summed, per example, or for their norms).
    WeightGrad,
    /// Shifted sums (the narrow adjoint back to a few channels).
    ShiftedSum,
    /// Dot products and sums of squares (`dot_slice`).
    Dot,
}

impl Site {
    /// Every site, in the order of [`counts`].
    pub const ALL: [Site; 7] = [
        Site::Gemm,
        Site::ConvForward,
        Site::ConvPhased,
        Site::ConvScatter,
        Site::WeightGrad,
        Site::ShiftedSum,
        Site::Dot,
    ];
}

static MACS: [AtomicU64; Site::ALL.len()] = [const { AtomicU64::new(0) }; Site::ALL.len()];

/// Whether this build counts (the feature `flop-count`).
pub const COUNTING: bool = cfg!(feature = "flop-count");

/// Adds `macs` multiply-adds at `site` (nothing without the feature).
#[inline(always)]
pub(crate) fn add(site: Site, macs: usize) {
    if COUNTING {
        MACS[site as usize].fetch_add(macs as u64, Ordering::Relaxed);
    }
}

/// Multiply-adds counted so far per site, in the order of [`Site::ALL`].
pub fn counts() -> [u64; Site::ALL.len()] {
    std::array::from_fn(|i| MACS[i].load(Ordering::Relaxed))
}

/// Sets every counter to zero.
pub fn reset() {
    for m in &MACS {
        m.store(0, Ordering::Relaxed);
    }
}

#[cfg(all(test, feature = "flop-count"))]
mod tests {
    use super::*;
    use crate::gemm::{gemm_on, Transpose};
    use crate::Isa;

    /// A product whose sizes are whole tiles on every path executes exactly `m n k`
    /// multiply-adds; one row more executes a whole extra row of tiles. (The counters are
    /// process-wide: this is the crate's only test that reads them.)
    #[test]
    fn gemm_counts_the_tiles_it_runs() {
        for isa in Isa::supported() {
            let (m, k, n) = (48, 40, 96); // multiples of every path's MR and NR
            let a = vec![1.0f32; (m + 1) * k];
            let b = vec![1.0f32; k * n];
            let mut c = vec![0.0f32; (m + 1) * n];
            let mut counted = |rows: usize| {
                reset();
                let (ta, tb) = (Transpose::No, Transpose::No);
                gemm_on(isa, rows, k, n, 1.0, &a, ta, &b, tb, 0.0, &mut c);
                counts()[Site::Gemm as usize]
            };
            assert_eq!(counted(m), (m * n * k) as u64, "{isa}");
            let mr = crate::gemm::kernels::Kernel::<f32>::for_isa(isa).mr;
            assert_eq!(counted(m + 1), ((m + mr) * n * k) as u64, "{isa}");
        }
    }
}
