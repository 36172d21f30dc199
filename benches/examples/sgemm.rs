//! Square sgemm `C = A B` on several SIMD paths taking turns, in GFLOP/s (`2 n^3` per call).
//!
//! `cargo run --release -p benches --example sgemm -- [--isa scalar,portable] [--threads 1]
//! [--sizes 64,128,256,512] [--flops 1e9]`
//!
//! Every repetition runs each path once in turn, so load on a shared machine falls on all of
//! them alike; each size repeats until about `--flops` floating-point operations per path have
//! run (at least 5 times), and the medians are printed with the first path's time over each
//! other's (the speed-up). The criterion bench `benches/benches/gemm.rs` times the same calls
//! one path after another.

use std::time::Instant;

use core_tensor::gemm::gemm_on;
use core_tensor::{Isa, Rng, Transpose};

struct Args {
    isas: Vec<Isa>,
    threads: usize,
    sizes: Vec<usize>,
    flops: f64,
}

fn list<T>(value: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    value.split(',').map(item).collect()
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        isas: vec![Isa::Scalar, Isa::Portable],
        threads: 1,
        sizes: vec![64, 128, 256, 512],
        flops: 1e9,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--isa" => {
                args.isas = list(&value, |name| {
                    let isa = Isa::parse(name).ok_or(format!("unknown --isa {name}"))?;
                    isa.checked().map_err(|e| e.to_string())
                })?
            }
            "--threads" => args.threads = value.parse().map_err(|e| format!("--threads: {e}"))?,
            "--sizes" => {
                args.sizes = list(&value, |s| {
                    s.parse().map_err(|e| format!("--sizes {s}: {e}"))
                })?
            }
            "--flops" => args.flops = value.parse().map_err(|e| format!("--flops: {e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sgemm: {e}");
            std::process::exit(2);
        }
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("the global thread pool is built once");
    let names: Vec<String> = args.isas.iter().map(Isa::to_string).collect();
    println!(
        "{:>5} {}  speed-up over {} ({} threads, GFLOP/s)",
        "n",
        names.iter().map(|n| format!("{n:>9}")).collect::<String>(),
        names[0],
        args.threads
    );
    let mut rng = Rng::seed_from_u64(1);
    for &n in &args.sizes {
        let a: Vec<f32> = (0..n * n).map(|_| rng.next_f32() - 0.5).collect();
        let b: Vec<f32> = (0..n * n).map(|_| rng.next_f32() - 0.5).collect();
        let mut c = vec![0.0f32; n * n];
        let flops = 2.0 * (n * n * n) as f64;
        let reps = ((args.flops / flops).ceil() as usize).max(5);
        let mut times = vec![Vec::with_capacity(reps); args.isas.len()];
        for _ in 0..reps {
            for (t, &isa) in times.iter_mut().zip(&args.isas) {
                let t0 = Instant::now();
                gemm_on(
                    isa,
                    n,
                    n,
                    n,
                    1.0,
                    &a,
                    Transpose::No,
                    &b,
                    Transpose::No,
                    0.0,
                    &mut c,
                );
                t.push(t0.elapsed().as_secs_f64());
            }
        }
        let s: Vec<f64> = times.into_iter().map(median).collect();
        let rates: String = s
            .iter()
            .map(|t| format!("{:9.2}", flops / t / 1e9))
            .collect();
        let factors: String = s[1..]
            .iter()
            .map(|t| format!("{:7.2}x", s[0] / t))
            .collect();
        println!("{n:>5} {rates} {factors}");
    }
}
