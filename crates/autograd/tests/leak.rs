//! Training-like iterations keep memory flat: no tape node or buffer outlives its iteration.
//!
//! A counting global allocator (this test binary only) tracks the bytes alive.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

mod common;

use autograd::check::random;
use autograd::prelude::*;
use core_tensor::Tensor;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator with the caller's arguments; the counter
// only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as this function's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as this function's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One step: forward, decoder gradient with `create_graph`, alignment loss, gradient of the
/// total, a plain gradient-descent update, and the running mean of the reference gradient.
fn step(
    tape: &Tape<f64>,
    params: &mut [Tensor<f64>],
    x: &Tensor<f64>,
    r: &mut Tensor<f64>,
    k: f64,
) {
    let p: Vec<_> = params.iter().map(|t| tape.param(t.clone())).collect();
    let j = common::tiny_gradcon_loss(&p, x, r);
    let grads = autograd::grad_tensors(j, &p).unwrap();
    for (t, g) in params.iter_mut().zip(&grads) {
        t.axpy(-0.01, g).unwrap();
    }
    let mut mean = r.scale(k / (k + 1.0));
    mean.axpy(1.0 / (k + 1.0), &grads[2]).unwrap();
    *r = mean;
}

fn setup() -> (Vec<Tensor<f64>>, Tensor<f64>, Tensor<f64>) {
    let shapes: [&[usize]; 4] = [&[2, 1, 4, 4], &[2], &[2, 1, 4, 4], &[1]];
    let params = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| random(s, k as u64, -0.3, 0.3))
        .collect();
    (
        params,
        random(&[2, 1, 8, 8], 7, 0.0, 1.0),
        random(&[2, 1, 4, 4], 8, -1.0, 1.0),
    )
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// One test only: the counter is process-wide, and the harness allocates on its own threads
/// while tests run. The kernels keep per-thread scratch buffers that grow to their working size
/// on a thread's first use; inside a one-thread pool that happens during the warm-up, so any
/// growth afterwards is a leak.
#[test]
fn memory_is_flat_over_thousands_of_iterations() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(check_flat_memory);
}

fn check_flat_memory() {
    let (mut params, x, mut r) = setup();
    // A new tape per iteration.
    for k in 0..20 {
        step(&Tape::new(), &mut params, &x, &mut r, k as f64);
    }
    let before = live();
    for k in 20..2020 {
        step(&Tape::new(), &mut params, &x, &mut r, k as f64);
    }
    let grown = live() - before;
    assert!(
        grown.abs() < 1024,
        "new tape per iteration: {grown} bytes more alive"
    );

    // One tape, cleared after every iteration (its node list keeps its capacity).
    let mut tape = Tape::new();
    for k in 0..20 {
        step(&tape, &mut params, &x, &mut r, k as f64);
        tape.clear();
    }
    let before = live();
    for k in 20..2020 {
        step(&tape, &mut params, &x, &mut r, k as f64);
        tape.clear();
    }
    let grown = live() - before;
    assert!(grown.abs() < 1024, "reused tape: {grown} bytes more alive");
    assert!(tape.is_empty());

    // The counter can fail: without clearing, the tape's nodes and buffers stay alive.
    let (mut params, x, mut r) = setup();
    let tape = Tape::new();
    step(&tape, &mut params, &x, &mut r, 0.0);
    let before = live();
    for k in 1..50 {
        step(&tape, &mut params, &x, &mut r, k as f64);
    }
    assert!(live() - before > 100_000);
}
