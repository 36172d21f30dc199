//! Single-image latency through the Rust API: a loaded model scoring one 28x28 grey image per
//! call (`Detector::score`), as an inspection line would. The same measurement as
//! `benches/c/latency.c` (same images, same order); `benches/latency.sh` runs both.
//!
//! `cargo run --release -p benches --example latency -- [MODEL] [THREADS] [CALLS]`
//! (defaults: `data/models/fashion-mnist-0.gcm`, 1, 10000).
//!
//! Prints one line of JSON: wall-clock median and p99 and on-CPU p99 (the process's CPU time per
//! call, all threads) in milliseconds, and the CPU the process uses per second while the loaded
//! model waits (one second of sleep after the calls).

use std::time::{Duration, Instant};

use detector::{Detector, Image};

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of libc.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + 1e-9 * ts.tv_nsec as f64
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/models/fashion-mnist-0.gcm"
        )
        .into()
    });
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    let calls: usize = args.next().map_or(Ok(10_000), |c| c.parse())?;
    let mut detector = Detector::load(&model)?;
    detector.set_threads(threads)?;
    // The images of latency.c: bytes of a 64-bit LCG's high bits.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let images: Vec<Image> = (0..64)
        .map(|_| {
            let pixels = (0..28 * 28)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect();
            Image::from_u8(1, 28, 28, pixels)
        })
        .collect::<Result<_, _>>()?;
    let mut sink = 0.0;
    for img in images.iter().cycle().take(calls / 10) {
        sink += detector.score(img)?.gradcon;
    }
    let (mut wall, mut cpu) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for img in images.iter().cycle().take(calls) {
        let (c0, t0) = (cpu_seconds(), Instant::now());
        sink += detector.score(img)?.gradcon;
        wall.push(t0.elapsed().as_secs_f64() * 1e3);
        cpu.push((cpu_seconds() - c0) * 1e3);
    }
    let (c0, t0) = (cpu_seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let idle = (cpu_seconds() - c0) * 1e3 / t0.elapsed().as_secs_f64();
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{{\"api\": \"rust\", \"threads\": {threads}, \"calls\": {calls}, \
         \"latency_ms_p50\": {:.4}, \"latency_ms_p99\": {:.4}, \"latency_cpu_ms_p99\": {:.4}, \
         \"idle_cpu_ms_per_s\": {idle:.4}, \"checksum\": {sink:.6}}}",
        quantile(&wall, 0.5),
        quantile(&wall, 0.99),
        quantile(&cpu, 0.99),
    );
    Ok(())
}
