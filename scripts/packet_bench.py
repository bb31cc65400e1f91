"""Ray packets (bvh_wide.h packet_traverse) against single rays through the same 8-wide tree, per ray, one thread,
CPU time, medians of interleaved repeats (BVH.closest_hit / any_hit with packet=n; -1: single rays). Ray sets: on
the bundled scenes' trees, incoherent rays from random points near surfaces with random directions, shadow-like
rays from those points towards a small region (any-hit, tmax at the target), and cbox's camera rays (256x256, one
jittered ray per pixel in row order); on closed bumpy spheres of 48 to 960 triangles, incoherent rays from inside.
Usage: packet_bench.py [repeats] [switch,switch,...]   (default 5 and -1,0,2,8)"""

import math
import statistics
import sys
import time
from pathlib import Path

import torch

from render.core.procedural import bumpy_sphere
from render.integrators import SceneData
from render.kernels.build import load
from render.kernels.bvh import BVH
from render.scene import load_scene

ROOT = Path(__file__).resolve().parents[1]
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
modes = [int(m) for m in sys.argv[2].split(",")] if len(sys.argv) > 2 else [-1, 0, 2, 8]
torch.set_num_threads(1)
gen = torch.Generator().manual_seed(1)


def directions(n):
    d = torch.randn(n, 3, generator=gen)
    return d / d.norm(dim=1, keepdim=True)


def timed(label, bvh, o, d, tmin, tmax, any_hit=False):
    times = {m: [] for m in modes}
    f = bvh.any_hit if any_hit else bvh.closest_hit
    for _ in range(repeats):
        for m in modes:
            t0 = time.process_time()
            f(o, d, tmin, tmax, wide=True, packet=m)
            times[m].append(time.process_time() - t0)
    n = len(o)
    print(f"{label}: " + ", ".join(f"{m}: {statistics.median(times[m]) / n * 1e9:.0f} ns" for m in modes), flush=True)


if not load().bvh_packet_compiled():
    sys.exit("packet traversal needs an AVX-512 build")
for name in ("cbox", "spheres", "lights"):
    sd = SceneData(load_scene(ROOT / f"scenes/{name}/{name}.xml", params={"res": "16", "width": "16", "height": "16"}))
    bvh, v, s = sd.bvh, sd.vertices.float(), sd.spheres.float()
    pts = torch.cat([v, s[:, :3]]) if len(s) else v
    lo, hi = pts.min(0).values, pts.max(0).values
    n = 1 << 16
    o0 = lo + (hi - lo) * (0.1 + 0.8 * torch.rand(n, 3, generator=gen))
    h = bvh.closest_hit(o0, directions(n))
    o = o0 + torch.where(h.hit, h.t * 0.999, 0.0)[:, None] * directions(n)
    zero, inf = torch.zeros(n), torch.full((n,), math.inf)
    info = load().bvh_wide_info(bvh.nodes, bvh.prims)
    timed(f"{name} ({info[0]} wide nodes) incoherent", bvh, o, directions(n), zero, inf)
    target = lo + (hi - lo) * torch.tensor([0.5, 0.99, 0.5]) + 0.05 * torch.randn(n, 3, generator=gen)
    timed(f"{name} shadow-like", bvh, o, target - o, zero, torch.full((n,), 1 - 1e-4), any_hit=True)
    if name == "cbox":
        w = 256
        ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
        x = (xs.flatten() + torch.rand(w * w, generator=gen)) / w * 2 - 1
        y = 1 - (ys.flatten() + torch.rand(w * w, generator=gen)) / w * 2
        d = torch.stack([x * 0.357, y * 0.357, -torch.ones_like(x)], 1).contiguous()
        timed("cbox camera rays", bvh, torch.tensor([0.0, 0.0, 3.9]).expand(w * w, 3).contiguous(), d,
              torch.zeros(w * w), torch.full((w * w,), math.inf))
for nt in (40, 100, 200, 400, 1000):
    v, f = (torch.as_tensor(a) for a in bumpy_sphere(nt))
    bvh = BVH(v.float().contiguous(), f.int().contiguous())
    lo, hi = bvh.bounds()
    n = 1 << 15
    o = (lo + hi) / 2 + (hi - lo) * (torch.rand(n, 3, generator=gen) - 0.5) * 0.3
    info = load().bvh_wide_info(bvh.nodes, bvh.prims)
    timed(f"bumpy sphere {len(f)} triangles ({info[0]} wide nodes) incoherent", bvh, o, directions(n), torch.zeros(n),
          torch.full((n,), math.inf))
