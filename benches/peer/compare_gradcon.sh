#!/usr/bin/env sh
# Side-by-side GradCon training step and scoring: gradcon-rs vs the PyTorch peer (gradcon.py),
# for 1 and 2 threads and 1 and 3 channels, the engines run back to back in the same sitting.
#
# Usage: benches/peer/compare_gradcon.sh [ROUNDS]
#   ROUNDS  each configuration runs both engines alternately this many times and keeps each
#           engine's best median (default 2), so a burst of load hits both alike.
# Environment: PYTHON (default benches/peer/.venv/bin/python, see README.md).
# Prints a markdown table: training step (ms), scoring (images/s), and the ratios.
set -eu
cd "$(dirname "$0")/../.."
python=${PYTHON:-benches/peer/.venv/bin/python}
rounds=${1:-2}
cargo build --release --quiet -p detector --bin gradcon
bin=./target/release/gradcon
field() { # field NAME JSON
    printf '%s' "$2" | tr ',{}' '\n\n\n' | sed -n "s/^ *\"$1\": *//p"
}
printf '| threads | C | gradcon-rs step (ms) | PyTorch step (ms) | step ratio | gradcon-rs scoring (img/s) | PyTorch loop (img/s) | PyTorch vmap (img/s) | vs loop | vs vmap |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for threads in 1 2; do
    for c in 1 3; do
        best_rs=""; best_pt=""; best_sc=0; best_loop=0; best_vmap=0
        r=1
        while [ "$r" -le "$rounds" ]; do
            rs=$($bin --threads "$threads" bench --channels "$c" --json)
            pt=$("$python" benches/peer/gradcon.py bench --threads "$threads" --channels "$c" 2>/dev/null)
            s=$(field train_step_ms "$rs"); p=$(field train_step_ms "$pt")
            best_rs=$(awk -v a="$best_rs" -v b="$s" 'BEGIN{print (a=="" || b<a) ? b : a}')
            best_pt=$(awk -v a="$best_pt" -v b="$p" 'BEGIN{print (a=="" || b<a) ? b : a}')
            best_sc=$(awk -v a="$best_sc" -v b="$(field score_imgs_per_s "$rs")" 'BEGIN{print (b>a) ? b : a}')
            best_loop=$(awk -v a="$best_loop" -v b="$(field score_loop_imgs_per_s "$pt")" 'BEGIN{print (b>a) ? b : a}')
            best_vmap=$(awk -v a="$best_vmap" -v b="$(field score_vmap_imgs_per_s "$pt")" 'BEGIN{print (b>a) ? b : a}')
            r=$((r + 1))
        done
        awk -v t="$threads" -v c="$c" -v rs="$best_rs" -v pt="$best_pt" -v sc="$best_sc" \
            -v lp="$best_loop" -v vm="$best_vmap" 'BEGIN{
            printf "| %d | %d | %.1f | %.1f | %.2fx | %.0f | %.0f | %.0f | %.1fx | %.1fx |\n",
                t, c, rs, pt, rs / pt, sc, lp, vm, sc / lp, sc / vm }'
    done
done
