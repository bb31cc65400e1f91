# Sourced by the scripts for a lent GPU machine (gpu_check.sh, gpu_ablation.sh, gpu_session.sh), which brings its own
# CUDA torch and no package registry: environment for the kernel build, the missing pure-Python packages from the
# wheels carried in .whl/ (trimesh, openexr, flip-evaluator), $R (the CLI), and the steps the scripts share:
# stamp (elapsed-seconds log lines), build_kernels, make_room, recon_summary.
export PYTHONUNBUFFERED=1 RADIANT_CACHE=${RADIANT_CACHE:-/tmp/radiant-cache} MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(python3 -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
R="python3 -m render.cli"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
# Builds (or loads from RADIANT_CACHE) the kernels, logging to LOG; prints the log's last line, its tail on failure.
# Environment such as RADIANT_EXTRA_CFLAGS / RADIANT_NO_CUDA picks the build (they are part of the cache key).
build_kernels() {
    python3 -c "from render.kernels.build import load; print('with_cuda', load().with_cuda)" > "$1" 2>&1 \
        || { tail -30 "$1"; return 1; }
    tail -1 "$1"
}
# Renders the bundled room scene's dataset (posed images, priors, gt mesh) into /tmp/room, logging to LOG.
make_room() {
    $R make-dataset scenes/room/room.xml --out /tmp/room --force > "$1" 2>&1 || { tail -5 "$1"; return 1; }
}
# One line per run of a `radiant bench recon` JSON-lines file: recon_summary FILE [LABEL].
recon_summary() {
    python3 - "$1" "${2:-}" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(*[x for x in (sys.argv[2],) if x], r.get("variant"), "seed", r.get("seed"), "steps", r.get("steps"),
          "F5 %.3f F2 %.3f thin5 %s objects5 %s chamfer %s" % (r.get("f_score_5cm") or 0, r.get("f_score_2cm") or 0,
          r.get("thin_recall_5cm"), r.get("objects_recall_5cm"), r.get("chamfer")), r.get("error", ""))
PY
}
# One vCPU per physical core (the first thread of each core's siblings), as a space-separated list.
physical_cores() {
    cat /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list 2>/dev/null \
        | sed 's/[-,].*//' | sort -nu | tr '\n' ' '
}
