#!/usr/bin/env bash
# One call on a lent GPU machine (16 cores) for the two open targets, side by side:
#   GPU:       the reconstruction ablation (VARIANTS x SEEDS, all at once on the GPU for MINUTES each, cores 0-11,
#              `radiant bench recon --jobs`: F@5cm / F@2cm / chamfer / thin and object recall) after the CUDA-vs-CPU
#              kernel tests;
#   CPU 12-15: the lane tests (16-wide on AVX-512 CPUs) and `radiant bench render --threads 1` against Mitsuba 3
#              llvm_ad_rgb, per CPU-second, on that machine's CPU (the issue's AVX-512 re-timing), on core 14; on
#              core 15 the same bench with the build's 8-lane AVX2 code (RADIANT_EXTRA_CFLAGS=-mno-avx512f) where
#              the CPU has AVX-512, to see which lane width that CPU prefers;
#   then, if time is left (ELAPSED_MAX), `radiant bench render --device cuda` (CUDA Msamples/s).
# Mitsuba and its LLVM travel as .dev/mi.tar.xz (scripts/pack_mitsuba_llvm.sh, ~43 MB); the pure-Python wheels as
# for gpu_check.sh (.whl/). Call: run(command="bash scripts/gpu_session.sh", carry=[".whl", ".dev"]).
# At most 8 files come back from $OUT, so logs are few. Session 15 (H200, Emerald Rapids Xeon): 500 s, with the render bench
# at --repeats 5 --ref-spp 1024 cut off after cbox (that CPU is ~3x slower per core than the 2-core AMD), hence 3 / 256.
set -u -o pipefail
OUT=${OUT:-out/gpu-session}
MINUTES=${MINUTES:-4}
SEEDS=${SEEDS:-0,1}
VARIANTS=${VARIANTS:-full,uniform,no_uncertainty}
ELAPSED_MAX=${ELAPSED_MAX:-420}
mkdir -p "$OUT"
source "$(dirname "$0")/gpu_env.sh"
if [ -f .dev/mi.tar.xz ]; then
    mkdir -p /tmp/mi && tar xJf .dev/mi.tar.xz -C /tmp/mi
    export PYTHONPATH=$PYTHONPATH:/tmp/mi LD_LIBRARY_PATH=/tmp/mi/stubllvm:${LD_LIBRARY_PATH:-} \
        DRJIT_LIBLLVM_PATH=/tmp/mi/stubllvm/libLLVM.so.19.1
fi
nvidia-smi -L; lscpu | grep -E "^(Model|Thread|Core|Hypervisor)"
avx512=$(grep -o 'avx512[a-z0-9_]*' /proc/cpuinfo | sort -u | tr '\n' ' '); echo "avx512: $avx512"
stamp "build"
if [ -n "$avx512" ]; then  # the 8-lane build, CPU only, beside the main one
    RADIANT_EXTRA_CFLAGS=-mno-avx512f RADIANT_NO_CUDA=1 python3 -c "from render.kernels.build import load; load()" \
        > /tmp/build8.log 2>&1 &
    b8=$!
fi
python3 -c "from render.kernels.build import load; print('with_cuda', load().with_cuda)" > "$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log"; exit 1; }
tail -1 "$OUT/build.log"
stamp "make-dataset (CPU) beside the CUDA tests"
$R make-dataset scenes/room/room.xml --out /tmp/room --force > /tmp/dataset.log 2>&1 &
ds=$!
timeout 180 python3 -m pytest -q -p no:cacheprovider -k cuda tests/kernels/test_bvh.py tests/kernels/test_grid.py \
    tests/kernels/test_sdf.py tests/kernels/test_hashgrid.py tests/render/test_fused.py > "$OUT/tests.log" 2>&1
stamp "CUDA tests rc $?: $(tail -1 "$OUT/tests.log")"
wait $ds || { stamp "make-dataset failed"; tail -5 /tmp/dataset.log; exit 1; }
stamp "dataset ready"

[ -n "${b8:-}" ] && { wait "$b8" || tail -5 /tmp/build8.log; }
(   # CPU side, cores 12-15: lane tests, then the render bench against Mitsuba llvm, per CPU-second
    taskset -c 12-15 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_lanes.py \
        tests/render/test_lanes_path.py > "$OUT/lanes.log" 2>&1
    echo "lanes rc $?" >> "$OUT/lanes.log"
    bench=(bench render --repeats 3 --ref-spp 256 --torch-spp 1 --threads 1)
    if [ -n "$avx512" ]; then
        RADIANT_EXTRA_CFLAGS=-mno-avx512f RADIANT_NO_CUDA=1 taskset -c 15 timeout 400 $R "${bench[@]}" \
            --out "$OUT/render8.jsonl" > /tmp/render8.log 2>&1 &
    fi
    taskset -c 14 timeout 400 $R "${bench[@]}" --out "$OUT/render.jsonl" > /tmp/render_cpu.log 2>&1
    echo "render bench rc $?" >> "$OUT/lanes.log"; wait; tail -3 /tmp/render_cpu.log >> "$OUT/lanes.log"
) &
cpu=$!

printf 'device: cuda\nthreads: 1\n' > /tmp/gpu.yaml
n=$(( $(echo "$VARIANTS" | tr ',' '\n' | wc -l) * $(echo "$SEEDS" | tr ',' '\n' | wc -l) ))
stamp "recon: $n runs at once, $MINUTES min each"
taskset -c 0-11 $R bench recon --data /tmp/room --variants "$VARIANTS" --seeds "$SEEDS" --minutes "$MINUTES" \
    --jobs "$n" --config /tmp/gpu.yaml --work /tmp/abl --out "$OUT/recon.jsonl" > "$OUT/recon.log" 2>&1
stamp "recon rc $?"
recon_summary "$OUT/recon.jsonl"
wait $cpu
stamp "CPU side done"; tail -8 "$OUT/lanes.log"
left=$(( ELAPSED_MAX - $(date +%s) + t0 ))
if [ "$left" -gt 60 ]; then
    stamp "bench render --device cuda (${left} s)"
    timeout "$left" $R bench render --device cuda --repeats 3 --ref-spp 256 --torch-spp 1 --threads 1 \
        --out "$OUT/render_cuda.jsonl" > /tmp/render_cuda.log 2>&1
    stamp "cuda bench rc $?"; tail -3 /tmp/render_cuda.log
fi
stamp "end"
