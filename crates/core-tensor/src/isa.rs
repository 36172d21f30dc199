//! Run-time choice of the SIMD instruction set the f32 kernels use.
//!
//! [`Isa::detect`] asks the CPU once and caches the answer;
//! `GRADCON_ISA=scalar|portable|avx2|avx512` lowers it (never raises it above what the CPU has).
//! Kernels take an `Isa` value, so tests and benchmarks name each path explicitly, and
//! [`Isa::calls`] counts how often each path ran, so a test can prove the named path is the one
//! that did.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// An instruction-set path of the f32 kernels. f64 kernels are scalar loops on every path.
///
/// The values are ordered from the narrowest to the widest, as in [`Isa::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain loops, one value at a time as written (whatever the compiler makes of them).
    Scalar,
    /// 128-bit vectors of the `wide` crate, compiled for the build's target: SSE2 on x86-64,
    /// NEON on aarch64, simd128 on wasm32 (and plain arrays where a target has none). Runs on
    /// every CPU the binary runs on.
    Portable,
    /// 256-bit AVX2 with FMA.
    Avx2,
    /// 512-bit AVX-512F (and the AVX2/FMA it implies).
    Avx512,
}

/// Calls per path, indexed by `Isa as usize` (the position in [`Isa::ALL`]).
static CALLS: [AtomicU64; Isa::ALL.len()] = [const { AtomicU64::new(0) }; Isa::ALL.len()];

// `CALLS` is indexed by the discriminant: it must be the position in `ALL`.
const _: () = {
    let mut i = 0;
    while i < Isa::ALL.len() {
        assert!(Isa::ALL[i] as usize == i);
        i += 1;
    }
};

impl Isa {
    /// Every path, from the narrowest to the widest.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The widest path this CPU runs, lowered by `GRADCON_ISA` if set. Cached after the first call.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let best = Self::ALL
                .into_iter()
                .rev()
                .find(|isa| isa.is_supported())
                .unwrap_or(Isa::Portable); // supported everywhere, so never needed
            match std::env::var("GRADCON_ISA").ok().as_deref().map(Isa::parse) {
                Some(Some(wanted)) if wanted <= best => wanted,
                _ => best,
            }
        })
    }

    /// Parses `scalar`, `portable`, `avx2` or `avx512` (the [`Display`](fmt::Display) names).
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "portable" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the path (`Scalar` and `Portable` run everywhere).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar | Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2.is_supported() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this CPU can run, for tests that sweep all of them.
    pub fn supported() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// f32 values per vector register of the path's kernels (1 for the scalar loops).
    pub fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Portable => 4,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    /// How many kernel calls have run on this path in this process (all threads).
    pub fn calls(self) -> u64 {
        CALLS[self as usize].load(Ordering::Relaxed)
    }

    /// Records one kernel call on this path (called once per kernel call, not per chunk).
    pub(crate) fn record(self) {
        CALLS[self as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Scalar => "scalar",
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        })
    }
}
