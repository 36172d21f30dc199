//! Elementwise maps and reductions per SIMD path at a cache-resident (4096) and a memory-sized
//! (2^20) length, plus the single-thread vs rayon crossover behind `PAR_MAP_MIN` and
//! `PAR_REDUCE_MIN`.
//!
//! Throughput is in elements (values of the output, or of each input for reductions). At 2^20
//! values the kernels split into parallel chunks (above the thresholds), so those figures use
//! every core.

use std::hint::black_box;

use core_tensor::simd::REDUCE_CHUNK;
use core_tensor::{Binary, Element, Isa, Rng, Unary};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n).map(|_| 4.0 * rng.next_f32() - 2.0).collect()
}

fn kernels(c: &mut Criterion) {
    for n in [4096usize, 1 << 20] {
        let x = random(n, 1);
        let y = random(n, 2);
        let mut out = vec![0.0f32; n];
        let mut group = c.benchmark_group(format!("elementwise/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        for isa in Isa::supported() {
            group.bench_function(BenchmarkId::new("add", isa), |b| {
                b.iter(|| f32::binary(isa, Binary::Add, &x, &y, &mut out))
            });
            group.bench_function(BenchmarkId::new("axpy", isa), |b| {
                b.iter(|| f32::axpy(isa, black_box(1e-3), &x, &mut out))
            });
            group.bench_function(BenchmarkId::new("exp", isa), |b| {
                b.iter(|| f32::unary(isa, Unary::Exp, &x, &mut out))
            });
            group.bench_function(BenchmarkId::new("sigmoid", isa), |b| {
                b.iter(|| f32::unary(isa, Unary::Sigmoid, &x, &mut out))
            });
            group.bench_function(BenchmarkId::new("sum", isa), |b| {
                b.iter(|| black_box(f32::sum_slice(isa, &x)))
            });
            group.bench_function(BenchmarkId::new("dot", isa), |b| {
                b.iter(|| black_box(f32::dot_slice(isa, &x, &y)))
            });
        }
        group.finish();
    }
}

/// The same chunked work on the calling thread (`seq`) and split by rayon (`par`), as the
/// kernels do above their thresholds: the size where `par` starts winning is the crossover.
fn crossover(c: &mut Criterion) {
    let isa = Isa::detect();
    for n in [16384usize, 65536, 131072, 262144, 524288, 1 << 20] {
        let x = random(n, 3);
        let y = random(n, 4);
        let mut out = vec![0.0f32; n];
        let mut group = c.benchmark_group(format!("crossover/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("add/seq", |b| {
            b.iter(|| {
                x.chunks(REDUCE_CHUNK)
                    .zip(y.chunks(REDUCE_CHUNK))
                    .zip(out.chunks_mut(REDUCE_CHUNK))
                    .for_each(|((x, y), o)| f32::binary(isa, Binary::Add, x, y, o))
            })
        });
        group.bench_function("add/par", |b| {
            b.iter(|| {
                x.par_chunks(REDUCE_CHUNK)
                    .zip(y.par_chunks(REDUCE_CHUNK))
                    .zip(out.par_chunks_mut(REDUCE_CHUNK))
                    .for_each(|((x, y), o)| f32::binary(isa, Binary::Add, x, y, o))
            })
        });
        group.bench_function("exp/seq", |b| {
            b.iter(|| {
                x.chunks(REDUCE_CHUNK)
                    .zip(out.chunks_mut(REDUCE_CHUNK))
                    .for_each(|(x, o)| f32::unary(isa, Unary::Exp, x, o))
            })
        });
        group.bench_function("exp/par", |b| {
            b.iter(|| {
                x.par_chunks(REDUCE_CHUNK)
                    .zip(out.par_chunks_mut(REDUCE_CHUNK))
                    .for_each(|(x, o)| f32::unary(isa, Unary::Exp, x, o))
            })
        });
        group.bench_function("sum/seq", |b| {
            b.iter(|| {
                let p: Vec<f32> = x
                    .chunks(REDUCE_CHUNK)
                    .map(|c| f32::sum_slice(isa, c))
                    .collect();
                black_box(p.into_iter().fold(0.0, |s, v| s + v))
            })
        });
        group.bench_function("sum/par", |b| {
            b.iter(|| {
                let p: Vec<f32> = x
                    .par_chunks(REDUCE_CHUNK)
                    .map(|c| f32::sum_slice(isa, c))
                    .collect();
                black_box(p.into_iter().fold(0.0, |s, v| s + v))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, kernels, crossover);
criterion_main!(benches);
