//! Square sgemm `C = A B` at 64..1024 on every SIMD path, in FLOP/s (`2 n^3` per call), next to
//! `matrixmultiply::sgemm` (the crate the project's GEMM replaced) as a peer in the same run.

use core_tensor::gemm::gemm_on;
use core_tensor::{Isa, Rng, Transpose};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(20);
    let mut rng = Rng::seed_from_u64(1);
    for n in [64usize, 128, 256, 512, 1024] {
        let a: Vec<f32> = (0..n * n).map(|_| rng.next_f32() - 0.5).collect();
        let b: Vec<f32> = (0..n * n).map(|_| rng.next_f32() - 0.5).collect();
        let mut out = vec![0.0f32; n * n];
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        for isa in Isa::supported() {
            group.bench_with_input(BenchmarkId::new(isa.to_string(), n), &n, |bench, &n| {
                bench.iter(|| {
                    gemm_on(
                        isa,
                        n,
                        n,
                        n,
                        1.0,
                        black_box(&a),
                        Transpose::No,
                        black_box(&b),
                        Transpose::No,
                        0.0,
                        &mut out,
                    )
                })
            });
        }
        group.bench_with_input(BenchmarkId::new("matrixmultiply", n), &n, |bench, &n| {
            // SAFETY: a, b and out are n x n row-major buffers; out is a unique borrow.
            bench.iter(|| unsafe {
                matrixmultiply::sgemm(
                    n,
                    n,
                    n,
                    1.0,
                    black_box(a.as_ptr()),
                    n as isize,
                    1,
                    black_box(b.as_ptr()),
                    n as isize,
                    1,
                    0.0,
                    out.as_mut_ptr(),
                    n as isize,
                    1,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
