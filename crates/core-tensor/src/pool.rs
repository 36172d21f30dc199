//! The per-thread buffer pools: recycled tensor buffers and the kernels' scratch space.
//!
//! Two pools per thread, one best-fit search (`best_fit`):
//! - tensor buffers ([`zeroed`], `for_overwrite`, [`recycle`]): typed `Vec<T>`s handed out for
//!   good and returned when a tensor is dropped;
//! - scratch (`with_scratch`): untyped words lent to a kernel for the length of one call (packed
//!   panels, padded images), reused across calls so kernels do not allocate per example.
//!
//! A training step allocates and frees the same few dozen activation-sized buffers every time.
//! Fresh large allocations come from the operating system as unmapped pages, so each one costs
//! a page fault per 4 KiB and a zeroing by the kernel, and freeing them unmaps the pages again:
//! measured at about a fifth of a single-threaded step. [`Tensor`](crate::Tensor) returns its
//! buffer here when dropped, and [`zeroed`] hands one back out (zero-filled) when a buffer of a
//! close size is asked for.
//!
//! The tensor pool is per thread (the tensors of a step are made and dropped on the thread that
//! runs it), holds only buffers of at least [`MIN_POOLED`] values, and is bounded in bytes. The
//! scratch pool holds as many buffers as a thread's deepest nesting of kernel calls has needed
//! at once.
//!
//! [`trim`] frees every idle buffer of every thread's pools at once, for an owner that is done
//! (a detector dropped, a model freed through the C library): each thread's pools sit behind a
//! mutex of their own, which only `trim` ever contends for, and a process-wide list reaches
//! them.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::Element;

/// Smallest buffer (in values) worth keeping: below this the allocator's own free lists serve.
pub const MIN_POOLED: usize = 1 << 12;
/// Bytes the pool of one thread may hold; past it the oldest buffers are freed.
const MAX_POOLED_BYTES: usize = 256 << 20;
/// A pooled buffer not handed out again within this many takes (of pooled sizes, on any
/// thread) is freed. A training step takes each of its buffers once per step, a few hundred
/// takes apart, so its buffers stay; a buffer that keeps arriving on a thread that never
/// takes one of its size (made on one thread, dropped on another, as scoring's batches are)
/// does not pile up to the byte bound (which let scoring 60,000 images hold 180 MB).
const MAX_AGE_TAKES: u64 = 1 << 12;

/// Takes of pooled sizes so far, on every thread: the pools' clock.
static TAKES: AtomicU64 = AtomicU64::new(0);

/// One thread's pools.
#[derive(Default)]
struct Pools {
    f32: Pool<f32>,
    f64: Pool<f64>,
    /// Scratch buffers, stored as `f64` so any element type can be viewed through `bytemuck`.
    scratch: Vec<Vec<f64>>,
}

struct Pool<T> {
    /// Each buffer with the value of [`TAKES`] when it was returned.
    free: Vec<(Vec<T>, u64)>,
    bytes: usize,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self {
            free: Vec::new(),
            bytes: 0,
        }
    }
}

thread_local! {
    /// This thread's pools, also listed in [`ALL`]; freed when the thread ends.
    static POOLS: Arc<Mutex<Pools>> = register();
}

/// Every thread's pools, for [`trim`] (the entries of ended threads are dropped as they are met).
static ALL: Mutex<Vec<Weak<Mutex<Pools>>>> = Mutex::new(Vec::new());

/// A lock that a panic elsewhere does not poison: every change to the pools is a push, a
/// removal or a counter update, so they are consistent whenever a lock is released.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// New pools for this thread, listed in [`ALL`].
fn register() -> Arc<Mutex<Pools>> {
    let pools = Arc::new(Mutex::new(Pools::default()));
    let mut all = lock(&ALL);
    all.retain(|p| p.strong_count() > 0);
    all.push(Arc::downgrade(&pools));
    pools
}

/// Runs `f` on this thread's pools (`None` while the thread is ending and they are gone).
fn with_pools<R>(f: impl FnOnce(&mut Pools) -> R) -> Option<R> {
    POOLS.try_with(|pools| f(&mut lock(pools))).ok()
}

/// Frees every idle buffer of every thread's pools (tensor buffers and scratch), returning
/// their memory to the allocator. Buffers in use are not touched and return to their pool
/// when released; the pools then fill again as kernels run.
///
/// For an owner that is done: a training step or scoring run afterwards allocates its buffers
/// afresh once (about a fifth of a training step, see the module documentation).
pub fn trim() {
    let pools: Vec<_> = lock(&ALL).iter().filter_map(Weak::upgrade).collect();
    for p in pools {
        // Taken under the lock, freed after it.
        let idle = std::mem::take(&mut *lock(&p));
        drop(idle);
    }
}

/// Bytes of idle buffers held in every thread's pools (tensor buffers and scratch).
pub fn pooled_bytes() -> usize {
    let pools: Vec<_> = lock(&ALL).iter().filter_map(Weak::upgrade).collect();
    pools
        .iter()
        .map(|p| {
            let p = lock(p);
            let scratch: usize = p.scratch.iter().map(|b| b.capacity() * 8).sum();
            p.f32.bytes + p.f64.bytes + scratch
        })
        .sum()
}

/// The index of the smallest of `sizes` in `[min, max]`, if any (the first of equal sizes).
fn best_fit(sizes: impl Iterator<Item = usize>, min: usize, max: usize) -> Option<usize> {
    sizes
        .enumerate()
        .filter(|&(_, s)| s >= min && s <= max)
        .min_by_key(|&(_, s)| s)
        .map(|(i, _)| i)
}

/// Runs `f` on a scratch buffer of `len` values from this thread's pool (contents unspecified).
///
/// The buffer is taken out of the pool for the duration of `f`, so nested calls, and rayon tasks
/// stolen while `f` waits, get buffers of their own.
pub(crate) fn with_scratch<T: Element, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    // The smallest pooled buffer that fits, else the largest (grown without copying its old
    // contents, which are unspecified anyway).
    let mut buf = with_pools(|p| {
        let pool = &mut p.scratch;
        let fit = best_fit(pool.iter().map(Vec::len), words, usize::MAX)
            .or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
        fit.map(|i| pool.swap_remove(i))
    })
    .flatten()
    .unwrap_or_default();
    if buf.len() < words {
        buf = vec![0.0; words];
    }
    let view: &mut [T] = bytemuck::cast_slice_mut(&mut buf[..words]);
    let out = f(&mut view[..len]);
    // Back to the pool (or freed, while the thread is ending).
    with_pools(|p| p.scratch.push(buf));
    out
}

/// Runs `f` on this thread's pool of `T` buffers (`None` for a type without one).
fn with_pool<T: Element, R>(f: impl FnOnce(&mut Pool<T>) -> R) -> Option<R> {
    with_pools(|pools| {
        if let Some(p) = (&mut pools.f32 as &mut dyn Any).downcast_mut::<Pool<T>>() {
            return Some(f(p));
        }
        (&mut pools.f64 as &mut dyn Any)
            .downcast_mut::<Pool<T>>()
            .map(f)
    })
    .flatten()
}

/// A vector of `len` zeros, reusing a pooled buffer of capacity between `len` and `2 len`.
pub fn zeroed<T: Element>(len: usize) -> Vec<T> {
    match take(len) {
        Some(mut v) => {
            v.clear();
            // SAFETY: the capacity is at least `len` (see `take`), and all-zero bytes are a
            // valid `T` (`Element: Pod`); a plain memset, where `resize` would store one value
            // at a time.
            unsafe {
                std::ptr::write_bytes(v.as_mut_ptr(), 0, len);
                v.set_len(len);
            }
            v
        }
        None => vec![T::ZERO; len],
    }
}

/// A vector of `len` values that the caller overwrites: a pooled buffer keeps its old values
/// (not zeroed), a fresh one is zeros.
pub(crate) fn for_overwrite<T: Element>(len: usize) -> Vec<T> {
    match take(len) {
        Some(mut v) if v.len() >= len => {
            v.truncate(len);
            v
        }
        Some(mut v) => {
            // Every value below `v.len()` was written by its previous owner; zero the rest.
            let old = v.len();
            // SAFETY: as in `zeroed`, for the values from `old` to `len`.
            unsafe {
                std::ptr::write_bytes(v.as_mut_ptr().add(old), 0, len - old);
                v.set_len(len);
            }
            v
        }
        None => vec![T::ZERO; len],
    }
}

/// The best-fitting pooled buffer for `len` values: capacity between `len` and `2 len`.
fn take<T: Element>(len: usize) -> Option<Vec<T>> {
    if len < MIN_POOLED {
        return None;
    }
    TAKES.fetch_add(1, Ordering::Relaxed);
    with_pool::<T, _>(|pool| {
        let best = best_fit(pool.free.iter().map(|(v, _)| v.capacity()), len, 2 * len)?;
        let (v, _) = pool.free.swap_remove(best);
        pool.bytes -= v.capacity() * std::mem::size_of::<T>();
        Some(v)
    })
    .flatten()
}

/// Takes `v` back for reuse (small buffers are simply freed).
pub fn recycle<T: Element>(v: Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if v.capacity() < MIN_POOLED || bytes > MAX_POOLED_BYTES {
        return;
    }
    let now = TAKES.load(Ordering::Relaxed);
    with_pool::<T, _>(|pool| {
        let size = std::mem::size_of::<T>();
        let before = pool.free.len();
        pool.free
            .retain(|(_, returned)| now.saturating_sub(*returned) <= MAX_AGE_TAKES);
        if pool.free.len() != before {
            pool.bytes = pool.free.iter().map(|(b, _)| b.capacity() * size).sum();
        }
        while pool.bytes + bytes > MAX_POOLED_BYTES && !pool.free.is_empty() {
            let (old, _) = pool.free.remove(0);
            pool.bytes -= old.capacity() * size;
        }
        pool.bytes += bytes;
        pool.free.push((v, now));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled_bytes() -> usize {
        with_pool::<f32, _>(|p| p.bytes).unwrap()
    }

    /// Buffers returned to a thread that takes none of their size are freed once the takes
    /// elsewhere have moved on, instead of piling up to the byte bound.
    #[test]
    fn buffers_never_taken_again_are_freed() {
        std::thread::spawn(|| {
            for _ in 0..64 {
                recycle(vec![1.0f32; MIN_POOLED * 4]);
            }
            let held = pooled_bytes();
            assert!(held >= 64 * MIN_POOLED * 4 * 4, "{held}");
            // Takes of another size (on this thread; any thread's count).
            for _ in 0..=MAX_AGE_TAKES {
                let v = zeroed::<f64>(MIN_POOLED);
                drop(v);
            }
            recycle(vec![1.0f32; MIN_POOLED * 4]);
            assert_eq!(pooled_bytes(), MIN_POOLED * 4 * 4, "old buffers kept");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_recycled_buffer_comes_back_zeroed() {
        let mut v = zeroed::<f32>(MIN_POOLED * 2);
        v.iter_mut().for_each(|x| *x = 7.0);
        let ptr = v.as_ptr();
        recycle(v);
        let w = zeroed::<f32>(MIN_POOLED * 2 - 5);
        assert_eq!(w.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(w.len(), MIN_POOLED * 2 - 5);
        assert!(w.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn buffers_far_larger_than_asked_are_not_handed_out() {
        let v = zeroed::<f64>(MIN_POOLED * 8);
        let ptr = v.as_ptr();
        recycle(v);
        let w = zeroed::<f64>(MIN_POOLED);
        assert_ne!(w.as_ptr(), ptr);
    }

    #[test]
    fn buffers_for_overwrite_have_the_asked_length() {
        let mut v = zeroed::<f32>(MIN_POOLED * 3);
        v.truncate(MIN_POOLED * 2); // as if the owner had shrunk it
        recycle(v);
        let w = for_overwrite::<f32>(MIN_POOLED * 3);
        assert_eq!(w.len(), MIN_POOLED * 3);
        recycle(w);
        let w = for_overwrite::<f32>(MIN_POOLED * 2);
        assert_eq!(w.len(), MIN_POOLED * 2);
    }

    #[test]
    fn the_pool_stays_bounded() {
        let big = MAX_POOLED_BYTES / 4 / 3;
        for _ in 0..10 {
            recycle(vec![0f32; big]);
        }
        let held = with_pool::<f32, _>(|p| p.bytes).unwrap();
        assert!(held <= MAX_POOLED_BYTES, "{held}");
    }
}
