//! Packed weight panels, kept between calls.
//!
//! The forward and phased-adjoint kernels read the weights as panels of `NR` output columns,
//! which take a pass over the weights to build. A training step convolves with the same
//! weights several times (forward, input gradient, and again in the double backward), and a
//! loaded model scoring one image at a time convolves with the same weights on every call,
//! where packing was over half of the call's time. So the panels are cached under the weight
//! tensor's content id ([`Tensor::content_id`]: new for every new or mutated tensor, shared by
//! clones, never reused), the element type and everything the packing depends on. A cached
//! panel is a copy of the weights in another order, so a hit gives the same bits as packing
//! afresh.
//!
//! The cache is one per process, holds at most [`CACHE_BYTES`] in at most [`CACHE_ENTRIES`]
//! packings and drops the least recently used first. A packing larger than a quarter of it is
//! not kept, nor one smaller than [`MIN_CACHED_BYTES`] (packed again faster than it is looked
//! up and kept).

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};

use crate::pool::with_scratch;
use crate::{Element, Tensor};

/// Most bytes of packed panels kept (the GradCon model's take about 1 MB: a few training steps' worth).
pub(crate) const CACHE_BYTES: usize = 4 << 20;
/// Most packings kept.
pub(crate) const CACHE_ENTRIES: usize = 64;
/// Smallest packing kept, in bytes.
pub(crate) const MIN_CACHED_BYTES: usize = 16 << 10;

/// Which packing of the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Packing {
    /// `direct::forward`'s `NR`-column panels of the `(tap, c) x o` matrix.
    Forward,
    /// `direct::adjoint_phased`'s panels, one set per output phase.
    Phased,
}

/// What a packing depends on: the weights' values (content id and element type), the packing,
/// the panel width and the shapes, strides and padding it was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct PackKey {
    ty: TypeId,
    id: u64,
    packing: Packing,
    nr: usize,
    dims: [usize; 8],
}

impl PackKey {
    /// The key of packing `w` as `packing` for panels of `nr` columns, with `dims` naming the
    /// rest of the geometry the packing reads (the caller lists every value it depends on).
    pub(super) fn new<T: Element>(
        w: &Tensor<T>,
        packing: Packing,
        nr: usize,
        dims: [usize; 8],
    ) -> Self {
        Self {
            ty: TypeId::of::<T>(),
            id: w.content_id(),
            packing,
            nr,
            dims,
        }
    }
}

struct Entry {
    key: PackKey,
    bytes: usize,
    last_used: u64,
    panels: Arc<dyn Any + Send + Sync>,
}

struct Cache {
    entries: Vec<Entry>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    const fn new() -> Self {
        Self {
            entries: Vec::new(),
            bytes: 0,
            clock: 0,
        }
    }
}

static CACHE: Mutex<Cache> = Mutex::new(Cache::new());

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    // A panic while holding the lock leaves the cache consistent (every change is one push or
    // one removal), so a poisoned lock is taken as it is.
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops every cached packing (a packing in use lives on until its call ends). For an owner
/// that is done with its weights: the cache would otherwise keep their panels until newer
/// packings push them out.
pub(crate) fn clear() {
    let entries = {
        let mut cache = lock(&CACHE);
        cache.bytes = 0;
        std::mem::take(&mut cache.entries)
    };
    drop(entries);
}

/// Bytes of packed panels in the cache.
pub(crate) fn cached_bytes() -> usize {
    lock(&CACHE).bytes
}

/// Runs `f` on the `len` packed values of `key`: from the cache, or packed by `pack` (which
/// must write every value) and kept if small enough. With no key (the caller cannot name the
/// weights' values), packs into scratch memory every time.
pub(super) fn with_packed<T: Element, R>(
    key: Option<PackKey>,
    len: usize,
    pack: impl FnOnce(&mut [T]),
    f: impl FnOnce(&[T]) -> R,
) -> R {
    with_packed_in(&CACHE, key, len, pack, f)
}

/// [`with_packed`] on a given cache.
fn with_packed_in<T: Element, R>(
    cache: &Mutex<Cache>,
    key: Option<PackKey>,
    len: usize,
    pack: impl FnOnce(&mut [T]),
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let bytes = len * std::mem::size_of::<T>();
    let Some(key) = key.filter(|_| (MIN_CACHED_BYTES..=CACHE_BYTES / 4).contains(&bytes)) else {
        return with_scratch(len, |buf| {
            pack(buf);
            f(buf)
        });
    };
    let hit = {
        let mut cache = lock(cache);
        cache.clock += 1;
        let now = cache.clock;
        cache.entries.iter_mut().find(|e| e.key == key).map(|e| {
            e.last_used = now;
            e.panels.clone()
        })
    };
    if let Some(panels) = hit.and_then(|p| p.downcast::<Vec<T>>().ok()) {
        if panels.len() == len {
            return f(&panels);
        }
    }
    let mut fresh = crate::pool::for_overwrite::<T>(len);
    pack(&mut fresh);
    let panels = Arc::new(fresh);
    {
        let mut cache = lock(cache);
        if !cache.entries.iter().any(|e| e.key == key) {
            while (cache.bytes + bytes > CACHE_BYTES || cache.entries.len() >= CACHE_ENTRIES)
                && !cache.entries.is_empty()
            {
                let oldest = (0..cache.entries.len())
                    .min_by_key(|&i| cache.entries[i].last_used)
                    .expect("not empty");
                let gone = cache.entries.swap_remove(oldest);
                cache.bytes -= gone.bytes;
            }
            cache.clock += 1;
            let last_used = cache.clock;
            cache.bytes += bytes;
            cache.entries.push(Entry {
                key,
                bytes,
                last_used,
                panels: panels.clone(),
            });
        }
    }
    f(&panels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(w: &Tensor<f32>, nr: usize) -> Option<PackKey> {
        Some(PackKey::new(w, Packing::Forward, nr, [0; 8]))
    }

    /// Packs `w` reversed on the test's own cache, counting the packings.
    fn reversed(cache: &Mutex<Cache>, w: &Tensor<f32>, nr: usize, packs: &mut usize) -> Vec<f32> {
        with_packed_in(
            cache,
            key(w, nr),
            w.len(),
            |out: &mut [f32]| {
                *packs += 1;
                for (o, v) in out.iter_mut().zip(w.data().iter().rev()) {
                    *o = *v;
                }
            },
            <[f32]>::to_vec,
        )
    }

    #[test]
    fn hits_for_the_same_values_and_misses_after_a_change() {
        let c = Mutex::new(Cache::new());
        let n = MIN_CACHED_BYTES / 4;
        let mut w = Tensor::<f32>::from_vec((0..n).map(|i| i as f32).collect(), &[n]).unwrap();
        let mut packs = 0;
        let first = reversed(&c, &w, 8, &mut packs);
        assert_eq!(packs, 1);
        // Same values again, and a clone of them: no new packing.
        assert_eq!(reversed(&c, &w, 8, &mut packs), first);
        assert_eq!(reversed(&c, &w.clone(), 8, &mut packs), first);
        assert_eq!(packs, 1);
        // Another panel width is another packing.
        reversed(&c, &w, 16, &mut packs);
        assert_eq!(packs, 2);
        // A mutation gives the tensor a new id: packed afresh, from the new values.
        w.data_mut()[n - 1] = -1.0;
        let after = reversed(&c, &w, 8, &mut packs);
        assert_eq!(packs, 3);
        assert_eq!(after[0], -1.0);
        // An equal tensor built anew has its own id.
        let twin = Tensor::<f32>::from_vec(w.data().to_vec(), &[n]).unwrap();
        assert_eq!(reversed(&c, &twin, 8, &mut packs), after);
        assert_eq!(packs, 4);
    }

    #[test]
    fn stays_within_its_budget() {
        let c = Mutex::new(Cache::new());
        let len = CACHE_BYTES / 4 / std::mem::size_of::<f32>();
        let mut packs = 0;
        for i in 0..12 {
            let w = Tensor::<f32>::full(&[len], i as f32);
            let got = reversed(&c, &w, 8, &mut packs);
            assert_eq!(got[0], i as f32);
            assert!(lock(&c).bytes <= CACHE_BYTES && lock(&c).entries.len() <= 4);
        }
        assert_eq!(packs, 12);
        // Too large or too small to keep: packed every time.
        for size in [len + 1, MIN_CACHED_BYTES / 4 - 1] {
            let w = Tensor::<f32>::zeros(&[size]);
            let before = packs;
            reversed(&c, &w, 8, &mut packs);
            reversed(&c, &w, 8, &mut packs);
            assert_eq!(packs, before + 2);
        }
        // No more than the most entries, however small.
        for i in 0..2 * CACHE_ENTRIES {
            let w = Tensor::<f32>::full(&[MIN_CACHED_BYTES / 4], i as f32);
            reversed(&c, &w, 8, &mut packs);
            assert!(lock(&c).entries.len() <= CACHE_ENTRIES);
        }
    }
}
