"""Progressive rendering: N more samples per pixel of a scene, from a given camera, into a running accumulator.

The one place that turns a loaded scene + camera + settings into an integrator and films: `render_loaded`
(a fixed spp, with a progress bar) and the viewer (1 spp at a time, restarted when the camera moves) both use it.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from .errors import UserError
from .integrators import Film, PathIntegrator, RenderResult, RenderSettings, SceneData
from .integrators.fused import FusedIntegrator, PackedScene, unsupported_reason
from .scene.types import RFilter

AOV_NAMES = ("albedo", "normal", "depth", "position")


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise UserError(f"--device: expected cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: torch reports no CUDA device on this machine")


class Accumulator:
    """Radiance (and AOVs) of `scene` seen from one camera, accumulated over calls to `add(spp)`.

    integrator: "fused" (C++/CUDA kernel, whole paths), "torch" (wavefront reference; the only one writing AOVs)
    or "auto" (fused when it supports the render). to_world (4x4, Mitsuba camera space: +z forward, +x image left,
    +y up) replaces the sensor's; width/height replace the film's (the fov is re-resolved for the new aspect as
    Mitsuba's fov_axis says). `reset` starts a new image (new camera, size or AOVs) and keeps the compiled scene.
    color=False accumulates AOVs only (torch integrator; with max_depth=1 only the primary hit is traced);
    rfilter replaces the film's reconstruction filter (e.g. a box: each sample lands in its own pixel, cheapest).
    """

    def __init__(self, scene, device: str = "cpu", sd: SceneData | None = None, seed: int = 0,
                 max_depth: int | None = None, aovs: tuple = (), to_world: np.ndarray | None = None,
                 width: int | None = None, height: int | None = None, integrator: str = "auto",
                 samples_per_pass: int = 1 << 20, color: bool = True, rfilter: RFilter | None = None,
                 spp_hint: int | None = None):
        # the image's final spp when known (render_loaded): shrinks the neural materials' LOD footprint per sample
        self.spp_hint = max(1, int(spp_hint or 1))
        if integrator not in ("auto", "fused", "torch"):
            raise UserError(f"--integrator: expected auto, fused or torch, got {integrator!r}")
        if scene.sensor is None:
            raise UserError(f"{scene.source}: the scene has no sensor to render from")
        check_device(device)
        integ = scene.integrator
        if integ.type not in ("path", "direct"):
            raise UserError(f"{scene.source}: integrator '{integ.type}' is not supported by `radiant render` yet")
        self.scene, self.seed, self.max_depth, self.samples_per_pass = scene, seed, max_depth, samples_per_pass
        if not color and integrator != "torch":
            raise ValueError("color=False (AOVs only) needs the torch integrator")
        self.requested, self.color, self.rfilter = integrator, color, rfilter
        self.sd = sd if sd is not None else SceneData(scene, device)
        self._packed: PackedScene | None = None
        self.reset(to_world=to_world, width=width, height=height, aovs=aovs)

    def reset(self, to_world: np.ndarray | None = None, width: int | None = None, height: int | None = None,
              aovs: tuple = ()) -> None:
        """Start a new image from this camera (None: the scene's sensor / film size) with these AOVs."""
        for a in aovs:
            if a not in AOV_NAMES:
                raise UserError(f"--aov: unknown AOV {a!r}; expected some of {', '.join(AOV_NAMES)}")
        for name, v in (("--width", width), ("--height", height)):
            if v is not None and v <= 0:
                raise UserError(f"{name}: expected a positive size, got {v}")
        scene = self.scene
        sensor = scene.sensor
        if to_world is not None:
            sensor = dataclasses.replace(sensor, to_world=np.asarray(to_world, dtype=np.float64).copy())
        if self.rfilter is not None:
            sensor = dataclasses.replace(sensor, film=dataclasses.replace(sensor.film, rfilter=self.rfilter))
        ip = scene.integrator.params
        if scene.integrator.type == "direct":
            depth = 2
        else:
            depth = int(ip.get("max_depth", -1)) if self.max_depth is None else self.max_depth
        settings = RenderSettings(spp=self.spp_hint, max_depth=depth, rr_depth=int(ip.get("rr_depth", 5)),
                                  hide_emitters=bool(ip.get("hide_emitters", False)), seed=self.seed,
                                  width=width or 0, height=height or 0, aovs=tuple(aovs),
                                  samples_per_pass=self.samples_per_pass)
        why_not = unsupported_reason(self.sd, settings) if self.requested != "torch" else "torch requested"
        if self.requested == "fused" and why_not is not None:
            raise UserError(f"--integrator fused: not supported for this render: {why_not}")
        self.fused = why_not is None
        if self.fused:
            if self._packed is None:
                self._packed = PackedScene(self.sd)
            self.integrator = FusedIntegrator(self.sd, settings, packed=self._packed, sensor=sensor)
        else:
            self.integrator = PathIntegrator(self.sd, settings, sensor=sensor)
        self.sensor, self.aovs = sensor, tuple(aovs)
        w, h = self.width, self.height
        self.film = Film(w, h, self.integrator.rfilter, 3, self.sd.device) if self.color else None
        channels = sum(1 if a == "depth" else 3 for a in aovs)
        self.aov_film = Film(w, h, self.integrator.rfilter, channels, self.sd.device) if aovs else None
        self.spp, self.passes, self.seconds = 0, 0, 0.0

    @property
    def width(self) -> int:
        return self.integrator.width

    @property
    def height(self) -> int:
        return self.integrator.height

    @property
    def spp_per_pass(self) -> int:
        """Samples per pixel of one kernel pass (samples_per_pass / pixels, at least 1)."""
        return max(1, self.samples_per_pass // (self.width * self.height))

    def add(self, spp: int = 1) -> None:
        """Trace `spp` more samples per pixel into the films (in passes of at most spp_per_pass)."""
        if spp <= 0:
            raise UserError(f"--spp: expected a positive sample count, got {spp}")
        t0 = time.perf_counter()
        done = 0
        while done < spp:
            n = min(self.spp_per_pass, spp - done)
            if self.fused:
                self.integrator.render_pass(self.film, self.aov_film, self.passes, n, first_sample=self.spp)
            else:
                self.integrator.render_pass(self.film, self.aov_film, self.passes, n)
            self.passes += 1
            self.spp += n
            done += n
        if self.sd.device != "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0

    @property
    def samples(self) -> int:
        return self.spp * self.width * self.height

    @property
    def msamples_per_second(self) -> float:
        return self.samples / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def rgb(self) -> np.ndarray:
        """(H,W,3) linear radiance: the mean of the samples so far."""
        if self.film is None:
            raise ValueError("this accumulator renders AOVs only (color=False)")
        return self.film.develop()

    def aov_images(self) -> dict[str, np.ndarray]:
        """name -> (H,W,3) or (H,W) for depth."""
        if self.aov_film is None:
            return {}
        img = self.aov_film.develop()
        out, c = {}, 0
        for a in self.aovs:
            k = 1 if a == "depth" else 3
            out[a] = img[..., c:c + k] if k == 3 else img[..., c]
            c += k
        return out

    def result(self) -> RenderResult:
        return RenderResult(rgb=self.rgb(), aovs=self.aov_images(), samples=self.samples, seconds=self.seconds,
                            integrator="fused" if self.fused else "torch")
