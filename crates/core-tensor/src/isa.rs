//! Run-time choice of the SIMD instruction set the f32 kernels use.
//!
//! [`Isa::detect`] asks the CPU once and caches the answer; `GRADCON_ISA=scalar|avx2|avx512`
//! lowers it (never raises it above what the CPU has). Kernels take an `Isa` value, so tests and
//! benchmarks name each path explicitly, and [`Isa::calls`] counts how often each path ran, so a
//! test can prove the named path is the one that did.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// An instruction-set path of the f32 kernels. f64 kernels are portable scalar code on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust, whatever the compiler makes of it for the build's target.
    Scalar,
    /// 256-bit AVX2 with FMA.
    Avx2,
    /// 512-bit AVX-512F (and the AVX2/FMA it implies).
    Avx512,
}

static CALLS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

impl Isa {
    /// Every path, from the most portable to the widest.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The widest path this CPU runs, lowered by `GRADCON_ISA` if set. Cached after the first call.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let best = Self::ALL
                .into_iter()
                .rev()
                .find(|isa| isa.is_supported())
                .unwrap_or(Isa::Scalar);
            match std::env::var("GRADCON_ISA").ok().as_deref().map(Isa::parse) {
                Some(Some(wanted)) if wanted <= best => wanted,
                _ => best,
            }
        })
    }

    /// Parses `scalar`, `avx2` or `avx512`.
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
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
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        })
    }
}
