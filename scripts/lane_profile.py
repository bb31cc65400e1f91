"""Where the fused CPU path tracer's time goes: perf samples of a 64 spp render (one thread, film splat included) of
a bundled scene, each sample put in a category by the inline chain of its address (addr2line -i). Needs perf and
an extension built with debug info: RADIANT_EXTRA_CFLAGS=-g (same code, its own cache entry).
Usage: RADIANT_EXTRA_CFLAGS=-g python scripts/lane_profile.py cbox|spheres|lights   (or: render SCENE, what perf runs)"""

import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENES = {"cbox": ("scenes/cbox/cbox.xml", {"res": "256"}),
          "spheres": ("scenes/spheres/spheres.xml", {"width": "320", "height": "180"}),
          "lights": ("scenes/lights/lights.xml", {"width": "192", "height": "144"})}
# First match from the innermost frame outwards.
CATEGORIES = [
    ("film splat", ["film_splat", "filter_weight"]),
    ("shadow traversal", ["packet_traverse<true>", "wide_trace_from<true>", "wide_traverse<true", "traverse<true"]),
    ("closest-hit traversal", ["packet_traverse<false>", "wide_trace_from<false>", "wide_traverse<false",
                               "traverse<false", "packet_consts", "finish_hit"]),
    ("camera rays / RNG", ["start_path", "camera_sample", "PCG32", "sample_rng"]),
    ("emitter sampling", ["sample_emitter", "area_mesh", "envmap_sample", "envmap_cell", "search_cdf", "take_sample",
                          "sphere_cone"]),
    ("env_eval", ["env_eval", "envmap_eval", "env_texels", "envmap_pdf", "env_uv", "env_cell_pdf"]),
    ("surface attributes", ["surface_refs", "triangle_surface", "sphere_surface", "surface_at"]),
    ("BSDFs", ["LaneBSDFs", "bsdf_", "_eval", "_sample", "_pdf", "Microfacet"]),
    ("rest of the lane loop", ["trace_lanes", "trace_sample"]),
]


def render(scene):
    import torch

    from render.integrators import RenderSettings, SceneData
    from render.integrators.fused import FusedIntegrator
    from render.scene import load_scene

    torch.set_num_threads(1)
    path, params = SCENES[scene]
    integ = FusedIntegrator(SceneData(load_scene(ROOT / path, params=params)), RenderSettings(spp=64))
    integ.trace(0, 1)  # builds / loads the extension before perf's samples count
    for k in range(4):
        integ.render_window((0, 0, integ.width, integ.height), 16 * k, 16)


def profile(scene):
    data = Path(tempfile.mkdtemp()) / "perf.data"
    subprocess.run(["perf", "record", "-q", "-F", "3000", "-o", str(data), "--", sys.executable, __file__, "render",
                    scene], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,symoff,dso", "--no-demangle"],
                         capture_output=True, text=True, check=True).stdout
    so, samples = None, collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*[0-9a-f]+\s+(\S+)\s+\((.*)\)\s*$", line)
        if not m:
            continue
        symoff, dso = m.groups()
        if "radiant_kernels" in dso:
            so = dso
            samples[symoff] += 1
        elif "libm" in os.path.basename(dso):
            samples["<libm>"] += 1
    syms = {}
    for line in subprocess.run(["nm", so], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3:
            syms[p[2]] = int(p[0], 16)
    addrs = {}
    for k in samples:
        name, _, off = k.rpartition("+")
        if name in syms:
            addrs[k] = syms[name] + int(off, 16)
    keys = list(addrs)
    lines = subprocess.run(["addr2line", "-a", "-f", "-i", "-C", "-e", so] + [hex(addrs[k]) for k in keys],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    chains = []
    for line in lines:
        if re.match(r"^0x[0-9a-f]+$", line):
            chains.append([])
        elif not line.startswith(("/", "??:")):
            chains[-1].append(line)
    chain_of = dict(zip(keys, chains))
    total = collections.Counter()
    for k, n in samples.items():
        cat = "libm" if k == "<libm>" else "unclassified"
        for fn in chain_of.get(k, []):
            cat = next((c for c, pats in CATEGORIES if any(p in fn for p in pats)), None) or cat
            if cat not in ("unclassified", "libm"):
                break
        total[cat] += n
    n_all = sum(total.values())
    print(f"{scene}: {n_all} samples in the kernel and libm")
    for c, n in total.most_common():
        print(f"  {c:24s} {100 * n / n_all:5.1f} %")


if __name__ == "__main__":
    if sys.argv[1] == "render":
        render(sys.argv[2])
    else:
        profile(sys.argv[1])
