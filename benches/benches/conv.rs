//! The 24 convolution kernels of the GradCon autoencoder at batch 64 on every SIMD path, in
//! FLOP/s (two per multiply-add, `ConvShape::macs`).

use benches::layers::kernels;
use core_tensor::Isa;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn conv_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_b64");
    group.sample_size(20);
    for k in kernels(64) {
        group.throughput(Throughput::Elements(k.flops() as u64));
        for isa in Isa::supported() {
            group.bench_function(BenchmarkId::new(k.name(), isa), |bench| {
                bench.iter(|| black_box(k.run(isa)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, conv_layers);
criterion_main!(benches);
