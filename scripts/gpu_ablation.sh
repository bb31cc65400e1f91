#!/usr/bin/env bash
# Reconstruction ablation on a lent GPU machine, in one call: build the kernels with CUDA, render the room dataset,
# then run every (config, variant, seed) of the list below at once on the GPU (`radiant bench recon --jobs`), all
# for the same MINUTES of wall time (they share the GPU and the cores, so equal time stays equal), each evaluated
# against the dataset's gt (F-scores, chamfer, thin-part recall). JSON lines to OUT/ablation.jsonl.
# Wheels for missing pure-Python packages travel in .whl/ as for gpu_check.sh. Session 8 (H200): 12 runs at once,
# 6 minutes, ~2900 steps each (8 it/s each); 4 runs at once, 3.2 minutes, ~3550 steps each.
set -u -o pipefail
OUT=${OUT:-out/gpu-ablation}
MINUTES=${MINUTES:-6}
SEEDS=${SEEDS:-0,1}
mkdir -p "$OUT"
source "$(dirname "$0")/gpu_env.sh"
make_room "$OUT/dataset.log" &
ds=$!
build_kernels "$OUT/build.log" || exit 1
wait $ds || { stamp "make-dataset failed"; exit 1; }
stamp "dataset and kernels ready"
# name | variants | extra config lines
CONFIGS=${CONFIGS:-"base|full,uniform,no_uncertainty|
plain|full|prior_importance: false"}
pids=()
while IFS='|' read -r name variants extra; do
    [ -z "$name" ] && continue
    printf 'device: cuda\nthreads: 1\n%b\n' "$extra" > "$OUT/$name.yaml"
    n=$(( $(echo "$variants" | tr ',' '\n' | wc -l) * $(echo "$SEEDS" | tr ',' '\n' | wc -l) ))
    $R bench recon --data /tmp/room --variants "$variants" --seeds "$SEEDS" --minutes "$MINUTES" --jobs "$n" \
        --config "$OUT/$name.yaml" --work "/tmp/abl/$name" --out "$OUT/$name.jsonl" > "$OUT/$name.log" 2>&1 &
    pids+=($!)
done <<< "$CONFIGS"
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
stamp "runs done, rc $rc"
for f in "$OUT"/*.jsonl; do recon_summary "$f" "$(basename "$f" .jsonl)"; done
exit $rc
