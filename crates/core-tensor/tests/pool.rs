//! `core_tensor::trim` empties the pools of every thread and the packed weight panels, and the
//! pools work on after it. (Its own test binary: a trim empties the pools of every test
//! running beside it.)

use std::sync::mpsc::channel;
use std::time::Duration;

use core_tensor::conv::{conv2d, packed_weight_bytes, Conv2dSpec};
use core_tensor::pool::{pooled_bytes, recycle, zeroed, MIN_POOLED};
use core_tensor::trim;
use core_tensor::Tensor;

/// A convolution large enough to take scratch space (its padded images).
fn convolve() {
    let x = Tensor::<f32>::full(&[64, 8, 20, 20], 0.5);
    // Weights whose packing the cache keeps (16 KiB and more).
    let w = Tensor::<f32>::full(&[64, 8, 3, 3], 0.1);
    conv2d(&x, &w, None, Conv2dSpec::new(1, 1)).unwrap();
}

#[test]
fn trim_frees_every_threads_idle_buffers() {
    let (filled_tx, filled) = channel();
    let (trimmed, trimmed_rx) = channel::<()>();
    let other = std::thread::spawn(move || {
        recycle(vec![1.0f32; MIN_POOLED * 3]);
        convolve();
        filled_tx.send(()).unwrap();
        trimmed_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    });
    recycle(vec![1.0f64; MIN_POOLED * 2]);
    filled.recv_timeout(Duration::from_secs(20)).unwrap();
    // Both threads' buffers, the convolution's scratch and its output tensors.
    let held = pooled_bytes();
    assert!(held > MIN_POOLED * (3 * 4 + 2 * 8), "{held} bytes pooled");
    assert!(packed_weight_bytes() > 0, "no packing kept");
    trim();
    assert_eq!(pooled_bytes(), 0, "idle buffers left after trim");
    assert_eq!(packed_weight_bytes(), 0, "packings left after trim");
    trimmed.send(()).unwrap();
    other.join().unwrap();
    // The pools work on: a buffer recycled is handed out again.
    let v = zeroed::<f32>(MIN_POOLED);
    let ptr = v.as_ptr();
    recycle(v);
    assert_eq!(pooled_bytes(), MIN_POOLED * 4);
    let again = zeroed::<f32>(MIN_POOLED);
    assert_eq!(again.as_ptr(), ptr);
}
