"""`radiant bench layered`: eval throughput of the layered reference (the cost neural materials replace), per bundled
material and walk count, beside the analytic roughplastic kernel (the anchor) on the same batch, same run.

One JSON line per (material, n_samples): ms per 1M evaluations (best of `repeats`, wall and CPU time), the batch,
the device. `eval_ms_per_million` is also what `radiant bench neural` compares its decoder against.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from ..bsdfs import bsdf_eval, pack_bsdf
from ..core.warp import square_to_cosine_hemisphere
from ..errors import UserError
from ..integrators import SceneData
from ..integrators.scene_data import DEFERRED_TYPE
from ..scene import load_scene
from . import emit
from .rays import _best_times

ROOT = Path(__file__).resolve().parents[2]
MATERIALS_SCENE = ROOT / "scenes" / "materials" / "materials.xml"


def random_queries(n: int, device, seed: int = 0):
    """(uv, wi, wo): uniform uvs, cosine-distributed directions in the upper hemisphere."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 6, generator=g)
    return (u[:, :2].to(device), square_to_cosine_hemisphere(u[:, 2:4]).to(device),
            square_to_cosine_hemisphere(u[:, 4:6]).to(device))


def scene_torch_materials(sd: SceneData) -> dict[str, object]:
    """{bsdf id (or type): TorchBSDF} of a compiled scene, in shape order."""
    out = {}
    for i, s in enumerate(sd.scene.shapes):
        k = int(sd.bsdf_rows[sd.bsdf_of_shape[i], 0]) - DEFERRED_TYPE
        if k >= 0:
            inner = s.bsdf.nested[0] if s.bsdf.type == "twosided" else s.bsdf
            out.setdefault(s.bsdf.id or inner.id or inner.type, sd.torch_bsdfs[k])
    return out


def eval_ms_per_million(bsdf, n: int, n_samples: int, device="cpu", repeats: int = 3) -> tuple[float, float]:
    """(wall, CPU) milliseconds per 1M evaluations of a LayeredBSDF at n_samples walks each."""
    uv, wi, wo = random_queries(n, device)

    def run():
        bsdf.eval(uv, wi, wo, n_samples=n_samples)
        if device != "cpu":
            torch.cuda.synchronize()

    wall, cpu = _best_times(run, repeats)
    return wall * 1e3 * 1e6 / n, cpu * 1e3 * 1e6 / n


def run_layered_bench(out: Path | None = None, quick: bool = False, device: str = "cpu", batch: int = 0,
                      samples=(1, 64), repeats: int = 3) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: torch reports no CUDA device on this machine")
    sd = SceneData(load_scene(MATERIALS_SCENE), device)
    names = {id(s.bsdf): s.bsdf.id for s in sd.scene.shapes}
    anchor = pack_bsdf("roughplastic", distribution="ggx", alpha=0.1, diffuse_reflectance=[0.5, 0.3, 0.2])[None]
    anchor = anchor.to(device)
    for name, bsdf in scene_torch_materials(sd).items():
        for n_samples in samples:
            n = batch or (4096 if quick else (1 << 16 if n_samples > 8 else 1 << 18))
            wall, cpu = eval_ms_per_million(bsdf, n, n_samples, device, repeats)
            _, wi, wo = random_queries(n, device)
            a_wall, _ = _best_times(lambda: bsdf_eval(anchor, wi, wo), repeats)
            a_ms = a_wall * 1e9 / n
            emit({"bench": "layered", "material": name, "n_samples": n_samples, "max_depth": bsdf.max_depth,
                  "batch": n, "device": device, "eval_ms_per_million": round(wall, 1),
                  "eval_cpu_ms_per_million": round(cpu, 1), "anchor": "roughplastic kernel",
                  "anchor_ms_per_million": round(a_ms, 2), "slowdown_vs_anchor": round(wall / max(a_ms, 1e-9), 1),
                  "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}, out)
