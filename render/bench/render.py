"""`radiant bench render`: path-tracing throughput and quality of the fused kernel and the torch reference beside
Mitsuba 3 (llvm_ad_rgb when its LLVM loads, else scalar_rgb) on the bundled scenes, same machine, same run.

Per scene one JSON line: Msamples/s of each renderer (best and median of `repeats`, interleaved so that load from
other processes hits both alike; the median ratio is over the interleaved pairs), Msamples per CPU-second (process
CPU time, which other jobs on a shared machine skew much less than wall time), and the relMSE of each render against
a high-spp Mitsuba reference of the same scene. `threads` sets both renderers' thread count.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.image import rel_mse
from ..errors import UserError
from ..integrators import SceneData
from ..kernels.build import load
from ..progressive import check_device
from ..render import render_loaded
from ..scene import load_scene
from . import emit

ROOT = Path(__file__).resolve().parents[2]
# (name, scene file, params at full size, params in --quick)
SCENES = (
    ("cbox", "scenes/cbox/cbox.xml", {"res": "256"}, {"res": "64"}),
    ("spheres", "scenes/spheres/spheres.xml", {"width": "320", "height": "180"}, {"width": "80", "height": "45"}),
    ("lights", "scenes/lights/lights.xml", {"width": "192", "height": "144"}, {"width": "96", "height": "72"}),
)
LLVM_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libLLVM-19.so", "/usr/lib/x86_64-linux-gnu/libLLVM-18.so",
                   "/usr/lib/x86_64-linux-gnu/libLLVM.so")


class _Mitsuba:
    """Mitsuba 3 as the anchor: llvm_ad_rgb if drjit finds an LLVM, else scalar_rgb. None-safe: `.error` says why
    it is unavailable."""

    def __init__(self, variant: str, threads: int | None = None):
        self.mi = None
        self.threads = threads
        self.error = None
        if "DRJIT_LIBLLVM_PATH" not in os.environ:
            for path in LLVM_CANDIDATES:
                if Path(path).exists():
                    os.environ["DRJIT_LIBLLVM_PATH"] = path
                    break
        try:
            import mitsuba as mi
        except Exception as e:  # not installed
            self.error = f"mitsuba not importable: {e}"
            return
        self.mi = mi
        tried = [variant] if variant != "auto" else ["llvm_ad_rgb", "scalar_rgb"]
        for v in tried:
            try:
                mi.set_variant(v)
                mi.load_dict({"type": "scene"})  # fails here when the LLVM backend cannot start
                self.variant = v
                import drjit as dr

                self.default_threads = dr.thread_count()
                return
            except Exception as e:
                self.error = f"{v}: {e}"
        self.mi = None

    def render(self, path: Path, params: dict, spp: int, seed: int):
        mi = self.mi
        import drjit as dr

        dr.set_thread_count(self.default_threads)  # drjit 1.x stalls loading an EXR with a single thread
        scene = mi.load_file(str(path), **params)
        if self.threads is not None:
            dr.set_thread_count(self.threads)
        c0, t0 = time.process_time(), time.perf_counter()
        img = mi.render(scene, spp=spp, seed=seed)
        dr.eval(img)
        img = np.array(img)[..., :3]
        return img, time.perf_counter() - t0, time.process_time() - c0


def run_render_bench(out: Path | None = None, quick: bool = False, spp: int | None = None,
                     torch_spp: int | None = None, ref_spp: int | None = None, repeats: int = 2,
                     mitsuba_variant: str = "auto", scenes: list[str] | None = None,
                     threads: int | None = None, device: str = "cpu") -> list[dict]:
    """device "cuda" adds the CUDA build of the fused kernel (same headers) to every row: its Msamples/s, its
    ratio to Mitsuba's llvm (on the CPU) and to our CPU build, and its relMSE against the same reference."""
    spp = spp or (16 if quick else 64)
    torch_spp = torch_spp or (4 if quick else 8)
    ref_spp = ref_spp or (128 if quick else 1024)
    for name, v in (("--spp", spp), ("--torch-spp", torch_spp), ("--ref-spp", ref_spp), ("--repeats", repeats),
                    ("--threads", 1 if threads is None else threads)):
        if v <= 0:
            raise UserError(f"{name}: expected a positive number, got {v}")
    known = [s[0] for s in SCENES]
    for s in scenes or []:
        if s not in known:
            raise UserError(f"--scene: unknown scene {s!r}; expected some of {', '.join(known)}")
    check_device(device)
    if device != "cpu" and not load().with_cuda:
        raise UserError("--device cuda: the radiant kernels were built without CUDA (no nvcc / CUDA_HOME?)")
    if threads is not None:
        torch.set_num_threads(threads)
    mitsuba = _Mitsuba(mitsuba_variant, threads)
    if mitsuba.mi is None:
        print(f"warning: Mitsuba unavailable ({mitsuba.error}); reporting ours only, references from our fused "
              f"renderer", file=sys.stderr)
    results = []
    for name, rel, full, small in SCENES:
        if scenes and name not in scenes:
            continue
        path = ROOT / rel
        params = small if quick else full
        scene = load_scene(path, params=params)
        sd = SceneData(scene)
        render_loaded(scene, spp=1, seed=99, sd=sd, integrator="fused")  # kernel build / warm caches
        if mitsuba.mi is not None:
            ref = mitsuba.render(path, params, ref_spp, seed=1000)[0]
            ref_name = f"mitsuba {mitsuba.variant} {ref_spp} spp"
            mitsuba.render(path, params, spp, seed=999)  # JIT warm-up at the measured spp
        else:
            ref = render_loaded(scene, spp=ref_spp, seed=1000, sd=sd, integrator="fused").rgb
            ref_name = f"radiant fused {ref_spp} spp"
        fused_t, fused_c, mi_t, mi_c = [], [], [], []
        for rep in range(repeats):
            c0 = time.process_time()
            r = render_loaded(scene, spp=spp, seed=rep, sd=sd, integrator="fused")
            fused_c.append(time.process_time() - c0)
            fused_t.append(r.seconds)
            fused_img = r.rgb if rep == 0 else fused_img
            if mitsuba.mi is not None:
                img, dt, dc = mitsuba.render(path, params, spp, seed=rep)
                mi_t.append(dt)
                mi_c.append(dc)
                mi_img = img if rep == 0 else mi_img
        gpu_t, gpu_img = [], None
        if device != "cpu":
            sd_gpu = SceneData(scene, device=device)
            render_loaded(scene, spp=1, seed=99, sd=sd_gpu, device=device, integrator="fused")  # warm-up
            for rep in range(repeats):
                r = render_loaded(scene, spp=spp, seed=rep, sd=sd_gpu, device=device, integrator="fused")
                gpu_t.append(r.seconds)  # Accumulator.add synchronizes the device before it stops its clock
                gpu_img = r.rgb if rep == 0 else gpu_img
        rt = render_loaded(scene, spp=torch_spp, seed=0, sd=sd, integrator="torch")
        h, w = fused_img.shape[:2]
        samples = w * h * spp
        row = {
            "bench": "render", "scene": name, "width": w, "height": h, "spp": spp,
            "fused_msamples_s": round(samples / min(fused_t) / 1e6, 3),
            "fused_msamples_s_median": round(samples / float(np.median(fused_t)) / 1e6, 3),
            "fused_msamples_cpu_s_median": round(samples / float(np.median(fused_c)) / 1e6, 3),
            "torch_msamples_s": round(w * h * torch_spp / rt.seconds / 1e6, 4), "torch_spp": torch_spp,
            "relmse_fused": round(rel_mse(fused_img, ref), 5),
            "relmse_torch": round(rel_mse(rt.rgb, ref), 5),
            "reference": ref_name,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "load_avg": round(os.getloadavg()[0], 2),
        }
        if gpu_t:
            row.update({"cuda_device": torch.cuda.get_device_name(torch.device(device)),
                        "cuda_msamples_s": round(samples / min(gpu_t) / 1e6, 3),
                        "cuda_vs_fused_cpu": round(min(fused_t) / min(gpu_t), 2),
                        "relmse_cuda": round(rel_mse(gpu_img, ref), 5)})
            if mitsuba.mi is not None:
                row["cuda_vs_mitsuba"] = round(min(mi_t) / min(gpu_t), 2)
        if mitsuba.mi is not None:
            row.update({
                "mitsuba_variant": mitsuba.variant,
                "mitsuba_msamples_s": round(samples / min(mi_t) / 1e6, 3),
                "mitsuba_msamples_s_median": round(samples / float(np.median(mi_t)) / 1e6, 3),
                "mitsuba_msamples_cpu_s_median": round(samples / float(np.median(mi_c)) / 1e6, 3),
                "fused_vs_mitsuba_cpu_median": round(float(np.median(np.asarray(mi_c) / np.asarray(fused_c))), 3),
                "fused_vs_mitsuba": round(min(mi_t) / min(fused_t), 3),
                # Median over the interleaved (ours, Mitsuba) pairs: each pair ran under about the same load.
                "fused_vs_mitsuba_median": round(float(np.median(np.asarray(mi_t) / np.asarray(fused_t))), 3),
                "relmse_mitsuba": round(rel_mse(mi_img, ref), 5),
            })
        emit(row, out)
        results.append(row)
    return results
