"""Render a Mitsuba-XML scene to an image: load, compile to the device, path trace in passes, write EXR/PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
from .integrators import RenderResult, SceneData
from .progressive import Accumulator
from .scene import load_scene


def render_scene(scene_path, spp: int | None = None, seed: int = 0, device: str = "cpu",
                 max_depth: int | None = None, aovs: tuple = (), width: int | None = None, height: int | None = None,
                 params: dict | None = None, allow_outside: bool = False, progress: bool = False,
                 samples_per_pass: int = 1 << 20, integrator: str = "auto") -> RenderResult:
    scene = load_scene(scene_path, params=params, allow_outside=allow_outside)
    return render_loaded(scene, spp=spp, seed=seed, device=device, max_depth=max_depth, aovs=aovs, width=width,
                         height=height, progress=progress, samples_per_pass=samples_per_pass, integrator=integrator)


def render_loaded(scene, spp=None, seed=0, device="cpu", max_depth=None, aovs=(), width=None, height=None,
                  progress=False, samples_per_pass: int = 1 << 20, sd: SceneData | None = None,
                  integrator: str = "auto", to_world: np.ndarray | None = None) -> RenderResult:
    """Path trace a loaded scene. integrator: "fused" (the C++/CUDA kernel tracing whole paths), "torch" (the
    wavefront reference in torch) or "auto" (fused when it supports the scene, else torch). to_world replaces the
    sensor's camera-to-world matrix (see progressive.Accumulator)."""
    if spp is not None and spp <= 0:
        raise UserError(f"--spp: expected a positive sample count, got {spp}")
    spp = spp if spp is not None else scene.sampler.sample_count
    acc = Accumulator(scene, device=device, sd=sd, seed=seed, max_depth=max_depth, aovs=aovs, to_world=to_world,
                      width=width, height=height, integrator=integrator, samples_per_pass=samples_per_pass,
                      spp_hint=spp)
    if spp <= 0:
        raise UserError(f"{scene.source}: sampler sample_count: expected a positive sample count, got {spp}")
    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("rendering"), BarColumn(), TextColumn("{task.completed}/{task.total} spp"),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
        bar.start()
        task = bar.add_task("render", total=spp, rate="")
    try:
        while acc.spp < spp:
            n = min(acc.spp_per_pass, spp - acc.spp)
            acc.add(n)
            if bar is not None:
                bar.update(task, advance=n, rate=f"{acc.msamples_per_second:.2f} Msamples/s")
    finally:
        if bar is not None:
            bar.stop()
    return acc.result()


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
