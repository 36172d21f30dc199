//! What `gradcon bench` reads from the operating system: the process's CPU clock (all threads)
//! and its peak resident memory. Both are `None` where the system does not say (not Unix).

use std::time::Duration;

/// CPU time used so far by every thread of this process.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of libc.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The most memory this process has had resident at once, in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: `rusage` is plain data; zeroed is a valid value and getrusage fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        if rc != 0 {
            return None;
        }
        // Kilobytes on Linux and the BSDs, bytes on macOS.
        let bytes = if cfg!(target_os = "macos") {
            usage.ru_maxrss as f64
        } else {
            usage.ru_maxrss as f64 * 1024.0
        };
        Some(bytes / (1024.0 * 1024.0))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The value at quantile `q` (0 to 1) of sorted values: the smallest value with at least a
/// fraction `q` of the values at or below it.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_hundred_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn the_cpu_clock_advances_with_work_and_memory_is_reported() {
        let Some(t0) = process_cpu_time() else { return };
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = process_cpu_time().unwrap() - t0;
        assert!(used >= Duration::from_millis(10), "{used:?}");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        assert!(peak_rss_mb().unwrap() >= 64.0);
    }
}
