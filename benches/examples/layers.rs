//! Times the 24 convolution kernels of the GradCon autoencoder (batch 64) and prints the median
//! milliseconds and GFLOP/s of each, in the format of `benches/peer/layers.py`.
//!
//! `cargo run --release -p benches --example layers -- [--threads 2] [--batch 64] [--reps 50]
//! [--warmup 10] [--isa avx512] [--only enc2] [--clock cpu] [--layout nhwc] [--channels 3]
//! [--json]`
//!
//! `--isa scalar,portable` (a list) times the paths against each other: every repetition runs
//! each kernel on each path in turn, so load on a shared machine falls on all of them alike, and
//! a last column gives the first path's median over each other path's (the speed-up).
//!
//! `--layout nhwc` times the kernels on NHWC images, as the GradCon model runs them (the default,
//! NCHW, matches `benches/peer/layers.py`); `--channels` sets the image channels.
//!
//! `--clock cpu` times the CPU time of the whole process (all threads, Linux `/proc`), which a
//! loaded machine disturbs less than wall time; compare it at one thread.

use std::time::Instant;

use benches::layers::{kernels, LayerKernel};
use core_tensor::{Isa, Layout};

struct Args {
    threads: usize,
    batch: usize,
    reps: usize,
    warmup: usize,
    isas: Vec<Isa>,
    json: bool,
    only: Option<String>,
    cpu_clock: bool,
    layout: Layout,
    channels: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        threads: 2,
        batch: 64,
        reps: 50,
        warmup: 10,
        isas: vec![Isa::detect()],
        json: false,
        only: None,
        cpu_clock: false,
        layout: Layout::Nchw,
        channels: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            args.json = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--threads" => args.threads = number()?,
            "--batch" => args.batch = number()?,
            "--reps" => args.reps = number()?.max(1),
            "--warmup" => args.warmup = number()?,
            "--only" => args.only = Some(value),
            "--channels" => args.channels = number()?.max(1),
            "--layout" => {
                args.layout = match value.as_str() {
                    "nchw" => Layout::Nchw,
                    "nhwc" => Layout::Nhwc,
                    _ => return Err(format!("--layout {value}: expected nchw or nhwc")),
                }
            }
            "--clock" => {
                args.cpu_clock = match value.as_str() {
                    "wall" => false,
                    "cpu" => true,
                    _ => return Err(format!("--clock {value}: expected wall or cpu")),
                }
            }
            "--isa" => {
                args.isas = value
                    .split(',')
                    .map(|name| {
                        let isa = Isa::parse(name).ok_or(format!("unknown --isa {name}"))?;
                        isa.checked().map_err(|e| e.to_string())
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

/// CPU time of the whole process (all threads) in milliseconds, from `/proc` (Linux).
fn cpu_ms() -> f64 {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 * 1e-6
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
            eprintln!("layers: {e}");
            std::process::exit(2);
        }
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("the global thread pool is built once");
    if args.isas.len() > 1 {
        return compare(&args);
    }
    let isa = args.isas[0];
    let mut total = 0.0;
    for k in kernels(args.batch, args.channels, args.layout) {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !k.name().contains(o.as_str()))
        {
            continue;
        }
        for _ in 0..args.warmup {
            std::hint::black_box(k.run(isa));
        }
        let times: Vec<f64> = (0..args.reps).map(|_| time(&args, &k, isa)).collect();
        let ms = median(times);
        total += ms;
        let gflops = k.flops() as f64 / (ms * 1e6);
        if args.json {
            println!(
                "{{\"kernel\": \"{}\", \"ms\": {ms}, \"gflops\": {gflops}, \"macs\": {}}}",
                k.name(),
                k.flops() / 2
            );
        } else {
            println!("{:<18} {ms:9.3} ms {gflops:8.1} GFLOP/s", k.name());
        }
    }
    if !args.json {
        println!(
            "{:<18} {total:9.3} ms  ({} path, {} threads)",
            "total", isa, args.threads
        );
    }
}

/// Milliseconds of one call of `k` on `isa`, on the clock `args` names.
fn time(args: &Args, k: &LayerKernel, isa: Isa) -> f64 {
    if args.cpu_clock {
        let t0 = cpu_ms();
        std::hint::black_box(k.run(isa));
        cpu_ms() - t0
    } else {
        let t0 = Instant::now();
        std::hint::black_box(k.run(isa));
        t0.elapsed().as_secs_f64() * 1e3
    }
}

/// Every kernel on every path of `args.isas`, the paths taking turns within each repetition:
/// the median milliseconds per path and the first path's median over each other's.
fn compare(args: &Args) {
    let names: Vec<String> = args.isas.iter().map(Isa::to_string).collect();
    println!(
        "{:<18} {}  speed-up over {}",
        "kernel (ms)",
        names.iter().map(|n| format!("{n:>9}")).collect::<String>(),
        names[0]
    );
    let mut totals = vec![0.0; args.isas.len()];
    for k in kernels(args.batch, args.channels, args.layout) {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !k.name().contains(o.as_str()))
        {
            continue;
        }
        for _ in 0..args.warmup {
            for &isa in &args.isas {
                std::hint::black_box(k.run(isa));
            }
        }
        let mut times = vec![Vec::with_capacity(args.reps); args.isas.len()];
        for _ in 0..args.reps {
            for (t, &isa) in times.iter_mut().zip(&args.isas) {
                t.push(time(args, &k, isa));
            }
        }
        let ms: Vec<f64> = times.into_iter().map(median).collect();
        for (t, m) in totals.iter_mut().zip(&ms) {
            *t += m;
        }
        print_row(&k.name(), &ms);
    }
    print_row("total", &totals);
    println!(
        "({} threads, {:?}, batch {})",
        args.threads, args.layout, args.batch
    );
}

fn print_row(name: &str, ms: &[f64]) {
    let cells: String = ms.iter().map(|m| format!("{m:9.3}")).collect();
    let factors: String = ms[1..]
        .iter()
        .map(|m| format!("{:7.2}x", ms[0] / m))
        .collect();
    println!("{name:<18} {cells} {factors}");
}
