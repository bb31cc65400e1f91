"""Reference images from an independent renderer: Mitsuba 3 (scalar_rgb) at high spp.

Run by `make refs` (or `radiant regress --update-refs`). Writes tests/render/refs/*.exr (the bundled scenes) and
tests/regression/refs/*.exr (the regression scenes), each folder with a manifest.json recording the Mitsuba
version, variant, seed and spp. Arguments: names of cases to redo (default: all).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "render" / "refs"
REGRESSION = ROOT / "tests" / "regression"
REGRESSION_SPP = 2048
CASES = [
    ("cbox", "scenes/cbox/cbox.xml", {"res": "64"}, 4096),
    ("spheres", "scenes/spheres/spheres.xml", {"width": "80", "height": "45"}, 4096),
    ("lights", "scenes/lights/lights.xml", {"width": "96", "height": "72"}, 4096),
]


def render_cases(cases, out_dir: Path, only: set[str]) -> list[str]:
    """Renders (name, scene, params, spp) cases with Mitsuba into out_dir; returns the names written."""
    import mitsuba as mi

    sys.path.insert(0, str(ROOT))
    from render.core.image import write_exr

    mi.set_variant("scalar_rgb")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"cases": []}
    manifest.update({"mitsuba": mi.__version__, "variant": "scalar_rgb", "seed": 0})
    by_name = {c["name"]: c for c in manifest["cases"]}
    written = []
    for name, scene, params, spp in cases:
        if only and name not in only:
            continue
        img = np.array(mi.render(mi.load_file(str(ROOT / scene), **params), spp=spp, seed=0), dtype=np.float32)
        write_exr(out_dir / f"{name}.exr", {"RGB": img}, force=True)
        by_name[name] = {"name": name, "scene": scene, "params": params, "spp": spp}
        written.append(name)
        print(f"{name}: {img.shape[1]}x{img.shape[0]} at {spp} spp, mean {img.mean(axis=(0, 1)).round(5).tolist()}",
              flush=True)
    manifest["cases"] = [by_name[k] for k in sorted(by_name)]
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return written


def regression_cases():
    for path in sorted((REGRESSION / "scenes").glob("*.xml")):
        yield path.stem, str(path.relative_to(ROOT)), {}, REGRESSION_SPP


def main() -> int:
    only = set(sys.argv[1:])
    render_cases(CASES, REFS, only)
    render_cases(list(regression_cases()), REGRESSION / "refs", only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
