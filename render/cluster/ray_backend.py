"""Distributed rendering on Ray: connect (local:K, auto, ray://host:port), ship each frame's scene once per worker
through the object store, run tiles x sample batches as Ray tasks (retried when a worker dies), merge exactly.

Ray is the optional `[cluster]` extra: nothing here is imported by the core, and `require_ray` turns its absence
into one line saying how to install it.
"""

from __future__ import annotations


import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import UserError
from .tiles import FrameAccumulator, RenderJob, TileRenderer, WorkItem, auto_tiling, film_size, plan_work

# Test hook: when set to a folder, the first unit any worker starts kills that worker process (SIGKILL) once, to
# check that Ray's retries still deliver a complete, correct image.
FAULT_ENV = "RADIANT_CLUSTER_FAULT_DIR"


def require_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--cluster needs Ray, which is not installed: pip install 'radiant[cluster]'") from None
    return ray


def parse_cluster(spec: str) -> tuple[str, int | None]:
    """('local', K) | ('auto', None) | ('ray://host:port', None)."""
    if spec == "auto":
        return "auto", None
    if spec.startswith("local:"):
        k = spec[len("local:"):]
        if not k.isdigit() or int(k) <= 0:
            raise UserError(f"--cluster {spec}: expected local:K with K a positive number of workers")
        return "local", int(k)
    if spec.startswith("ray://") and ":" in spec[len("ray://"):]:
        return spec, None
    raise UserError(f"--cluster {spec}: expected auto, local:K or ray://HOST:PORT")


@contextmanager
def connect(spec: str):
    """Yield the number of CPU workers of the cluster; a local cluster is started (and stopped) here."""
    ray = require_ray()
    kind, k = parse_cluster(spec)
    if ray.is_initialized():  # already connected by the caller (tests, notebooks): use it as it is
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
        return
    try:
        if kind == "local":
            ray.init(num_cpus=k, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        elif kind == "auto":
            if not os.environ.get("RAY_ADDRESS"):
                raise UserError("--cluster auto: RAY_ADDRESS is not set; start a cluster (`ray start --head`) and "
                                "export RAY_ADDRESS, or use local:K")
            ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(address=kind, logging_level="ERROR", log_to_driver=False)
    except UserError:
        raise
    except Exception as e:  # ConnectionError and friends: one line, the address and Ray's reason
        raise UserError(f"--cluster {spec}: could not connect to Ray: {str(e).splitlines()[0] if str(e) else e!r}")
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        ray.shutdown()


# ---- the worker side -----------------------------------------------------------------------------------------
_RENDERERS: dict = {}  # (scene key, job) -> TileRenderer, per worker process: a scene is compiled once per worker


def _maybe_die() -> None:
    folder = os.environ.get(FAULT_ENV)
    if not folder:
        return
    try:
        fd = os.open(os.path.join(folder, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def render_units(scene_key: str, scene_box: list, job: RenderJob, items: list[WorkItem], threads: int):
    """Ray task body: render `items` of one frame; returns [(item, acc_window, acc, seconds)]. scene_box is a list
    holding the scene's ObjectRef, so Ray does not fetch the scene for every task: only on a worker's first use."""
    _maybe_die()
    torch.set_num_threads(max(1, threads))
    key = (scene_key, job)
    renderer = _RENDERERS.get(key)
    if renderer is None:
        import ray

        if len(_RENDERERS) >= 4:
            _RENDERERS.pop(next(iter(_RENDERERS)))
        renderer = _RENDERERS[key] = TileRenderer(ray.get(scene_box[0]), job)
    out = []
    for item in items:
        t0 = time.perf_counter()
        window, acc = renderer.render(item)
        out.append((item, window, acc, time.perf_counter() - t0))
    return out


def warm_worker(threads: int) -> int:
    """Ray task: import the renderer (torch, the kernels) in a worker process; held briefly so that each of the
    cluster's workers gets one. Returns the worker's pid."""
    from ..kernels.build import load

    torch.set_num_threads(max(1, threads))
    load()
    time.sleep(0.5)
    return os.getpid()


# ---- the driver side -----------------------------------------------------------------------------------------
@dataclass
class ClusterStats:
    workers: int = 0
    units: int = 0
    samples: int = 0
    start_s: float = 0.0                 # wall time to start the workers' processes (when warm=True)
    seconds: float = 0.0                 # wall time from the first submission to the last merge
    first_result_s: float = math.inf     # wall time to the first merged unit
    first_frame_s: float = math.inf      # wall time to the first complete frame
    unit_seconds: list = field(default_factory=list)  # worker-side render time of each unit


def render_frames_on_cluster(scenes: list, job: RenderJob, spec: str, tile: int | None = None,
                             batch_spp: int | None = None, threads_per_worker: int = 1, progress: bool = False,
                             on_frame=None, warm: bool = False) -> tuple[list, ClusterStats]:
    """Render every scene in `scenes` (frames) with the same job on the cluster; returns (images, stats).
    on_frame(index, image) is called as soon as a frame is complete (so frames are written early). warm: start
    every worker process first and time that apart (stats.start_s), as the benchmark does."""
    ray = require_ray()
    with connect(spec) as cpus:
        workers = max(1, cpus // max(1, threads_per_worker))
        task = ray.remote(num_cpus=threads_per_worker, max_retries=8, retry_exceptions=False)(render_units)
        start_s = 0.0
        if warm:
            t0 = time.perf_counter()
            warm_task = ray.remote(num_cpus=threads_per_worker)(warm_worker)
            ray.get([warm_task.remote(threads_per_worker) for _ in range(workers)])
            start_s = time.perf_counter() - t0
        accs, remaining, refs_meta = [], [], {}
        for f, scene in enumerate(scenes):
            w, h = film_size(scene, job)
            t, b = auto_tiling(w, h, job.spp, workers)
            items = plan_work(w, h, job.spp, frame=f, tile=tile or t, batch_spp=batch_spp or b)
            accs.append(FrameAccumulator(w, h))
            remaining.append(len(items))
            box = [ray.put(scene)]
            for item in items:
                refs_meta[task.remote(f"frame{f}", box, job, [item], threads_per_worker)] = item
        stats = ClusterStats(workers=workers, units=len(refs_meta), start_s=start_s)
        total = sum(item.samples for item in refs_meta.values())
        images = [None] * len(scenes)
        bar = _progress(progress, total)
        pending = list(refs_meta)
        t0 = time.perf_counter()
        with cancel_on_interrupt(ray, lambda: pending, bar):
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in done:
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:  # a user error raised inside the task (bad scene)
                        cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
                        if isinstance(cause, UserError):
                            raise cause from None
                        raise
                    for item, window, acc, secs in results:
                        accs[item.frame].add(window, acc, samples=item.samples)
                        stats.samples += item.samples
                        stats.unit_seconds.append(secs)
                        stats.first_result_s = min(stats.first_result_s, time.perf_counter() - t0)
                        remaining[item.frame] -= 1
                        if remaining[item.frame] == 0:
                            images[item.frame] = accs[item.frame].develop()
                            stats.first_frame_s = min(stats.first_frame_s, time.perf_counter() - t0)
                            if on_frame is not None:
                                on_frame(item.frame, images[item.frame])
                if bar is not None:
                    elapsed = time.perf_counter() - t0
                    bar[0].update(bar[1], completed=stats.samples,
                                  rate=f"{stats.samples / max(elapsed, 1e-9) / 1e6:.2f} Msamples/s total, "
                                       f"{workers} workers")
        stats.seconds = time.perf_counter() - t0
    return images, stats


@contextmanager
def cancel_on_interrupt(ray, outstanding, bar=None):
    """Ctrl-C cancels the tasks `outstanding()` returns (read at that moment: the caller's current list) and
    re-raises; the progress bar (as made by _progress) stops either way."""
    try:
        yield
    except KeyboardInterrupt:
        for ref in outstanding():
            ray.cancel(ref, force=True)
        raise
    finally:
        if bar is not None:
            bar[0].stop()


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("rendering on the cluster"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
    bar.start()
    return bar, bar.add_task("render", total=total, rate="")


def frame_paths(out: Path, count: int) -> list[Path]:
    """One output path per frame: OUT with '{frame}' replaced by the frame number (4 digits), or _NNNN inserted
    before the extension; a single frame keeps OUT as it is."""
    if count == 1 and "{frame}" not in out.name:
        return [out]
    if "{frame}" in out.name:
        return [out.with_name(out.name.replace("{frame}", f"{i:04d}")) for i in range(count)]
    return [out.with_name(f"{out.stem}_{i:04d}{out.suffix}") for i in range(count)]
