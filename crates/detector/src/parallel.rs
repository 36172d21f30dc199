//! Thread counts, pools whose workers have ended once they are dropped ([`WorkerPool`]), and
//! keeping the thread pool's other workers awake through a training step, a validation pass
//! or a scoring run.
//!
//! A step runs about a hundred short parallel regions (validation and scoring batches too). Between two of them rayon's idle worker
//! goes to sleep on a futex, and the next region has to wake it; on a virtual machine whose host
//! is busy, a halted vCPU can take long to come back, and the step waits for it. OpenMP runtimes
//! avoid this by spinning for a while before sleeping. [`BusyWorkers`] does the same on rayon:
//! while it lives, each other worker runs a polling job that takes any pending work at once.
//!
//! Each polling job runs for at most [`POLL_SLICE`] and then queues a fresh one. It must not
//! run until the step ends: a worker may start it on top of a join of its own (rayon runs
//! queued jobs while it waits), and that join can only finish once the job returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest thread count a caller may ask for.
pub const MAX_THREADS: usize = 256;

/// Checks a thread count asked for by a caller: 1 to [`MAX_THREADS`] (0 does not mean "all
/// cores" here; leave the count unset for that).
pub fn check_threads(threads: usize) -> crate::Result<()> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(())
    } else {
        Err(crate::Error::InvalidOption {
            option: "threads",
            value: threads.to_string(),
            expected: "a number from 1 to 256",
        })
    }
}

/// Threads this process can run at once: the cores it may use (affinity and cgroup quotas
/// counted, as [`std::thread::available_parallelism`] reports them), 1 if unknown.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The workers a pool asked for `threads` gets: at most [`cores`]. More workers than cores
/// gain nothing (every kernel's result is the same on any number of threads) and cost much:
/// each short parallel region is split for, and waits on, workers that are not running.
pub fn workers_for(threads: usize) -> usize {
    threads.min(cores()).max(1)
}

/// A rayon pool for `threads` workers (checked with [`check_threads`]), of
/// [`workers_for`]`(threads)` workers.
pub fn thread_pool(threads: usize) -> crate::Result<WorkerPool> {
    check_threads(threads)?;
    let mut workers = Vec::new();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers_for(threads))
        .thread_name(|i| format!("gradcon-{i}"))
        // The workers are started here, so that their handles can be joined.
        .spawn_handler(|worker| {
            let mut b = std::thread::Builder::new();
            if let Some(name) = worker.name() {
                b = b.name(name.to_owned());
            }
            if let Some(size) = worker.stack_size() {
                b = b.stack_size(size);
            }
            workers.push(b.spawn(|| worker.run())?);
            Ok(())
        })
        .build()
        .map_err(|e| crate::Error::invalid("thread pool", e.to_string()))?;
    Ok(WorkerPool {
        pool: Some(pool),
        workers,
    })
}

/// A rayon pool whose worker threads have ended when it is dropped: a dropped
/// [`rayon::ThreadPool`] only asks its workers to end, and they finish (freeing what their
/// threads hold) some time later, after the owner has gone.
///
/// Dropped on one of its own workers (where waiting for itself would never end), it only asks.
#[derive(Debug)]
pub struct WorkerPool {
    /// `None` only while dropping.
    pool: Option<rayon::ThreadPool>,
    workers: Vec<JoinHandle<()>>,
}

impl std::ops::Deref for WorkerPool {
    type Target = rayon::ThreadPool;

    fn deref(&self) -> &rayon::ThreadPool {
        self.pool.as_ref().expect("only taken while dropping")
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else { return };
        let on_own_worker = pool.current_thread_index().is_some();
        // Asks the workers to end once the work queued on them is done.
        drop(pool);
        if on_own_worker {
            return;
        }
        for worker in self.workers.drain(..) {
            // A worker's panic was reported when it happened (rayon's panic handling).
            let _ = worker.join();
        }
    }
}

/// How long one polling job looks for work before it makes way for a fresh one.
pub const POLL_SLICE: Duration = Duration::from_micros(50);

/// While alive, the current pool's workers other than this thread poll for work.
#[derive(Debug)]
pub struct BusyWorkers {
    stop: Arc<AtomicBool>,
}

impl BusyWorkers {
    /// Starts one polling job per other worker of the current pool (none on a one-thread pool).
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let me = rayon::current_thread_index();
        for _ in 1..rayon::current_num_threads() {
            poll(stop.clone(), me);
        }
        Self { stop }
    }
}

impl Drop for BusyWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Queues a polling job: on a worker other than `me` it takes pending work for up to
/// [`POLL_SLICE`], then queues the next one; on `me` (the thread that started it, when it
/// picks the job up while waiting) it only passes the job on.
fn poll(stop: Arc<AtomicBool>, me: Option<usize>) {
    rayon::spawn(move || {
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if rayon::current_thread_index() == me || start.elapsed() > POLL_SLICE {
                poll(stop, me);
                return;
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::hint::spin_loop();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::Mutex;

    #[test]
    fn pools_have_no_more_workers_than_cores() {
        let cores = cores();
        assert_eq!(
            thread_pool(MAX_THREADS).unwrap().current_num_threads(),
            cores
        );
        assert_eq!(thread_pool(1).unwrap().current_num_threads(), 1);
        assert_eq!(workers_for(cores + 1), cores);
        assert!(thread_pool(MAX_THREADS + 1).is_err());
    }

    /// A pool whose last owner is dropped on one of its own workers does not wait for itself
    /// (its workers end on their own). The one that counts threads is `tests/release.rs`.
    #[test]
    fn a_pool_dropped_on_its_own_worker_does_not_hang() {
        let pool = Arc::new(thread_pool(1).unwrap());
        let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let last = pool.clone();
        pool.spawn(move || {
            gate_rx.recv().unwrap();
            drop(last); // the last owner, on the pool's own worker
            done_tx.send(()).unwrap();
        });
        drop(pool);
        gate.send(()).unwrap();
        done.recv_timeout(Duration::from_secs(20))
            .expect("a pool dropped on its own worker hung");
    }

    /// Polling jobs started while the other worker is in nested joins, and kept alive while the
    /// caller waits on that worker: the work finishes (within 20 s) with the right sums. (Whether
    /// a worker picks a polling job up inside a join is up to the scheduler, so this does not
    /// reliably show the hang an unbounded polling job can cause; that hang was seen in the
    /// training step.)
    #[test]
    fn nested_joins_finish_under_polling_workers() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sums: Vec<u64> = pool.install(|| {
                (0..100u64)
                    .map(|round| {
                        let busy = Mutex::new(None);
                        let inside = AtomicBool::new(false);
                        let ((), sum) = rayon::join(
                            || {
                                while !inside.load(Ordering::Relaxed) {
                                    std::hint::spin_loop();
                                }
                                *busy.lock().unwrap() = Some(BusyWorkers::start());
                            },
                            || {
                                (0..64u64)
                                    .into_par_iter()
                                    .map(|i| {
                                        inside.store(true, Ordering::Relaxed);
                                        (0..512u64)
                                            .into_par_iter()
                                            .map(|j| i * j + round)
                                            .sum::<u64>()
                                    })
                                    .sum::<u64>()
                            },
                        );
                        drop(busy);
                        sum
                    })
                    .collect()
            });
            tx.send(sums).unwrap();
        });
        let sums = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("nested joins under polling workers did not finish within 20 s");
        for (round, s) in sums.iter().enumerate() {
            let want: u64 = (0..64u64)
                .map(|i| (0..512u64).map(|j| i * j + round as u64).sum::<u64>())
                .sum();
            assert_eq!(*s, want);
        }
    }
}
