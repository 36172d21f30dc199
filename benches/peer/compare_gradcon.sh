#!/usr/bin/env sh
# Side-by-side GradCon training step and scoring: gradcon-rs vs the PyTorch peer (gradcon.py),
# for 1 and 2 threads and 1 and 3 channels, the engines run back to back in the same sitting.
#
# Usage: benches/peer/compare_gradcon.sh [ROUNDS]
#   ROUNDS  each configuration runs both engines alternately this many times and keeps each
#           engine's best median (default 2), so a burst of load hits both alike.
# Environment: PYTHON (default benches/peer/.venv/bin/python, see README.md);
#              PEAK_1T, PEAK_2T (GFLOP/s) skip the peak measurement.
# Prints two markdown tables: the training step (ms, GFLOP/s, share of the measured peak) and
# scoring (images/s, GFLOP/s), with the ratios. Both engines are credited with PyTorch's own
# FLOP count of the same work (torch.utils.flop_counter), so GFLOP/s compare like for like.
# A third table lists every round: the step of each engine and, taken just before it, the FMA
# throughput the host gave the guest at that moment (examples/peak.rs), which on a shared host
# moves with the other guests' load and explains most of the spread between rounds.
set -eu
cd "$(dirname "$0")/../.."
python=${PYTHON:-benches/peer/.venv/bin/python}
rounds=${1:-2}
cargo build --release --quiet -p gradcon
cargo build --release --quiet -p benches --example peak
bin=./target/release/gradcon
peak_now() { ./target/release/examples/peak --threads "$1"; }
field() { # field NAME JSON
    printf '%s' "$2" | tr ',{}' '\n\n\n' | sed -n "s/^ *\"$1\": *//p"
}
# The machine's measured FMA peak per thread count: the best path of the criterion peak bench.
if [ -z "${PEAK_1T:-}" ] || [ -z "${PEAK_2T:-}" ]; then
    peaks=$(cargo bench --quiet -p benches --bench peak -- --quick 2>/dev/null | awk '
        /^peak_fma\// { split($1, p, "/"); t = p[2] }
        /thrpt:/ { v = $4 + 0; if ($5 ~ /^M/) v /= 1000; if (v > best[t]) best[t] = v }
        END { printf "%.1f %.1f", best["1t"], best["2t"] }')
    PEAK_1T=${peaks% *}
    PEAK_2T=${peaks#* }
fi
echo "Measured FMA peak: ${PEAK_1T} GFLOP/s on 1 thread, ${PEAK_2T} GFLOP/s on 2 threads."
echo
steps=""
scores=""
per_round=""
for threads in 1 2; do
    peak=$([ "$threads" = 1 ] && echo "$PEAK_1T" || echo "$PEAK_2T")
    for c in 1 3; do
        best_rs=""; best_pt=""; best_sc=0; best_loop=0; best_vmap=0
        r=1
        while [ "$r" -le "$rounds" ]; do
            peak_rs=$(peak_now "$threads")
            rs=$($bin --threads "$threads" bench --channels "$c" --json)
            peak_pt=$(peak_now "$threads")
            pt=$("$python" benches/peer/gradcon.py bench --threads "$threads" --channels "$c" 2>/dev/null)
            s=$(field train_step_ms "$rs"); p=$(field train_step_ms "$pt")
            per_round="$per_round$(awk -v t="$threads" -v c="$c" -v r="$r" -v a="$peak_rs" -v s="$s" \
                -v b="$peak_pt" -v p="$p" 'BEGIN{
                printf "| %d | %d | %d | %.0f | %.1f | %.0f | %.1f | %.2f |", t, c, r, a, s, b, p, s / p }')
"
            best_rs=$(awk -v a="$best_rs" -v b="$s" 'BEGIN{print (a=="" || b<a) ? b : a}')
            best_pt=$(awk -v a="$best_pt" -v b="$p" 'BEGIN{print (a=="" || b<a) ? b : a}')
            best_sc=$(awk -v a="$best_sc" -v b="$(field score_imgs_per_s "$rs")" 'BEGIN{print (b>a) ? b : a}')
            best_loop=$(awk -v a="$best_loop" -v b="$(field score_loop_imgs_per_s "$pt")" 'BEGIN{print (b>a) ? b : a}')
            best_vmap=$(awk -v a="$best_vmap" -v b="$(field score_vmap_imgs_per_s "$pt")" 'BEGIN{print (b>a) ? b : a}')
            gflop=$(field train_step_gflop "$pt")
            img_gflop=$(field score_gflop_per_img "$pt")
            r=$((r + 1))
        done
        steps="$steps$(awk -v t="$threads" -v c="$c" -v rs="$best_rs" -v pt="$best_pt" \
            -v f="$gflop" -v peak="$peak" 'BEGIN{
            g1 = f / rs * 1000; g2 = f / pt * 1000
            printf "| %d | %d | %.3f | %.1f | %.1f | %.0f (%.0f %%) | %.0f (%.0f %%) | %.2f |",
                t, c, f, rs, pt, g1, 100 * g1 / peak, g2, 100 * g2 / peak, rs / pt }')
"
        scores="$scores$(awk -v t="$threads" -v c="$c" -v sc="$best_sc" -v lp="$best_loop" \
            -v vm="$best_vmap" -v f="$img_gflop" -v peak="$peak" 'BEGIN{
            printf "| %d | %d | %.0f (%.0f GFLOP/s) | %.0f | %.0f (%.0f GFLOP/s) | %.1fx | %.1fx |",
                t, c, sc, sc * f, lp, vm, vm * f, sc / lp, sc / vm }')
"
    done
done
printf '| threads | C | GFLOP per step | gradcon-rs step (ms) | PyTorch step (ms) | gradcon-rs GFLOP/s (of peak) | PyTorch GFLOP/s (of peak) | step ratio |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|\n'
printf '%s' "$steps"
echo
printf '| threads | C | gradcon-rs scoring (img/s) | PyTorch loop (img/s) | PyTorch vmap (img/s) | vs loop | vs vmap |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
printf '%s' "$scores"
echo
printf '| threads | C | round | FMA GFLOP/s before | gradcon-rs step (ms) | FMA GFLOP/s before | PyTorch step (ms) | ratio |\n'
printf '|---|---|---|---:|---:|---:|---:|---:|\n'
printf "%s" "$per_round"
