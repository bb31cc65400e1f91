"""`radiant bench convergence`: relMSE against a high-spp Mitsuba reference as spp doubles, ours beside Mitsuba.

An unbiased renderer's relMSE falls as 1/spp (slope -1 on log-log axes) down to the reference's own noise; a
bias shows as a floor. One JSON line per (renderer, spp).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..core.image import read_exr_channels, rel_mse
from ..render import render_scene
from . import emit

ROOT = Path(__file__).resolve().parents[2]


def run_convergence_bench(out: Path | None = None, scene: str = "cbox", max_spp: int = 64,
                          with_mitsuba: bool = True) -> list[dict]:
    manifest = json.loads((ROOT / "tests" / "render" / "refs" / "manifest.json").read_text())
    case = next(c for c in manifest["cases"] if c["name"] == scene)
    ref = read_exr_channels(ROOT / "tests" / "render" / "refs" / f"{scene}.exr")["RGB"]
    scene_path = ROOT / case["scene"]
    mi = None
    if with_mitsuba:
        try:
            import mitsuba as mi

            mi.set_variant("scalar_rgb")
            mi_scene = mi.load_file(str(scene_path), **case["params"])
        except Exception:
            mi = None
    rows = []
    spp = 1
    while spp <= max_spp:
        t0 = time.perf_counter()
        ours = render_scene(scene_path, spp=spp, seed=11, params=case["params"]).rgb
        rows.append({"bench": "convergence", "scene": scene, "renderer": "radiant", "spp": spp,
                     "relmse": rel_mse(ours, ref), "seconds": round(time.perf_counter() - t0, 3),
                     "reference_spp": case["spp"]})
        if mi is not None:
            t0 = time.perf_counter()
            theirs = np.array(mi.render(mi_scene, spp=spp, seed=11))
            rows.append({"bench": "convergence", "scene": scene, "renderer": f"mitsuba {mi.__version__} scalar_rgb",
                         "spp": spp, "relmse": rel_mse(theirs, ref), "seconds": round(time.perf_counter() - t0, 3),
                         "reference_spp": case["spp"]})
        for row in rows[-2:] if mi is not None else rows[-1:]:
            emit(row, out)
        spp *= 2
    return rows
