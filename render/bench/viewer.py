"""`radiant bench viewer`: what one interactive step of the viewer costs, per bundled scene and view.

Rows (one JSON line each): the 1-spp colour pass (fused kernel), the 1-spp AOV pass the viewer uses (torch
integrator, primary hit only, no colour film, box filter) and, side by side as the anchor, the same AOV from a full torch path-tracing pass
(what `radiant render --aov` pays); plus the quarter-resolution preview pass after a camera move.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..integrators import SceneData
from ..progressive import Accumulator
from ..scene import load_scene
from ..scene.types import RFilter
from . import emit

ROOT = Path(__file__).resolve().parents[2]
SCENES = {"cbox": ("scenes/cbox/cbox.xml", {}), "spheres": ("scenes/spheres/spheres.xml", {}),
          "lights": ("scenes/lights/lights.xml", {"width": "320", "height": "240"})}


def _time_pass(acc: Accumulator, repeats: int) -> float:
    """Best seconds of one 1-spp pass over `repeats` (after a warm-up pass)."""
    acc.add(1)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        acc.add(1)
        best = min(best, time.perf_counter() - t0)
    return best


def run_viewer_bench(out: Path | None = None, scenes: list[str] | None = None, repeats: int = 5,
                     device: str = "cpu") -> list[dict]:
    rows = []
    for name in scenes or list(SCENES):
        path, params = SCENES[name]
        scene = load_scene(ROOT / path, params=params)
        sd = SceneData(scene, device)
        color = Accumulator(scene, device=device, sd=sd)
        w, h = color.width, color.height
        cases = [("color", color, None),
                 ("color_preview_quarter_res", Accumulator(scene, device=device, sd=sd, width=max(1, w // 4),
                                                           height=max(1, h // 4)), None)]
        for aov in ("albedo", "normal", "depth"):
            cases.append((f"aov_{aov}", Accumulator(scene, device=device, sd=sd, integrator="torch", max_depth=1,
                                                    aovs=(aov,), color=False, rfilter=RFilter(type="box")), aov))
        cases.append(("aov_depth_full_torch_pass_anchor", Accumulator(scene, device=device, sd=sd,
                                                                      integrator="torch", aovs=("depth",)), "depth"))
        for case, acc, _ in cases:
            seconds = _time_pass(acc, repeats)
            row = {"bench": "viewer", "scene": name, "case": case, "device": device,
                   "integrator": "fused" if acc.fused else "torch", "width": acc.width, "height": acc.height,
                   "ms_per_pass": round(seconds * 1e3, 2),
                   "msamples_per_s": round(acc.width * acc.height / seconds / 1e6, 3),
                   "passes_per_s": round(1.0 / seconds, 1)}
            emit(row, out)
            rows.append(row)
    return rows
