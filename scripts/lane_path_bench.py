"""Lane path loop vs the scalar loop (RADIANT_SCALAR_PATHS=1), same build, interleaved: per scene the median over
repeats of the fused CPU kernel's trace time (no film splat) and the ratio. With a third argument VAR=a,b,...:
the settings of that environment variable instead ("default": unset), each against the first, e.g.
RADIANT_PACKET_RAYS=-1,default (the lane loop without and with ray packets).
Usage: lane_path_bench.py [repeats] [threads] [VAR=a,b,...]"""

import os
import statistics
import sys
import time
from pathlib import Path

import torch

from render.integrators import RenderSettings, SceneData
from render.integrators.fused import FusedIntegrator
from render.scene import load_scene

ROOT = Path(__file__).resolve().parents[1]
SCENES = (("cbox", "scenes/cbox/cbox.xml", {"res": "256"}),
          ("spheres", "scenes/spheres/spheres.xml", {"width": "320", "height": "180"}),
          ("lights", "scenes/lights/lights.xml", {"width": "192", "height": "144"}))

repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
if len(sys.argv) > 2:
    torch.set_num_threads(int(sys.argv[2]))
if len(sys.argv) > 3:
    var, _, values = sys.argv[3].partition("=")
    modes = values.split(",")
else:
    var, modes = "RADIANT_SCALAR_PATHS", ["1", "0"]


def set_mode(mode):
    if mode == "default":
        os.environ.pop(var, None)
    else:
        os.environ[var] = mode


for name, path, params in SCENES:
    sd = SceneData(load_scene(ROOT / path, params=params))
    integ = FusedIntegrator(sd, RenderSettings(spp=8))
    integ.trace(0, 1)
    times = {m: [] for m in modes}
    for r in range(repeats):
        for mode in modes:
            set_mode(mode)
            t0 = time.perf_counter()
            integ.trace(0, 8)
            times[mode].append(time.perf_counter() - t0)
    base = times[modes[0]]
    if var == "RADIANT_SCALAR_PATHS" and len(sys.argv) <= 3:
        s, l = statistics.median(times["1"]), statistics.median(times["0"])
        print(f"{name}: scalar {s * 1e3:.0f} ms lanes {l * 1e3:.0f} ms speedup {s / l:.2f}x "
              f"(pairwise median {statistics.median(a / b for a, b in zip(times['1'], times['0'])):.2f}x)", flush=True)
        continue
    parts = [f"{var}={m}: {statistics.median(times[m]) * 1e3:.0f} ms, "
             f"{statistics.median(a / b for a, b in zip(base, times[m])):.2f}x" for m in modes]
    print(f"{name}: " + "; ".join(parts) + f" (pairwise median speedup over {var}={modes[0]})", flush=True)
