//! Prints the f32 FMA throughput the machine delivers right now, on the widest SIMD path, as
//! the median of a short burst of timed loops (about 0.1 s): a quick reading of how much of the
//! host the guest is getting, taken next to a benchmark run (`compare_gradcon.sh` does, before
//! every round of each engine).
//!
//! `cargo run --release -p benches --example peak -- [--threads 2] [--reps 60]`; prints the
//! GFLOP/s as a bare number.

use benches::peak::measure;
use core_tensor::Isa;

fn main() {
    let mut threads = 1;
    let mut reps = 60;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (flag.as_str(), value) {
            ("--threads", Some(v)) => threads = v.max(1),
            ("--reps", Some(v)) => reps = v.max(1),
            _ => {
                eprintln!("usage: peak [--threads N] [--reps N]");
                std::process::exit(2);
            }
        }
    }
    println!("{:.1}", measure(Isa::detect(), threads, reps));
}
