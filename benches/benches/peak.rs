//! Peak f32 FMA throughput per SIMD path, on 1 and 2 threads: the ceiling the kernels are
//! measured against (the loops are in `benches::peak`; criterion's "elements" are flops here).
//!
//! The theoretical peak, `cores x FMA ports x lanes x 2 x clock`, is printed for the clock in
//! `/proc/cpuinfo` (Linux only) so the measured figure can be read as a fraction of it.

use std::hint::black_box;

use benches::peak::{flops_per_run, run, ACC, TRIPS};
use core_tensor::Isa;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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
                    rate * isa.lanes() as f64 * 2.0
                );
            }
        }
        for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
            let per_port = isa.lanes() as f64 * 2.0 * ghz;
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
            let flops = (threads * flops_per_run(isa)) as u64;
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
