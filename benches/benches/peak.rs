//! Peak f32 FMA throughput per SIMD path, on 1 and 2 threads: the ceiling the kernels are
//! measured against.
//!
//! Each loop keeps `ACC` independent accumulators `acc_j <- acc_j * m + a` in registers, enough
//! to cover the FMA latency (4 cycles) times the FMA ports (up to 2), so the loop is bound by
//! FMA issue alone. One FMA lane is 2 flops; criterion's "elements" are flops here.
//!
//! The theoretical peak, `cores x FMA ports x lanes x 2 x clock`, is printed for the clock in
//! `/proc/cpuinfo` (Linux only) so the measured figure can be read as a fraction of it.

use std::hint::black_box;

use core_tensor::Isa;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Independent accumulators per loop.
const ACC: usize = 10;
/// Loop trips per call: long enough (about a millisecond) that thread start-up is noise.
const TRIPS: usize = 1 << 18;
const M: f32 = 0.999_999;
const A: f32 = 1e-7;

/// `TRIPS` rounds of `ACC` scalar multiply-adds, as the portable path compiles them.
fn fma_scalar(m: f32, a: f32) -> f32 {
    let mut acc = [1.0f32; ACC];
    for _ in 0..TRIPS {
        for s in &mut acc {
            *s = *s * m + a;
        }
    }
    acc.iter().sum()
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

/// Lanes one FMA of the path covers (1 for the scalar loop as written).
fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => 1,
        Isa::Avx2 => 8,
        Isa::Avx512 => 16,
    }
}

fn run(isa: Isa) -> f32 {
    let (m, a) = (black_box(M), black_box(A));
    match isa {
        Isa::Scalar => fma_scalar(m, a),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only paths in `Isa::supported()` reach here, so the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { fma_avx2(m, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only paths in `Isa::supported()` reach here, so the CPU has AVX-512F.
        Isa::Avx512 => unsafe { fma_avx512(m, a) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// The first `cpu MHz` of `/proc/cpuinfo`, if there is one.
fn clock_ghz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(mhz / 1000.0)
}

/// Nanoseconds this thread has spent on a CPU (first field of `/proc/thread-self/schedstat`),
/// which, unlike wall time, excludes the time other processes held the core.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// FMA instructions per on-CPU nanosecond of one thread: at clock `f` GHz, dividing by `f` gives
/// FMA instructions per cycle, i.e. the number of FMA ports the loop keeps busy.
fn fma_per_ns(isa: Isa) -> Option<f64> {
    let reps = 100;
    let t0 = on_cpu_ns()?;
    for _ in 0..reps {
        black_box(run(isa));
    }
    let dt = on_cpu_ns()? - t0;
    Some((reps * TRIPS * ACC) as f64 / dt as f64)
}

fn peak(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(ghz) = clock_ghz() {
        for isa in Isa::supported() {
            if let Some(rate) = fma_per_ns(isa) {
                eprintln!(
                    "{isa}: {rate:.2} FMA instructions per on-CPU ns = {:.2} per cycle at \
                     {ghz:.2} GHz ({:.1} GFLOP/s per core on CPU)",
                    rate / ghz,
                    rate * lanes(isa) as f64 * 2.0
                );
            }
        }
        for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
            let per_port = lanes(isa) as f64 * 2.0 * ghz;
            eprintln!(
                "theoretical {isa} peak at {ghz:.2} GHz: {:.1} GFLOP/s per core per FMA port; \
                 {cores} cores x 2 ports = {:.1} GFLOP/s",
                per_port,
                per_port * 2.0 * cores as f64
            );
        }
    }
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("peak_fma/{threads}t"));
        for isa in Isa::supported() {
            let flops = (threads * TRIPS * ACC * lanes(isa) * 2) as u64;
            group.throughput(Throughput::Elements(flops));
            group.bench_function(isa.to_string(), |b| {
                b.iter(|| {
                    if threads == 1 {
                        black_box(run(isa));
                    } else {
                        std::thread::scope(|s| {
                            let hs: Vec<_> =
                                (0..threads).map(|_| s.spawn(move || run(isa))).collect();
                            for h in hs {
                                black_box(h.join().expect("FMA loop thread panicked"));
                            }
                        });
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, peak);
criterion_main!(benches);
