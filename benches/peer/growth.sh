#!/usr/bin/env bash
# How cost grows: gradcon-rs and the PyTorch peer side by side (2 threads).
#   benches/peer/growth.sh DATA_DIR
# DATA_DIR holds MNIST (mnist/train-images-idx3-ubyte.gz). Environment: PYTHON (default
# benches/peer/.venv/bin/python). Prints three markdown tables:
#   1. the training step and the time per image for batches of 16 to 256, both engines
#      (`bench --batch B`, the engines alternating batch by batch), with each run's peak
#      resident memory;
#   2. scoring throughput over 1,000, 10,000 and 60,000 images (`bench --images N`; the
#      peer's vmap over the same numbers);
#   3. peak resident memory of `gradcon score` and of one epoch of `gradcon train` on the
#      first 1,000, 10,000 and 60,000 MNIST training images (GNU time's maximum RSS).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:?usage: growth.sh DATA_DIR}
python=${PYTHON:-benches/peer/.venv/bin/python}
cargo build --release --quiet -p gradcon
bin=./target/release/gradcon
field() { printf '%s' "$2" | tr ',{}' '\n\n\n' | sed -n "s/^ *\"$1\": *//p"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| batch | gradcon-rs step (ms) | per image (ms) | PyTorch step (ms) | per image (ms) | ratio | gradcon-rs peak RSS (MiB) | PyTorch peak RSS (MiB) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for b in 16 32 64 128 256; do
    rs=$($bin --threads 2 bench --batch "$b" --steps 20 --images 64 --calls 10 --json)
    pt=$("$python" benches/peer/gradcon.py bench --threads 2 --batch "$b" --reps 20 --score-images 64 2>/dev/null)
    awk -v b="$b" -v s="$(field train_step_ms "$rs")" -v p="$(field train_step_ms "$pt")" \
        -v ms="$(field peak_rss_mb "$rs")" -v mp="$(field peak_rss_mb "$pt")" 'BEGIN {
        printf "| %d | %.2f | %.3f | %.2f | %.3f | %.2f | %.0f | %.0f |\n", b, s, s / b, p, p / b, s / p, ms, mp }'
done
echo
echo "| images | gradcon-rs scoring (img/s) | PyTorch vmap (img/s) | ratio |"
echo "|---:|---:|---:|---:|"
for n in 1000 10000 60000; do
    rs=$($bin --threads 2 bench --steps 1 --images "$n" --calls 10 --json)
    pt=$("$python" benches/peer/gradcon.py bench --threads 2 --reps 1 --warmup 1 --score-images "$n" 2>/dev/null)
    awk -v n="$n" -v s="$(field score_imgs_per_s "$rs")" -v p="$(field score_vmap_imgs_per_s "$pt")" 'BEGIN {
        printf "| %d | %.0f | %.0f | %.1fx |\n", n, s, p, s / p }'
done
echo
# The first N training images as IDX files, and a model to score them with.
"$python" - "$data/mnist/train-images-idx3-ubyte.gz" "$work" <<'PY'
import gzip, struct, sys
raw = gzip.open(sys.argv[1]).read()
for n in (1000, 10000, 60000):
    with open(f"{sys.argv[2]}/first-{n}.idx", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + raw[16:16 + n * 784])
PY
echo "| images | \`gradcon score\` peak RSS (MiB) | \`gradcon train\`, one epoch, peak RSS (MiB) |"
echo "|---:|---:|---:|"
for n in 1000 10000 60000; do
    rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
    s=$(rss $bin --quiet --threads 2 score --model data/models/fashion-mnist-0.gcm "$work/first-$n.idx")
    t=$(rss $bin --quiet --threads 2 train --images "$work/first-$n.idx" --epochs 1 --out "$work/m-$n.gcm")
    awk -v n="$n" -v s="$s" -v t="$t" 'BEGIN { printf "| %d | %.1f | %.1f |\n", n, s / 1024, t / 1024 }'
done
