"""`radiant bench cluster`: distributed render throughput on a local Ray cluster with 1 and 2 workers (scaling
efficiency), per-unit overhead and time to first result, beside the single-process fused render (the anchor)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from . import emit
from ..errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "scenes" / "cbox" / "cbox.xml"


def run_cluster_bench(out: Path | None = None, quick: bool = False, size: int | None = None, spp: int | None = None,
                      workers: tuple[int, ...] = (1, 2)) -> list[dict]:
    from ..cluster.ray_backend import render_frames_on_cluster, require_ray
    from ..cluster.tiles import RenderJob
    from ..render import render_loaded
    from ..scene import load_scene

    require_ray()
    size = size or (128 if quick else 512)
    spp = spp or (32 if quick else 256)
    if size <= 0 or spp <= 0:
        raise UserError("--size, --spp: expected positive numbers")
    scene = load_scene(SCENE)
    job = RenderJob(spp=spp, seed=0, width=size, height=size)
    rows = []
    # Anchor: the same render in this process (fused kernel, one thread per worker-equivalent), no Ray at all.
    render_loaded(scene, spp=1, width=size, height=size, integrator="fused")  # kernel build, warm caches
    threads = torch.get_num_threads()
    for k in workers:
        torch.set_num_threads(k)
        t0 = time.perf_counter()
        render_loaded(scene, spp=spp, width=size, height=size, integrator="fused")
        secs = time.perf_counter() - t0
        row = {"bench": "cluster", "mode": f"single process, {k} thread(s)", "workers": k, "size": size, "spp": spp,
               "seconds": round(secs, 3), "msamples_s": round(size * size * spp / secs / 1e6, 3)}
        emit(row, out)
        rows.append(row)
    torch.set_num_threads(threads)
    base = None
    for k in workers:
        t0 = time.perf_counter()
        _, stats = render_frames_on_cluster([scene], job, f"local:{k}", warm=True)
        total = time.perf_counter() - t0
        busy = sum(stats.unit_seconds)
        per_unit = busy / max(stats.units, 1)
        overhead = max(0.0, stats.workers * stats.seconds - busy) / max(stats.units, 1)
        row = {"bench": "cluster", "mode": "ray local", "workers": k, "size": size, "spp": spp,
               "units": stats.units, "seconds": round(stats.seconds, 3),
               "msamples_s": round(stats.samples / stats.seconds / 1e6, 3),
               "seconds_with_cluster_start": round(total, 3), "worker_start_s": round(stats.start_s, 3),
               "first_result_s": round(stats.first_result_s, 3), "unit_s": round(per_unit, 3),
               "overhead_per_unit_s": round(overhead, 3), "overhead_fraction": round(overhead / max(per_unit, 1e-9), 4)}
        if base is None:
            base = stats.seconds
        else:
            row["speedup_vs_1_worker"] = round(base / stats.seconds, 3)
            row["efficiency"] = round(base / stats.seconds / k, 3)
        emit(row, out)
        rows.append(row)
    return rows
