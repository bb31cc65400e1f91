"""The viewer's render thread: loads scenes and accumulates samples (render.progressive) 1 spp at a time, so a
new camera or AOV is picked up after at most one pass; sends frames to the UI thread through Qt signals."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal

# Everything the thread will use is imported here, on the UI thread: a first `import torch` (or any big import)
# inside a QThread races PySide6's import hook and can crash the interpreter (seen with PySide6 6.12).
from render.errors import UserError
from render.integrators import SceneData
from render.kernels.build import load as load_kernels
from render.progressive import Accumulator
from render.scene import load_scene
from render.scene.camera import camera_frame
from render.scene.types import RFilter

FRAME_INTERVAL_S = 1 / 30  # at most this often a frame goes to the UI (the first of a new view always does)
BATCH_BUDGET_S = 1 / 30    # samples per batch: about this long (at least 1 spp), then the job is checked again
MAX_BATCH_SPP = 64
PREVIEW_ABOVE_S = 1 / 20   # a moved camera gets a quarter-resolution pass first when 1 spp takes longer than this
PREVIEW_SCALE = 4


@dataclass
class SceneInfo:
    """What the UI needs of a loaded scene (the scene itself stays in the worker)."""
    source: Path
    to_world: np.ndarray
    fov_x: float
    width: int
    height: int
    center: np.ndarray | None   # middle of the scene's bounds (None for a scene without geometry)
    integrator: str             # "fused" or "torch": what renders the colour
    sample_count: int           # the scene's sampler spp


@dataclass
class Job:
    """A view to accumulate: a camera, an AOV (None: colour) and when to stop."""
    generation: int
    to_world: np.ndarray
    aov: str | None
    max_spp: int


@dataclass
class Frame:
    generation: int
    image: np.ndarray   # linear RGB (H,W,3), or the raw AOV ((H,W,3) or (H,W) for depth)
    aov: str | None
    spp: int
    msamples_per_second: float
    width: int
    height: int
    integrator: str
    preview: bool = False  # a low-resolution first look after a camera move


class RenderWorker(QThread):
    loaded = Signal(object)   # SceneInfo
    failed = Signal(str)      # one line, as the CLI prints it
    frame = Signal(object)    # Frame

    def __init__(self, device: str = "cpu", width: int | None = None, height: int | None = None,
                 params: dict | None = None, allow_outside: bool = False, parent=None):
        super().__init__(parent)
        load_kernels()  # on this (UI) thread, for the same reason as the imports above; builds once (~1 min)
        self.device, self.width, self.height = device, width, height
        self.params, self.allow_outside = params or {}, allow_outside
        self._cond = threading.Condition()
        self._stop = False
        self._load: Path | None = None
        self._job: Job | None = None
        self._color = self._aov = None      # render.progressive.Accumulator: colour, and AOVs (on demand)
        self._current: tuple | None = None  # (generation, accumulator) being accumulated
        self._spp = 0

    # ---- called from the UI thread
    def load(self, path) -> None:
        with self._cond:
            self._load, self._job = Path(path), None
            self._cond.notify()

    def render(self, job: Job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify()

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Ask the thread to finish (after the pass in flight) and wait for it."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        return self.wait(timeout_ms)

    # ---- the thread
    def _idle(self) -> bool:
        job = self._job
        if self._load is not None:
            return False
        if job is None or self._color is None:
            return True
        return self._current is not None and self._current[0] == job.generation and self._spp >= job.max_spp

    def _current_job(self, generation: int) -> bool:
        with self._cond:
            return not self._stop and self._load is None and self._job is not None \
                and self._job.generation == generation

    def _emit(self, job: Job, acc, preview: bool = False) -> None:
        image = acc.aov_images()[job.aov] if job.aov else acc.rgb()
        self.frame.emit(Frame(job.generation, image, job.aov, acc.spp, acc.msamples_per_second, acc.width,
                              acc.height, "fused" if acc.fused else "torch", preview))

    def run(self) -> None:
        last_emit = 0.0
        seconds_per_spp = {}  # accumulator id -> seconds of one full-resolution spp (measured)
        while True:
            with self._cond:
                while not self._stop and self._idle():
                    self._cond.wait()
                if self._stop:
                    return
                load, job = self._load, self._job
                self._load = None
            if load is not None:
                self._load_scene(load)
                seconds_per_spp.clear()
                continue
            try:
                if self._current is None or self._current[0] != job.generation:
                    acc = self._aov if job.aov else self._color
                    cost = seconds_per_spp.get(id(acc), 0.0)
                    if cost > PREVIEW_ABOVE_S and self._current is not None:
                        # The camera moved and a full pass is slow: show a quarter-resolution pass first.
                        self._reset(acc, job, scale=PREVIEW_SCALE)
                        acc.add(1)
                        self._emit(job, acc, preview=True)
                        if not self._current_job(job.generation):
                            continue
                    self._reset(acc, job)
                    self._current, self._spp, last_emit = (job.generation, acc), 0, 0.0
                acc = self._current[1]
                cost = seconds_per_spp.get(id(acc), 0.0)
                # Batches of about one display frame (at least 1 spp): a new job waits at most one batch.
                batch = 1 if cost <= 0 else int(min(MAX_BATCH_SPP, max(1.0, BATCH_BUDGET_S / cost)))
                batch = max(1, min(batch, job.max_spp - acc.spp))
                t0 = time.perf_counter()
                acc.add(batch)
                seconds_per_spp[id(acc)] = (time.perf_counter() - t0) / batch
                self._spp = acc.spp
            except UserError as e:
                self._fail(str(e))
                continue
            except Exception as e:  # a kernel or integrator failure: report it, keep the window alive
                self._fail(f"render failed: {type(e).__name__}: {e}")
                continue
            now = time.perf_counter()
            if last_emit == 0.0 or now - last_emit >= FRAME_INTERVAL_S or acc.spp >= job.max_spp:
                last_emit = now
                self._emit(job, acc)

    def _fail(self, message: str) -> None:
        with self._cond:
            self._job = None
        self.failed.emit(message)

    def _reset(self, acc, job: Job, scale: int = 1) -> None:
        w, h = self.full_size
        acc.reset(to_world=job.to_world, width=max(1, w // scale), height=max(1, h // scale),
                  aovs=(job.aov,) if job.aov else ())

    def _load_scene(self, path: Path) -> None:
        try:
            if path.is_dir():
                raise UserError(f"{path}: a folder; expected a Mitsuba scene .xml")
            scene = load_scene(path, params=self.params, allow_outside=self.allow_outside)
            if scene.sensor is None:
                raise UserError(f"{path}: the scene has no sensor to render from")
            sd = SceneData(scene, self.device)
            color = Accumulator(scene, device=self.device, sd=sd, width=self.width, height=self.height)
            # AOVs come from the primary hit only: one bounce of the torch integrator (the one that writes them),
            # no colour film, box filter (one pixel per sample): several times cheaper than a colour pass.
            aov = Accumulator(scene, device=self.device, sd=sd, width=self.width, height=self.height,
                              integrator="torch", max_depth=1, color=False, rfilter=RFilter(type="box"))
        except UserError as e:
            self._fail(str(e))
            return
        except Exception as e:
            self._fail(f"{path}: could not load: {type(e).__name__}: {e}")
            return
        lo, hi = sd.bvh.bounds()
        center = ((lo + hi) / 2).double().numpy() if bool(np.all(np.isfinite((lo + hi).numpy()))) else None
        _, fov_x, _ = camera_frame(scene.sensor, color.width, color.height)
        with self._cond:
            self._color, self._aov, self._current, self._spp = color, aov, None, 0
            self.full_size = (color.width, color.height)
        self.loaded.emit(SceneInfo(path, scene.sensor.to_world.copy(), fov_x, color.width, color.height, center,
                                   "fused" if color.fused else "torch", scene.sampler.sample_count))
