"""Tiles x sample batches: the work units of a distributed render, how a worker renders one, and the exact merge.

A pixel's samples depend only on (seed, pixel, sample index) in the fused kernel, so any partition of the film's
pixels and sample indices renders the same samples as one process; each unit returns its splatted accumulator
(weighted RGB + weight sums over its tile grown by the filter's reach) and the merge adds them, so the merged
image equals the single-process one up to float64 summation order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import UserError


@dataclass(frozen=True)
class RenderJob:
    """One frame to render: the loaded scene travels separately (once per worker); these are the settings."""
    spp: int
    seed: int = 0
    max_depth: int | None = None
    width: int | None = None
    height: int | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class WorkItem:
    """Samples first_sample .. first_sample + spp - 1 of the pixels (x0, y0, w, h) of frame `frame`."""
    frame: int
    x0: int
    y0: int
    w: int
    h: int
    first_sample: int
    spp: int

    @property
    def samples(self) -> int:
        return self.w * self.h * self.spp


def plan_work(width: int, height: int, spp: int, frame: int = 0, tile: int = 128,
              batch_spp: int | None = None) -> list[WorkItem]:
    """Tiles of tile x tile pixels (edge tiles smaller) x batches of batch_spp samples (default: all spp), row-major
    tiles, batches outermost so early results cover the whole image."""
    if tile <= 0:
        raise UserError(f"--tile: expected a positive tile size in pixels, got {tile}")
    batch = spp if batch_spp is None else batch_spp
    if batch <= 0:
        raise UserError(f"--batch-spp: expected a positive sample count, got {batch_spp}")
    items = []
    for s0 in range(0, spp, batch):
        for y0 in range(0, height, tile):
            for x0 in range(0, width, tile):
                items.append(WorkItem(frame, x0, y0, min(tile, width - x0), min(tile, height - y0), s0,
                                      min(batch, spp - s0)))
    return items


def auto_tiling(width: int, height: int, spp: int, workers: int) -> tuple[int, int]:
    """(tile, batch_spp) giving each worker several units (load balance, retries of small units) while keeping units
    big enough that per-unit overhead stays small: ~8 units per worker, tiles no smaller than 32 px."""
    target = max(1, 8 * workers)
    tile = max(32, int(2 ** math.floor(math.log2(max(32, math.sqrt(width * height / target))))))
    tiles = math.ceil(width / tile) * math.ceil(height / tile)
    batches = max(1, min(spp, math.ceil(target / tiles)))
    return tile, math.ceil(spp / batches)


@dataclass
class FrameAccumulator:
    """The merge: adds work units' accumulators into the whole film's (weighted RGB + weight, float64)."""
    width: int
    height: int
    samples: int = 0
    acc: np.ndarray = field(init=False)

    def __post_init__(self):
        self.acc = np.zeros((self.height, self.width, 4), dtype=np.float64)

    def add(self, acc_window, acc, samples: int = 0) -> None:
        x0, y0, w, h = acc_window
        self.acc[y0:y0 + h, x0:x0 + w] += np.asarray(acc, dtype=np.float64).reshape(h, w, 4)
        self.samples += samples

    def develop(self) -> np.ndarray:
        """(H, W, 3) float32, as Film.develop."""
        wsum = self.acc[..., 3:]
        img = np.divide(self.acc[..., :3], wsum, out=np.zeros_like(self.acc[..., :3]), where=wsum > 0)
        return img.astype(np.float32)


class TileRenderer:
    """A worker's renderer of one frame: the scene compiled once (BVH, packed tables), then any number of units."""

    def __init__(self, scene, job: RenderJob):
        from ..integrators import SceneData
        from ..integrators.fused import FusedIntegrator, unsupported_reason
        from ..render import render_settings

        settings = render_settings(scene, spp=job.spp, seed=job.seed, device=job.device, max_depth=job.max_depth,
                                   width=job.width, height=job.height)
        sd = SceneData(scene, job.device)
        why_not = unsupported_reason(sd, settings)
        if why_not is not None:
            raise UserError(f"{scene.source}: distributed rendering needs the fused integrator, which does not "
                            f"support this scene: {why_not}")
        self.integrator = FusedIntegrator(sd, settings)
        self.width, self.height = self.integrator.width, self.integrator.height

    def render(self, item: WorkItem):
        """(acc_window, acc (w h, 4) float64 numpy) of one unit."""
        with torch.no_grad():
            window, acc = self.integrator.render_window((item.x0, item.y0, item.w, item.h), item.first_sample,
                                                        item.spp)
        return window, acc.cpu().numpy()


def film_size(scene, job: RenderJob) -> tuple[int, int]:
    """(width, height) of a frame without compiling the scene."""
    film = scene.sensor.film
    return int(job.width or film.width), int(job.height or film.height)


def render_tiled(scene, job: RenderJob, items: list[WorkItem] | None = None, tile: int = 128) -> np.ndarray:
    """All units of a frame rendered in this process, merged: the serial twin of the distributed render."""
    renderer = TileRenderer(scene, job)
    items = items if items is not None else plan_work(renderer.width, renderer.height, job.spp, tile=tile)
    acc = FrameAccumulator(renderer.width, renderer.height)
    for item in items:
        acc.add(*renderer.render(item), samples=item.samples)
    return acc.develop()
