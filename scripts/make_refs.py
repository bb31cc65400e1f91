"""Reference images from an independent renderer: Mitsuba 3 (scalar_rgb) at high spp -> tests/render/refs/*.exr.

Run by `make refs`. Pinned: the Mitsuba version is recorded in refs/README.md; the seed is fixed. Each entry is
(name, scene, parameters, spp); tests render the same scene + parameters with Radiant and compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "render" / "refs"
CASES = [
    ("cbox", "scenes/cbox/cbox.xml", {"res": "64"}, 4096),
    ("spheres", "scenes/spheres/spheres.xml", {"width": "80", "height": "45"}, 4096),
    ("lights", "scenes/lights/lights.xml", {"width": "96", "height": "72"}, 4096),
]


def main() -> int:
    import mitsuba as mi

    sys.path.insert(0, str(ROOT))
    from render.core.image import write_exr

    mi.set_variant("scalar_rgb")
    REFS.mkdir(parents=True, exist_ok=True)
    manifest = {"mitsuba": mi.__version__, "variant": "scalar_rgb", "seed": 0, "cases": []}
    only = set(sys.argv[1:])
    for name, scene, params, spp in CASES:
        if only and name not in only:
            continue
        img = np.array(mi.render(mi.load_file(str(ROOT / scene), **params), spp=spp, seed=0), dtype=np.float32)
        write_exr(REFS / f"{name}.exr", {"RGB": img}, force=True)
        manifest["cases"].append({"name": name, "scene": scene, "params": params, "spp": spp})
        print(f"{name}: {img.shape[1]}x{img.shape[0]} at {spp} spp, mean {img.mean(axis=(0, 1)).round(5).tolist()}")
    if not only:
        (REFS / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
