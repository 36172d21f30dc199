#!/bin/sh
# One class of the one-class protocol as one task of a job array: maps the scheduler's task
# index to `gradcon protocol --classes C --shard`, passing every other argument on.
#
#   gradcon-task.sh --dataset mnist --data-dir DATA --out SHARED_DIR [OPTIONS...]
#
# The index: SLURM_ARRAY_TASK_ID (Slurm job arrays) or JOB_COMPLETION_INDEX (Kubernetes
# Indexed Jobs). It counts from GRADCON_INDEX_BASE (default 0: `--array=0-9`, or
# `completionMode: Indexed`, which counts from 0) and picks a class of GRADCON_CLASSES
# (default 0,1,...,9). GRADCON is the gradcon binary (default: `gradcon` on the PATH).
# When every task is done, `gradcon merge SHARED_DIR` writes SHARED_DIR/results.json.
set -eu

fail() {
    echo "gradcon-task: $*" >&2
    exit 2
}

slurm=${SLURM_ARRAY_TASK_ID:-}
k8s=${JOB_COMPLETION_INDEX:-}
if [ -n "$slurm" ] && [ -n "$k8s" ] && [ "$slurm" != "$k8s" ]; then
    fail "SLURM_ARRAY_TASK_ID ($slurm) and JOB_COMPLETION_INDEX ($k8s) disagree"
fi
index=${slurm:-$k8s}
[ -n "$index" ] || fail "no task index: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX must be set"
base=${GRADCON_INDEX_BASE:-0}
for n in "$index" "$base"; do
    case "$n" in
        '' | *[!0-9]*) fail "the task index and GRADCON_INDEX_BASE must be whole numbers (got '$index', '$base')" ;;
    esac
done
for arg in "$@"; do
    case "$arg" in
        --classes | --classes=*) fail "--classes comes from the task index; do not pass it" ;;
    esac
done
classes=${GRADCON_CLASSES:-0,1,2,3,4,5,6,7,8,9}
count=$(printf '%s\n' "$classes" | tr ',' '\n' | grep -c .)
[ "$index" -ge "$base" ] || fail "task index $index is below GRADCON_INDEX_BASE $base"
position=$((index - base + 1))
class=$(printf '%s\n' "$classes" | tr ',' '\n' | sed -n "${position}p")
[ -n "$class" ] || fail "task index $index picks class number $position, past the $count classes of GRADCON_CLASSES ($classes)"
exec "${GRADCON:-gradcon}" protocol --classes "$class" --shard "$@"
