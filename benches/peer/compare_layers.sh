#!/usr/bin/env sh
# Side-by-side timing of the 24 convolution kernels (batch 64): this crate vs PyTorch.
#
# Usage: benches/peer/compare_layers.sh [THREADS] [ROUNDS]
#   THREADS  threads for both engines (default 2)
#   ROUNDS   the two engines run alternately this many times; each kernel keeps its best
#            median over the rounds, so a burst of load from other processes hits both alike
#            (default 3)
# Environment: PYTHON (default benches/peer/.venv/bin/python, see README.md), ISA (path of
# this crate's kernels, default: the widest the CPU runs), REPS (timed calls per kernel per
# round, default 50), CLOCK (wall, the default, or cpu: CPU time of the whole process, less
# disturbed by other load; meaningful at one thread, where neither engine spins idle threads).
# Prints a markdown table with the per-kernel ratio and the sums over the 24 kernels.
set -eu
cd "$(dirname "$0")/../.."
threads=${1:-2}
rounds=${2:-3}
python=${PYTHON:-benches/peer/.venv/bin/python}
reps=${REPS:-50}
clock=${CLOCK:-wall}
isa_flag=""
if [ -n "${ISA:-}" ]; then isa_flag="--isa $ISA"; fi

cargo build --release --quiet -p benches --example layers
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
r=1
while [ "$r" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    ./target/release/examples/layers --json --threads "$threads" --reps "$reps" \
        --clock "$clock" $isa_flag > "$out/ours.$r"
    "$python" benches/peer/layers.py --json --threads "$threads" --reps "$reps" \
        --clock "$clock" > "$out/peer.$r"
    r=$((r + 1))
done

"$python" - "$out" "$threads" "$rounds" "$clock" <<'PY'
import glob, json, os, sys

out, threads, rounds, clock = sys.argv[1:5]

def best(prefix):
    """kernel -> (best median ms over the rounds, macs), in first-round order."""
    table = {}
    for path in sorted(glob.glob(os.path.join(out, prefix + ".*"))):
        for line in open(path):
            row = json.loads(line)
            ms = min(row["ms"], table.get(row["kernel"], (float("inf"), 0))[0])
            table[row["kernel"]] = (ms, row["macs"])
    return table

ours, peer = best("ours"), best("peer")
print(f"| kernel (batch 64, {threads} threads, {clock} time) | ours ms | ours GFLOP/s | PyTorch ms "
      f"| PyTorch GFLOP/s | PyTorch / ours |")
print("|---|---:|---:|---:|---:|---:|")
tot_o = tot_p = flops = 0.0
for k, (ms_o, macs) in ours.items():
    ms_p = peer[k][0]
    tot_o, tot_p, flops = tot_o + ms_o, tot_p + ms_p, flops + 2 * macs
    print(f"| {k} | {ms_o:.3f} | {2 * macs / ms_o / 1e6:.1f} | {ms_p:.3f} "
          f"| {2 * macs / ms_p / 1e6:.1f} | {ms_p / ms_o:.2f} |")
print(f"| **sum of 24** | **{tot_o:.2f}** | {flops / tot_o / 1e6:.1f} | **{tot_p:.2f}** "
      f"| {flops / tot_p / 1e6:.1f} | **{tot_p / tot_o:.2f}** |")
print(f"\nBest median of {rounds} alternating rounds per kernel; ratio > 1 means this crate is faster.")
PY
