#!/usr/bin/env bash
# One call on a lent GPU machine for issue 4's open target: the path tracer's speed against Mitsuba 3 llvm_ad_rgb per
# CPU-second on that machine's CPU (an AVX-512 Xeon so far, where both renderers run 16 lanes):
#   1. builds: the main one (CUDA + the CPU's widest lanes) and, on an AVX-512 CPU, two more (CPU only) to see which
#      widths that CPU prefers: "pk8", 16 lanes traced as two 8-ray packets (-DRADIANT_PACKET_WIDTH=8), and "avx2",
#      the 8-lane AVX2 code (-mno-avx512f);
#   2. the CUDA-vs-CPU kernel tests and the lane tests (16-wide on AVX-512);
#   3. `radiant bench render --threads 1 --scene S` for every scene x build at once, each pinned to its own physical
#      core (or vCPU, where there are more processes than cores; each process times ours and Mitsuba interleaved, so
#      a ratio compares the two under the same load), JSON lines in OUT/render-{main,pk8,avx2}.jsonl, a table of the
#      ratios; beside them, per build, scripts/lane_path_bench.py's sweep of RADIANT_PACKET_RAYS (when a packet hands
#      its rays to single-ray traversal) in OUT/packet-rays-{build}.log;
#   4. if time is left (ELAPSED_MAX), `radiant bench render --device cuda` (CUDA Msamples/s);
#   5. RECON=1 adds issue 6's reconstruction ablation on the GPU (VARIANTS x SEEDS for MINUTES each, all at once,
#      beside the CPU benches, on the cores they leave).
# Mitsuba and its LLVM travel as .dev/mi.tar.xz (scripts/pack_mitsuba_llvm.sh, ~43 MB); the pure-Python wheels as
# for gpu_check.sh (.whl/). Call: run(command="bash scripts/gpu_session.sh", carry=[".whl", ".dev"], timeout_s=560).
# Session 15 (H200 host, Emerald Rapids Xeon, ~3x slower per core than the 2-core AMD): the whole render bench in one
# process at --repeats 3 --ref-spp 256 timed only cbox within 400 s; hence one process per scene here.
set -u -o pipefail
OUT=${OUT:-out/gpu-session}
SCENES=${SCENES:-cbox spheres lights}
BENCH=${BENCH:---repeats 3 --ref-spp 256 --torch-spp 1 --threads 1}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-330}
ELAPSED_MAX=${ELAPSED_MAX:-480}
RECON=${RECON:-0} MINUTES=${MINUTES:-4} SEEDS=${SEEDS:-0,1} VARIANTS=${VARIANTS:-full,uniform,no_uncertainty}
mkdir -p "$OUT"
source "$(dirname "$0")/gpu_env.sh"
if [ -f .dev/mi.tar.xz ]; then
    mkdir -p /tmp/mi && tar xJf .dev/mi.tar.xz -C /tmp/mi
    export PYTHONPATH=$PYTHONPATH:/tmp/mi LD_LIBRARY_PATH=/tmp/mi/stubllvm:${LD_LIBRARY_PATH:-} \
        DRJIT_LIBLLVM_PATH=/tmp/mi/stubllvm/libLLVM.so.19.1
fi
nvidia-smi -L 2>/dev/null; lscpu | grep -E "^(Model name|Thread|Core|Socket|Hypervisor)"
cores=($(physical_cores)); echo "physical cores (first vCPU of each): ${cores[*]}"
avx512=$(grep -o 'avx512[a-z0-9_]*' /proc/cpuinfo | sort -u | tr '\n' ' '); echo "avx512: $avx512"
widths="main"; [ -n "$avx512" ] && widths="main pk8 avx2"
# The environment of build W (its flags are part of the kernels' cache key).
build_env() {
    case $1 in
        pk8) echo RADIANT_EXTRA_CFLAGS=-DRADIANT_PACKET_WIDTH=8 RADIANT_NO_CUDA=1 ;;
        avx2) echo RADIANT_EXTRA_CFLAGS=-mno-avx512f RADIANT_NO_CUDA=1 ;;
    esac
}
stamp "build: $widths"
bpids=()
for w in $widths; do
    [ "$w" = main ] && continue
    ( export $(build_env "$w"); build_kernels "/tmp/build-$w.log" ) &
    bpids+=($!)
done
build_kernels "$OUT/build.log" || exit 1
for p in "${bpids[@]}"; do wait "$p" || exit 1; done
stamp "tests: CUDA vs CPU, lanes"
timeout 180 python3 -m pytest -q -p no:cacheprovider -k cuda tests/kernels/test_bvh.py tests/kernels/test_grid.py \
    tests/kernels/test_sdf.py tests/kernels/test_hashgrid.py tests/render/test_fused.py > "$OUT/tests.log" 2>&1 &
tc=$!
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_lanes.py tests/render/test_lanes_path.py \
    tests/render/test_lane_widths.py \
    > "$OUT/lanes.log" 2>&1
stamp "lane tests rc $?: $(tail -1 "$OUT/lanes.log")"
wait $tc; stamp "CUDA tests rc $?: $(tail -1 "$OUT/tests.log")"

stamp "render benches: ${SCENES} x ${widths}, one core each"
i=0; pids=()
njobs=$(( $(echo $widths | wc -w) * ($(echo $SCENES | wc -w) + 1) ))
if [ "$njobs" -gt "${#cores[@]}" ]; then
    # every physical core's first vCPU, then the second threads
    cores=(${cores[*]} $(seq 0 $(( $(nproc) - 1 )) | grep -vxF -f <(printf '%s\n' "${cores[@]}")))
    echo "$njobs processes: on vCPUs ${cores[*]}"
fi
for w in $widths; do
    for s in $SCENES; do
        core=${cores[$(( i % ${#cores[@]} ))]}; i=$(( i + 1 ))
        env $(build_env "$w") taskset -c "$core" timeout "$BENCH_TIMEOUT" $R bench render $BENCH --scene "$s" \
            --out "$OUT/render-$w.jsonl" > "/tmp/render-$w-$s.log" 2>&1 &
        pids+=($!)
    done
    core=${cores[$(( i % ${#cores[@]} ))]}; i=$(( i + 1 ))
    env $(build_env "$w") taskset -c "$core" timeout "$BENCH_TIMEOUT" python3 scripts/lane_path_bench.py 3 1 \
        RADIANT_PACKET_RAYS=default,-1,1,3,7 > "$OUT/packet-rays-$w.log" 2>&1 &
    pids+=($!)
done
if [ "$RECON" = 1 ]; then
    rest=$(echo "${cores[@]:$i}" | tr ' ' ','); rest=${rest:-0}
    make_room /tmp/dataset.log && {
        printf 'device: cuda\nthreads: 1\n' > /tmp/gpu.yaml
        n=$(( $(echo "$VARIANTS" | tr ',' '\n' | wc -l) * $(echo "$SEEDS" | tr ',' '\n' | wc -l) ))
        stamp "recon: $n runs at once, $MINUTES min each, cores $rest"
        taskset -c "$rest" $R bench recon --data /tmp/room --variants "$VARIANTS" --seeds "$SEEDS" \
            --minutes "$MINUTES" --jobs "$n" --config /tmp/gpu.yaml --work /tmp/abl --out "$OUT/recon.jsonl" \
            > "$OUT/recon.log" 2>&1
        stamp "recon rc $?"; recon_summary "$OUT/recon.jsonl"
    }
fi
for p in "${pids[@]}"; do wait "$p" || echo "a render bench failed (rc $?)"; done
stamp "render benches done"
for f in /tmp/render-*.log; do grep -q '"bench"' "$f" || { echo "$f:"; tail -3 "$f"; }; done
python3 - "$OUT" <<'PY'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("render-*.jsonl")):
    for line in open(f):
        r = json.loads(line)
        print(f.stem, r["scene"], "ours / Mitsuba per CPU-s (median) %s" % r.get("fused_vs_mitsuba_cpu_median"),
              "ours %s Msamples/CPU-s, Mitsuba %s" % (r["fused_msamples_cpu_s_median"],
                                                     r.get("mitsuba_msamples_cpu_s_median")),
              "relMSE %s vs %s, load %s" % (r["relmse_fused"], r.get("relmse_mitsuba"), r["load_avg"]))
PY
left=$(( ELAPSED_MAX - $(date +%s) + t0 ))
if [ "$left" -gt 60 ] && python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    stamp "bench render --device cuda (${left} s)"
    timeout "$left" $R bench render --device cuda $BENCH --out "$OUT/render_cuda.jsonl" > /tmp/render_cuda.log 2>&1
    stamp "cuda bench rc $?"; tail -3 /tmp/render_cuda.log
fi
stamp "end"
