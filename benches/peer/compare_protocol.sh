#!/usr/bin/env sh
# The one-class protocol side by side, interleaved by class: gradcon-rs trains, selects and
# scores class 0, then the PyTorch peer (gradcon.py) does the same class, then class 1, and so
# on, so that a change in the host's load during the half hour falls on both engines alike.
# Each engine seeds every class on its own, so a class run alone gives what it gives in a full
# run.
#
# Usage: benches/peer/compare_protocol.sh DATA_DIR [EPOCHS] [DATASET]
#   DATA_DIR  folder holding the data set's folder (as --data-dir / GRADCON_DATA)
#   EPOCHS    epochs per class (default 20); DATASET mnist (default) or fashion-mnist
# Environment: PYTHON (default benches/peer/.venv/bin/python); THREADS (default 2);
#              RESTARTS (default 5, the protocol's); OUT (default a new temporary folder);
#              CLASSES (default "0 1 2 3 4 5 6 7 8 9", the classes to run, in order).
# Prints a markdown table per class (wall time, restarts, GradCon AUROC of both engines), the
# totals, the wall-time ratio and the ratio per epoch trained (restarts train more epochs).
set -eu
cd "$(dirname "$0")/../.."
python=${PYTHON:-benches/peer/.venv/bin/python}
data=$1
epochs=${2:-20}
dataset=${3:-mnist}
threads=${THREADS:-2}
restarts=${RESTARTS:-5}
classes=${CLASSES:-0 1 2 3 4 5 6 7 8 9}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
cargo build --release --quiet -p gradcon
now() { date +%s.%N; }
printf '| class | gradcon-rs (s) | restarts | GradCon AUROC | PyTorch (s) | restarts | GradCon AUROC |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
rows=""
for c in $classes; do
    t0=$(now)
    ./target/release/gradcon --threads "$threads" protocol --dataset "$dataset" \
        --data-dir "$data" --out "$out/rs" --epochs "$epochs" --seed 0 --restarts "$restarts" \
        --classes "$c" --quiet > "$out/rs-$c.log" 2>&1
    t1=$(now)
    "$python" benches/peer/gradcon.py protocol --dataset "$dataset" --data-dir "$data" \
        --epochs "$epochs" --seed 0 --threads "$threads" --restarts "$restarts" --classes "$c" \
        > "$out/pt-$c.json" 2> "$out/pt-$c.log"
    t2=$(now)
    row=$("$python" - "$out/rs/class_$c.json" "$out/pt-$c.json" "$t0" "$t1" "$t2" "$epochs" <<'EOF'
import json, re, sys
rs = json.load(open(sys.argv[1]))
pt = json.loads(open(sys.argv[2]).read().splitlines()[0])
t0, t1, t2 = map(float, sys.argv[3:6])
epochs = int(sys.argv[6])
# Epochs trained: the last attempt's, plus those before each restart (the reason names the
# epoch; the peer restarts only at its check epoch, 2).
rs_epochs = rs["epochs_run"] + sum(int(re.search(r"after epoch (\d+)", r)[1])
                                   for r in rs["restart_reasons"])
pt_epochs = epochs + 2 * pt["restarts"]
print(rs["class"], t1 - t0, rs["restarts"], rs["auroc"]["gradcon"], rs_epochs,
      t2 - t1, pt["restarts"], pt["auroc"], pt_epochs)
EOF
)
    rows="$rows$row
"
    echo "$row" | awk '{ printf "| %d | %.1f | %d | %.4f | %.1f | %d | %.4f |\n", $1, $2, $3, $4, $6, $7, $8 }'
done
printf '%s' "$rows" | awk '{
    rs += $2; rr += $3; ra += $4; re += $5; pt += $6; pr += $7; pa += $8; pe += $9; n++ }
END {
    printf "| all | %.1f | %d | %.4f (mean) | %.1f | %d | %.4f (mean) |\n", rs, rr, ra / n, pt, pr, pa / n
    printf "\nWall time %.1f s against %.1f s: %.3fx. Epochs trained %d against %d: %.2f against %.2f s per epoch, %.3fx.\n",
        rs, pt, rs / pt, re, pe, rs / re, pt / pe, (rs / re) / (pt / pe)
}'
