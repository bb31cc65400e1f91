#!/usr/bin/env bash
# make nerfstudio-check: the radiant-sdf nerfstudio plugin end to end, in its own venv.
#   1. $NS_VENV (default .venv-nerfstudio): python3.11 venv with nerfstudio==$NS_PIN and the torch it runs on
#      (PyPI's CUDA build: PyPI torchvision links libtorch_cuda; our CPU pin is kept out), radiant --no-deps.
#   2. a small dataset: radiant make-dataset on the bundled room ($NS_VIEWS views, 160x120, noisy priors).
#   3. ns-train radiant-sdf for $NS_ITERS iterations (sdfstudio-data + mono priors; CPU, or GPU when present),
#      mesh by our exporter, `radiant evaluate` against gt.ply.
#   4. radiant reconstruct --iters $NS_ITERS on the same files, same evaluation.
#   5. exit 1 unless both F@5cm > 0.3 and the plugin's is within 10% of radiant reconstruct's.
set -euo pipefail
cd "$(dirname "$0")/.."
NS_VENV=${NS_VENV:-.venv-nerfstudio}
NS_PIN=${NS_PIN:-nerfstudio==1.1.5}
NS_TORCH=${NS_TORCH:-torch==2.13.0}
NS_ITERS=${NS_ITERS:-400}
NS_VIEWS=${NS_VIEWS:-30}
OUT=${NS_OUT:-out/nerfstudio-check}
PY=$NS_VENV/bin/python
T0=$(date +%s)
stamp() { echo "[nerfstudio-check +$(( $(date +%s) - T0 ))s] $*"; }

if [ ! -x "$NS_VENV/bin/ns-train" ]; then
    stamp "creating $NS_VENV ($NS_PIN; several GB, ~10+ minutes)"
    python3.11 -m venv "$NS_VENV"
    env -u PIP_FIND_LINKS "$PY" -m pip install -q "$NS_TORCH"
    "$PY" -m pip install -q "$NS_PIN"
fi
# radiant itself without its deps (its torch pin stays out); the few small core deps nerfstudio does not bring.
"$PY" -m pip install -q --no-deps -e .
"$PY" -c "import typer, OpenEXR, safetensors" 2>/dev/null || "$PY" -m pip install -q typer openexr safetensors
"$PY" -c "import nerfstudio, importlib.metadata as m; print('nerfstudio', m.version('nerfstudio'), 'torch', __import__('torch').__version__)"

DEVICE=cpu
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then DEVICE=cuda; fi
RADIANT=("$PY" -m render.cli)
mkdir -p "$OUT"
rm -f "$OUT/ns-eval.json" "$OUT/radiant-eval.json"
DATA=$OUT/room-data
stamp "make-dataset -> $DATA"
"${RADIANT[@]}" make-dataset scenes/room/room.xml --inside --views "$NS_VIEWS" --width 160 --height 120 --spp 4 \
    --out "$DATA" --force

stamp "ns-train radiant-sdf, $NS_ITERS iterations on $DEVICE"
rm -rf "$OUT/ns"
"$NS_VENV/bin/ns-train" radiant-sdf --machine.device-type "$DEVICE" --vis tensorboard \
    --max-num-iterations "$NS_ITERS" --steps-per-save "$NS_ITERS" --output-dir "$OUT/ns" \
    --experiment-name room --timestamp check --steps-per-eval-batch 1000000 --steps-per-eval-image 1000000 \
    --steps-per-eval-all-images 1000000 \
    sdfstudio-data --data "$DATA" --include-mono-prior True > "$OUT/ns-train.log" 2>&1 \
    || { tail -30 "$OUT/ns-train.log"; exit 1; }
CONFIG=$OUT/ns/room/radiant-sdf/check/config.yml
stamp "export -> $OUT/ns-mesh.ply"
"$PY" -m render.nerfstudio_plugin.export --load-config "$CONFIG" --out "$OUT/ns-mesh.ply" --force
"${RADIANT[@]}" evaluate "$OUT/ns-mesh.ply" "$DATA/gt.ply" --data "$DATA" --json "$OUT/ns-eval.json" --points 100000 > /dev/null

stamp "radiant reconstruct --iters $NS_ITERS"
"${RADIANT[@]}" reconstruct "$DATA" --out "$OUT/radiant-run" --iters "$NS_ITERS" --device "$DEVICE" --quiet --force
"${RADIANT[@]}" evaluate "$OUT/radiant-run/mesh.ply" "$DATA/gt.ply" --data "$DATA" --json "$OUT/radiant-eval.json" --points 100000 > /dev/null

stamp "compare"
"$PY" - "$OUT/ns-eval.json" "$OUT/radiant-eval.json" "$NS_ITERS" <<'PYEOF'
import json, sys
ns, ours, iters = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
a, b = ns["fscore"]["0.05"], ours["fscore"]["0.05"]
rel = abs(a - b) / max(b, 1e-9)
print(f"F@5cm at {iters} iterations: ns-train radiant-sdf {a:.3f}, radiant reconstruct {b:.3f} (relative difference {rel:.1%})")
ok = a > 0.3 and b > 0.3 and rel <= 0.10
print("nerfstudio-check:", "PASS" if ok else "FAIL (needs both > 0.3 and within 10%)")
sys.exit(0 if ok else 1)
PYEOF
stamp "done"
