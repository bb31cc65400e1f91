"""Render a Mitsuba-XML scene to an image: load, compile to the device, path trace in passes, write EXR/PNG."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .integrators import Film, PathIntegrator, RenderResult, RenderSettings, SceneData
from .integrators.fused import FusedIntegrator, unsupported_reason
from .scene import load_scene

AOV_NAMES = ("albedo", "normal", "depth", "position")


def render_scene(scene_path, spp: int | None = None, seed: int = 0, device: str = "cpu",
                 max_depth: int | None = None, aovs: tuple = (), width: int | None = None, height: int | None = None,
                 params: dict | None = None, allow_outside: bool = False, progress: bool = False,
                 samples_per_pass: int = 1 << 20, integrator: str = "auto") -> RenderResult:
    scene = load_scene(scene_path, params=params, allow_outside=allow_outside)
    return render_loaded(scene, spp=spp, seed=seed, device=device, max_depth=max_depth, aovs=aovs, width=width,
                         height=height, progress=progress, samples_per_pass=samples_per_pass, integrator=integrator)


def render_settings(scene, spp=None, seed=0, device="cpu", max_depth=None, aovs=(), width=None, height=None,
                    samples_per_pass: int = 1 << 20) -> RenderSettings:
    """The RenderSettings of a render of a loaded scene (the scene's integrator and sampler, overridden by the
    arguments), after checking the arguments; UserError names what is wrong."""
    if scene.sensor is None:
        raise UserError(f"{scene.source}: the scene has no sensor to render from")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise UserError(f"--device: expected cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: torch reports no CUDA device on this machine")
    for a in aovs:
        if a not in AOV_NAMES:
            raise UserError(f"--aov: unknown AOV {a!r}; expected some of {', '.join(AOV_NAMES)}")
    integ = scene.integrator
    if integ.type not in ("path", "direct"):
        raise UserError(f"{scene.source}: integrator '{integ.type}' is not supported by `radiant render` yet")
    ip = integ.params
    if integ.type == "direct":
        depth = 2
    else:
        depth = int(ip.get("max_depth", -1)) if max_depth is None else max_depth
    spp = spp if spp is not None else scene.sampler.sample_count
    if spp <= 0:
        raise UserError(f"--spp: expected a positive sample count, got {spp}")
    settings = RenderSettings(spp=spp, max_depth=depth, rr_depth=int(ip.get("rr_depth", 5)),
                              hide_emitters=bool(ip.get("hide_emitters", False)), seed=seed,
                              width=width or 0, height=height or 0, aovs=tuple(aovs),
                              samples_per_pass=samples_per_pass)
    return settings


def render_loaded(scene, spp=None, seed=0, device="cpu", max_depth=None, aovs=(), width=None, height=None,
                  progress=False, samples_per_pass: int = 1 << 20, sd: SceneData | None = None,
                  integrator: str = "auto") -> RenderResult:
    """Path trace a loaded scene. integrator: "fused" (the C++/CUDA kernel tracing whole paths), "torch" (the
    wavefront reference in torch) or "auto" (fused when it supports the scene, else torch)."""
    if integrator not in ("auto", "fused", "torch"):
        raise UserError(f"--integrator: expected auto, fused or torch, got {integrator!r}")
    settings = render_settings(scene, spp=spp, seed=seed, device=device, max_depth=max_depth, aovs=aovs, width=width,
                               height=height, samples_per_pass=samples_per_pass)
    spp = settings.spp
    sd = sd if sd is not None else SceneData(scene, device)
    why_not = unsupported_reason(sd, settings) if integrator != "torch" else "torch requested"
    if integrator == "fused" and why_not is not None:
        raise UserError(f"--integrator fused: not supported for this render: {why_not}")
    fused = why_not is None
    integrator = FusedIntegrator(sd, settings) if fused else PathIntegrator(sd, settings)
    w, h = integrator.width, integrator.height
    film = Film(w, h, integrator.rfilter, 3, sd.device)
    aov_channels = sum(1 if a == "depth" else 3 for a in aovs)
    aov_film = Film(w, h, integrator.rfilter, aov_channels, sd.device) if aovs else None
    per_pass = max(1, samples_per_pass // (w * h))
    passes = [min(per_pass, spp - i) for i in range(0, spp, per_pass)]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("rendering"), BarColumn(), TextColumn("{task.completed}/{task.total} spp"),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
        bar.start()
        task = bar.add_task("render", total=spp, rate="")
    try:
        done = 0
        for i, n in enumerate(passes):
            if fused:
                integrator.render_pass(film, aov_film, i, n, first_sample=done)
            else:
                integrator.render_pass(film, aov_film, i, n)
            done += n
            if bar is not None:
                rate = done * w * h / (time.perf_counter() - t0) / 1e6
                bar.update(task, advance=n, rate=f"{rate:.2f} Msamples/s")
    finally:
        if bar is not None:
            bar.stop()
    out = RenderResult(rgb=film.develop(), samples=spp * w * h, seconds=time.perf_counter() - t0,
                       integrator="fused" if fused else "torch")
    if aov_film is not None:
        img = aov_film.develop()
        c = 0
        for a in aovs:
            k = 1 if a == "depth" else 3
            out.aovs[a] = img[..., c:c + k] if k == 3 else img[..., c]
            c += k
    return out


def parse_defines(defines: list[str]) -> dict[str, str]:
    params = {}
    for item in defines or []:
        if "=" not in item:
            raise UserError(f"-D {item}: expected name=value")
        k, v = item.split("=", 1)
        if not k:
            raise UserError(f"-D {item}: expected name=value with a non-empty name")
        params[k] = v
    return params


def parse_frames(spec: str | None) -> tuple[str, list[str]] | None:
    """--frames NAME=V1,V2,... (values as given) or NAME=START:STOP:COUNT (COUNT evenly spaced numbers, both ends
    included): the scene parameter $NAME takes one value per frame."""
    if not spec:
        return None
    name, sep, values = spec.partition("=")
    if not sep or not name or not values:
        raise UserError(f"--frames {spec}: expected NAME=V1,V2,... or NAME=START:STOP:COUNT")
    if ":" in values:
        parts = values.split(":")
        try:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3 or count <= 0:
                raise ValueError
        except (ValueError, IndexError):
            raise UserError(f"--frames {spec}: expected NAME=START:STOP:COUNT with numbers and COUNT > 0") from None
        step = (stop - start) / (count - 1) if count > 1 else 0.0
        return name, [repr(start + i * step) for i in range(count)]
    vals = [v.strip() for v in values.split(",")]
    if any(not v for v in vals):
        raise UserError(f"--frames {spec}: empty value in the list")
    return name, vals


def check_output(out: Path, force: bool) -> None:
    if out.suffix.lower() not in (".exr", ".png"):
        raise UserError(f"--out {out}: unsupported extension {out.suffix!r}; expected .exr or .png")
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to overwrite")


def finite_or_zero(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
