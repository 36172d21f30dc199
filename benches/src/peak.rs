//! Peak f32 FMA throughput per SIMD path: the ceiling the kernels are measured against.
//!
//! Each loop keeps `ACC` independent accumulators `acc_j <- acc_j * m + a` in registers, enough
//! to cover the FMA latency (4 cycles) times the FMA ports (up to 2), so the loop is bound by
//! FMA issue alone. One FMA lane is 2 flops.

use std::hint::black_box;
use std::time::Instant;

use core_tensor::Isa;

/// Independent accumulators per loop.
pub const ACC: usize = 10;
/// Loop trips per call: long enough (about a millisecond) that thread start-up is noise.
pub const TRIPS: usize = 1 << 18;
const M: f32 = 0.999_999;
const A: f32 = 1e-7;

/// `TRIPS` rounds of `ACC` scalar multiply-adds, as the scalar path compiles them.
fn fma_scalar(m: f32, a: f32) -> f32 {
    let mut acc = [1.0f32; ACC];
    for _ in 0..TRIPS {
        for s in &mut acc {
            *s = *s * m + a;
        }
    }
    acc.iter().sum()
}

/// `TRIPS` rounds of `ACC` 4-lane multiply-adds of the portable path (`wide`): one FMA where
/// the build's target has one, a multiply and an add otherwise (SSE2).
fn fma_portable(m: f32, a: f32) -> f32 {
    use wide::f32x4;
    let (m, a) = (f32x4::splat(m), f32x4::splat(a));
    let mut acc = [f32x4::ONE; ACC];
    for _ in 0..TRIPS {
        for s in &mut acc {
            *s = s.mul_add(m, a);
        }
    }
    acc.iter().fold(f32x4::ZERO, |t, &s| t + s).as_array()[0]
}

/// `TRIPS` rounds of `ACC` 8-lane FMAs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(m: f32, a: f32) -> f32 {
    use std::arch::x86_64::*;
    let (m, a) = (_mm256_set1_ps(m), _mm256_set1_ps(a));
    let mut acc = [_mm256_set1_ps(1.0); ACC];
    for _ in 0..TRIPS {
        for s in &mut acc {
            *s = _mm256_fmadd_ps(*s, m, a);
        }
    }
    let mut t = _mm256_setzero_ps();
    for s in acc {
        t = _mm256_add_ps(t, s);
    }
    _mm256_cvtss_f32(t)
}

/// `TRIPS` rounds of `ACC` 16-lane FMAs.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(m: f32, a: f32) -> f32 {
    use std::arch::x86_64::*;
    let (m, a) = (_mm512_set1_ps(m), _mm512_set1_ps(a));
    let mut acc = [_mm512_set1_ps(1.0); ACC];
    for _ in 0..TRIPS {
        for s in &mut acc {
            *s = _mm512_fmadd_ps(*s, m, a);
        }
    }
    let mut t = _mm512_setzero_ps();
    for s in acc {
        t = _mm512_add_ps(t, s);
    }
    _mm512_reduce_add_ps(t)
}

pub fn run(isa: Isa) -> f32 {
    let (m, a) = (black_box(M), black_box(A));
    match isa {
        Isa::Scalar => fma_scalar(m, a),
        Isa::Portable => fma_portable(m, a),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only paths in `Isa::supported()` reach here, so the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { fma_avx2(m, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only paths in `Isa::supported()` reach here, so the CPU has AVX-512F.
        Isa::Avx512 => unsafe { fma_avx512(m, a) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("no x86 path is supported on this target"),
    }
}

/// Flops of one [`run`] on `isa`.
pub fn flops_per_run(isa: Isa) -> usize {
    TRIPS * ACC * isa.lanes() * 2
}

/// GFLOP/s of `threads` threads each running the `isa` loop at once, the median of `reps`
/// timed calls (each about a millisecond): what the machine delivers at the moment, which on a
/// shared host moves with the other guests' load.
pub fn measure(isa: Isa, threads: usize, reps: usize) -> f64 {
    let mut rates: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads.max(1))
                    .map(|_| s.spawn(move || run(isa)))
                    .collect();
                for h in hs {
                    black_box(h.join().expect("FMA loop thread panicked"));
                }
            });
            (threads.max(1) * flops_per_run(isa)) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
