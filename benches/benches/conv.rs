//! The 24 convolution kernels of the GradCon autoencoder at batch 64 on every SIMD path, in
//! FLOP/s (two per multiply-add, `ConvShape::macs`), on NCHW images (as the PyTorch peer's layer
//! script) and NHWC images (as the GradCon model runs them).

use benches::layers::kernels;
use core_tensor::{Isa, Layout};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn conv_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_b64");
    group.sample_size(20);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for k in kernels(64, 1, layout) {
            group.throughput(Throughput::Elements(k.flops() as u64));
            for isa in Isa::supported() {
                let id = format!("{}/{layout:?}", k.name());
                group.bench_function(BenchmarkId::new(id, isa), |bench| {
                    bench.iter(|| black_box(k.run(isa)))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, conv_layers);
criterion_main!(benches);
