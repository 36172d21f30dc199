#!/usr/bin/env bash
# Single-image latency of a loaded model, through the Rust API and through the C ABI, at 1 and
# 2 threads, interleaved round by round: benches/latency.sh [ROUNDS] [CALLS] (defaults 3, 10000).
# Each run prints one line of JSON (see benches/examples/latency.rs and benches/c/latency.c).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
calls=${2:-10000}
model=data/models/fashion-mnist-0.gcm
cargo build --release -q -p gradcon-c
cargo build --release -q -p benches --example latency
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -std=c11 -Wall -Wextra benches/c/latency.c -I crates/capi/include \
    -L target/release -lgradcon -Wl,-rpath,"$PWD/target/release" -o "$out/latency"
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        echo "round $round: $(target/release/examples/latency "$model" "$threads" "$calls")"
        echo "round $round: $("$out/latency" "$model" "$threads" "$calls")"
    done
done
