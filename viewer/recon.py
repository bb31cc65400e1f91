"""The viewer's reconstruction tab: a run's live loss curves (RUN/metrics.jsonl), its current SDF sphere-traced
(render.kernels.sdf on a dense grid sampled from the checkpoint) with normal shading from an orbit camera, the
dataset cameras as frusta, per-view maps (dataset RGB, rendered depth / normal / uncertainties, the pixel sampler's
heat map; render.recon.report.view_images), mesh export (render.recon.mesh.export_mesh), and, for a dataset folder,
a `radiant reconstruct` started as a subprocess and watched live. The model lives in a worker thread; the UI thread
only draws what it sends.

Space: everything here is the run's normalized space (the dataset's cameras, the SDF in [-1, 1]^3); only the
exported mesh is in world units (dataset.normalization), as the CLI writes it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, QPointF, QProcess, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSplitter, QVBoxLayout, QWidget)

# Imported here, on the UI thread, for the reason given in viewer/worker.py (a first big import inside a QThread
# can crash PySide6's import hook).
from render.errors import UserError
from render.kernels.build import load as load_kernels
from render.kernels.sdf import DenseSDF
from render.recon.config import load_config_file
from render.recon.dataset import load_dataset
from render.recon.mesh import export_mesh, sdf_lattice
from render.recon.report import dataset_rgb, heat_image, view_images
from render.recon.run import RunState, load_run_state
from render.recon.trainer import render_options
from render.scene.transforms import look_at, rotate

from .camera import OrbitCamera
from .widgets import ImageView, to_qimage

NOT_PLOTTED = ("step", "time", "epoch", "lr")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
SDF_RESOLUTION = 128       # dense grid the SDF is sampled on for sphere tracing (128^3 over [-1, 1]^3)
TRACE_WIDTH = 400          # sphere-traced view width in pixels (height from the dataset's aspect)
MAP_WIDTH = 160            # per-view maps are rendered at most this wide
FRUSTUM_DEPTH = 0.1        # frustum length: this fraction of the cameras' median distance to the centre (min 0.05)
NEAR = 1e-3
BACKGROUND = np.array([38, 38, 42], dtype=np.uint8)
MAP_KEYS = (("gt", "dataset RGB"), ("rgb", "rendered RGB"), ("depth", "depth"), ("normal", "normal"),
            ("depth_uncertainty", "depth uncertainty"), ("normal_uncertainty", "normal uncertainty"),
            ("sampling", "pixel-sampling probability"))
HOME_PULLBACK, HOME_ELEVATION_DEG = 2.0, 30.0  # the first view of an object run (home_view)
LIVE_CKPT_MINUTES = 0.25   # a run started from the viewer checkpoints this often, so the SDF view follows it


def live_config(minutes: float) -> dict:
    """Config keys of a run started from the viewer (its --config file): the budget, and frequent checkpoints."""
    return {"minutes": float(minutes), "ckpt_minutes": LIVE_CKPT_MINUTES}


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "metrics.jsonl").exists() or (path / "config.yaml").exists())


def is_dataset_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "cameras.npz").is_file() or (path / "transforms.json").is_file())


def read_new_metrics(path: Path, offset: int) -> tuple[list[dict], int]:
    """Rows appended to a metrics.jsonl since byte `offset`, and the offset after the last complete line (a line
    still being written is left for the next call; lines that are not JSON objects are skipped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    return rows, offset + end


# ---- cameras: the viewer's (Mitsuba axes: +x image left, +y up, +z forward) and the dataset's (OpenCV) ---------

def opencv_to_mitsuba(c2w: np.ndarray) -> np.ndarray:
    """An OpenCV camera-to-world (x right, y down, z forward) as the viewer's Mitsuba one (x left, y up)."""
    m = np.asarray(c2w, dtype=np.float64).copy()
    m[:3, 0] *= -1
    m[:3, 1] *= -1
    return m


def view_rays(to_world: np.ndarray, fov_x: float, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions (H*W, 3) through the pixel centres of a pinhole camera, row-major from the top
    left, with render.scene.camera.camera_rays' convention (direction ((1 - 2 px) tan_x, (1 - 2 py) tan_y, 1))."""
    tx = math.tan(math.radians(fov_x) / 2)
    ty = tx * height / width
    ys, xs = torch.meshgrid((torch.arange(height, dtype=torch.float64) + 0.5) / height,
                            (torch.arange(width, dtype=torch.float64) + 0.5) / width, indexing="ij")
    d = torch.stack([(1 - 2 * xs) * tx, (1 - 2 * ys) * ty, torch.ones_like(xs)], -1).reshape(-1, 3)
    m = torch.from_numpy(np.asarray(to_world, dtype=np.float64))
    d = torch.nn.functional.normalize(d @ m[:3, :3].T, dim=-1)
    o = m[:3, 3].expand_as(d)
    return o.float().contiguous(), d.float().contiguous()


def project(to_world: np.ndarray, fov_x: float, width: int, height: int, points: np.ndarray):
    """Pixel coordinates (M,2) (x right, y down, in [0, width] x [0, height] on screen) and view depth z (M,) of
    world points (M,3) seen by the viewer camera (inverse of view_rays)."""
    m = np.asarray(to_world, dtype=np.float64)
    cam = (np.asarray(points, dtype=np.float64) - m[:3, 3]) @ m[:3, :3]
    tx = math.tan(math.radians(fov_x) / 2)
    ty = tx * height / width
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = (1 - cam[:, 0] / (z * tx)) / 2
        py = (1 - cam[:, 1] / (z * ty)) / 2
    return np.stack([px * width, py * height], -1), z


def frustum_depth(cam_to_world: np.ndarray) -> float:
    """Frustum length in normalized units: FRUSTUM_DEPTH of the cameras' median distance to the centre."""
    return max(FRUSTUM_DEPTH * float(np.median(np.linalg.norm(cam_to_world[:, :3, 3], axis=1))), 0.05)


def frustum_points(c2w: np.ndarray, k: np.ndarray, width: int, height: int, depth: float):
    """(5,3): a dataset camera's centre and the corners of its image at z = depth (OpenCV camera, K with pixel
    centres at +0.5, so the image spans [0, width] x [0, height])."""
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64)
    rays = corners @ np.linalg.inv(np.asarray(k, dtype=np.float64)).T  # z = 1
    c2w = np.asarray(c2w, dtype=np.float64)
    pts = (rays * depth) @ c2w[:3, :3].T + c2w[:3, 3]
    return np.concatenate([c2w[None, :3, 3], pts])


FRUSTUM_EDGES = ((0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1))
EDGE_PIECES = 6


def frustum_segments(to_world, fov_x, width, height, cams: np.ndarray, ks: np.ndarray, image_w: int, image_h: int,
                     depth: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per dataset camera, its frustum's 8 edges as 2D segments in view pixels, each edge cut in EDGE_PIECES so
    that the surface can hide part of it: (segments (S,2,2), view depth z of their midpoints (S,)), clipped to the
    near plane (S < 8 * EDGE_PIECES where edges pass behind the viewer; 0 when the whole frustum does)."""
    m = np.asarray(to_world, dtype=np.float64)
    depth = frustum_depth(cams) if depth is None else depth
    f = np.linspace(0.0, 1.0, EDGE_PIECES + 1)[:, None]
    out = []
    for c2w, k in zip(cams, ks):
        pts = frustum_points(c2w, k, image_w, image_h, depth)
        cam = (pts - m[:3, 3]) @ m[:3, :3]
        pieces = []
        for a, b in FRUSTUM_EDGES:
            pa, pb = cam[a], cam[b]
            if pa[2] < NEAR and pb[2] < NEAR:
                continue
            if pa[2] < NEAR or pb[2] < NEAR:  # move the point behind onto the near plane
                t = (NEAR - pa[2]) / (pb[2] - pa[2])
                q = pa + t * (pb - pa)
                pa, pb = (q, pb) if pa[2] < NEAR else (pa, q)
            pieces.append(pa + f * (pb - pa))  # (EDGE_PIECES + 1, 3) along the edge
        if not pieces:
            out.append((np.zeros((0, 2, 2)), np.zeros(0)))
            continue
        along = np.stack(pieces)  # (E, P + 1, 3) camera space
        uv, _ = project(m, fov_x, width, height, along.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
        uv = uv.reshape(along.shape[0], -1, 2)
        segs = np.stack([uv[:, :-1], uv[:, 1:]], 2).reshape(-1, 2, 2)
        z = (0.5 * (along[:, :-1, 2] + along[:, 1:, 2])).reshape(-1)
        out.append((segs, z))
    return out


def dataset_fov_x(info: "RunInfo", index: int) -> float:
    return math.degrees(2 * math.atan(info.width / 2 / info.intrinsics[index, 0, 0]))


def home_view(info: "RunInfo") -> np.ndarray:
    """The viewer's first camera. A room (cameras inside the unit sphere): the first dataset camera. An object:
    the first camera's view pulled back to HOME_PULLBACK times its distance and raised HOME_ELEVATION_DEG above
    it, looking at the centre with the camera's up, so that the object and the ring of cameras are in view."""
    first = opencv_to_mitsuba(info.cam_to_world[0])
    if info.inside_out:
        return first
    eye, up = first[:3, 3], first[:3, 1]
    dist = float(np.linalg.norm(eye))
    back = eye / max(dist, 1e-9)
    side = np.cross(up, back)
    if np.linalg.norm(side) < 1e-6:
        return first
    lift = rotate(side / np.linalg.norm(side), -HOME_ELEVATION_DEG)[:3, :3]
    return look_at(lift @ back * dist * HOME_PULLBACK, np.zeros(3), up)


def shade_normals(sdf: DenseSDF, points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Normal shading (M,3) in [0,1]: the SDF's normal (central differences of the dense grid, one cell apart)
    as colour n/2 + 1/2, darkened where the surface is seen grazing, so that the shape reads."""
    h = float(2.0 / (sdf.values.shape[0] - 1))
    offsets = torch.eye(3) * h
    grad = torch.stack([sdf.query_kernel(points + o) - sdf.query_kernel(points - o) for o in offsets], -1)
    n = torch.nn.functional.normalize(grad, dim=-1)
    facing = (n * directions).sum(-1).abs()[:, None]
    return (n * 0.5 + 0.5) * (0.35 + 0.65 * facing)


# ---- the worker thread: owns the run's model -------------------------------------------------------------------

@dataclass
class RunInfo:
    """What the UI needs of a loaded run or dataset (the model stays in the worker)."""
    source: Path                 # the run folder, or the dataset folder when there is no run yet
    step: int | None             # checkpoint step (None: a dataset without a run)
    ckpt_mtime: float | None
    cam_to_world: np.ndarray     # (N,4,4) OpenCV, normalized space
    intrinsics: np.ndarray       # (N,3,3)
    width: int
    height: int
    names: list[str]
    train_ids: list[int]
    test_ids: list[int]
    inside_out: bool             # a room seen from inside (cameras within the unit sphere)


@dataclass
class TraceJob:
    generation: int
    to_world: np.ndarray
    fov_x: float
    width: int
    height: int


@dataclass
class SDFFrame:
    generation: int
    step: int
    image: np.ndarray            # (H,W,3) uint8
    depth: np.ndarray            # (H,W) float32 view depth z of the surface (inf: no hit), hides frusta behind it
    hit_fraction: float
    seconds: float
    fine: bool = True            # traced on the full SDF grid (not the first coarse look)


@dataclass
class ViewMaps:
    index: int
    step: int | None             # None: a dataset without a run (its image only)
    images: dict                 # name -> (h,w,3) uint8 (MAP_KEYS); "sampling" missing for held-out views
    heat: np.ndarray | None      # (gh, gw) the sampler's probabilities for this view (None: held-out view)
    psnr: float


class Cancelled(Exception):
    """Raised inside a job when its thread is asked to stop (the window closes): the job ends quietly."""


class JobThread(QThread):
    """A thread that runs the newest request of each kind (`handlers`: kind -> function, in priority order), one at
    a time; a failure goes to `on_error` as one line and the thread carries on."""

    def __init__(self, handlers: dict, on_error, parent=None):
        super().__init__(parent)
        self.handlers, self.on_error = handlers, on_error
        self._cond = threading.Condition()
        self._stop = False
        self._requests: dict[str, object] = {}
        self._busy = False

    def put(self, kind: str, value) -> None:
        with self._cond:
            self._requests[kind] = value
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._requests and not self._busy

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Ask the thread to finish (after the job in flight) and wait for it."""
        with self._cond:
            self._stop = True
            self._requests.clear()
            self._cond.notify()
        return self.wait(timeout_ms)

    @property
    def stopping(self) -> bool:
        return self._stop

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._requests:
                    self._cond.wait()
                if self._stop:
                    return
                kind = next(k for k in self.handlers if k in self._requests)
                value = self._requests.pop(kind)
                self._busy = True
            try:
                self.handlers[kind](value)
            except Cancelled:
                pass
            except UserError as e:
                self.on_error(str(e))
            except Exception as e:  # keep the window alive; say what failed in one line
                self.on_error(f"{kind} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            finally:
                with self._cond:
                    self._busy = False


class ReconWorker(QObject):
    """The model's side of the tab, off the UI thread, in two JobThreads: `heavy` loads a run's checkpoint (or just
    a dataset) and samples its SDF on a dense grid, renders per-view maps and exports meshes; `fast` only
    sphere-traces the dense SDF, so the view follows the mouse while a map or a mesh is being made. Newest
    request first in each."""

    loaded = Signal(object)      # RunInfo
    refined = Signal(int)        # the dense SDF of this checkpoint step is now at full resolution
    traced = Signal(object)      # SDFFrame
    maps = Signal(object)        # ViewMaps
    exported = Signal(str, object)  # path, {"vertices", "faces"}
    failed = Signal(str)

    def __init__(self, sdf_resolution: int = SDF_RESOLUTION, parent=None):
        super().__init__(parent)
        load_kernels()
        import imageio.v3 as iio  # dataset readers
        import matplotlib  # the maps' colormaps

        assert iio is not None and matplotlib.colormaps["turbo"] is not None
        for name in ("skimage.measure", "trimesh", "render.recon.monosdf", "render.recon.nerfstudio"):
            try:
                __import__(name)
            except ImportError:
                pass  # mesh export says what to install
        self.sdf_resolution = sdf_resolution
        self.state: RunState | None = None
        self.dataset = None
        self.dataset_path: Path | None = None
        self.traced_sdf: tuple[DenseSDF, int, bool] | None = None  # (dense SDF, checkpoint step, full grid)
        self.run_path: Path | None = None
        self.heavy = JobThread({"load": self._do_load, "maps": self._do_maps, "export": self._do_export},
                               self.failed.emit)
        self.fast = JobThread({"trace": self._do_trace}, self.failed.emit)

    # ---- UI thread
    def start(self) -> None:
        self.heavy.start()
        self.fast.start()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        return self.fast.stop(timeout_ms) & self.heavy.stop(timeout_ms)

    def is_running(self) -> bool:
        return self.heavy.isRunning() and self.fast.isRunning()

    def is_finished(self) -> bool:
        return self.heavy.isFinished() and self.fast.isFinished()

    def idle(self) -> bool:
        return self.heavy.idle() and self.fast.idle()

    def load_run(self, run: Path) -> None:
        self.heavy.put("load", ("run", Path(run)))

    def load_dataset(self, data: Path) -> None:
        self.heavy.put("load", ("dataset", Path(data)))

    def trace(self, job: TraceJob) -> None:
        self.fast.put("trace", job)

    def render_maps(self, index: int) -> None:
        self.heavy.put("maps", int(index))

    def export(self, path: Path) -> None:
        self.heavy.put("export", Path(path))

    # ---- the threads
    def _dataset_for(self, path: Path):
        path = Path(path).resolve()
        if self.dataset is None or self.dataset_path != path:
            self.dataset, self.dataset_path = load_dataset(path), path
        return self.dataset

    def _do_load(self, what) -> None:
        kind, path = what
        if kind == "dataset":
            ds = self._dataset_for(path)
            self.state, self.traced_sdf = None, None
            train, test = ds.split()
            self.loaded.emit(self._info(path, ds, None, None, train, test))
            return
        ckpt = path / "ckpt" / "latest.pt"
        mtime = ckpt.stat().st_mtime if ckpt.is_file() else None
        ds = self._dataset_for(Path(load_config_file(path / "config.yaml").data))
        state = load_run_state(path, dataset=ds)
        first = self.traced_sdf is None or self.run_path != path
        self.state, self.run_path = state, path
        # A first look from a grid half as fine (~8x fewer SDF evaluations), then the full grid; a reload of the
        # same run (a newer checkpoint) keeps showing the previous SDF until the full grid is ready.
        for resolution in ((self.sdf_resolution // 2, self.sdf_resolution) if first else (self.sdf_resolution,)):
            volume, _ = sdf_lattice(self._cancellable(state.model.sdf), resolution + 1)
            fine = resolution == self.sdf_resolution
            self.traced_sdf = (DenseSDF(torch.from_numpy(volume), [-1, -1, -1, 1, 1, 1]), state.step, fine)
            if fine and first:
                self.refined.emit(state.step)
            else:
                self.loaded.emit(self._info(path, ds, state.step, mtime, state.train_ids, state.test_ids))

    def _cancellable(self, sdf_fn):
        """sdf_fn that gives up (Cancelled) between chunks once the heavy thread is asked to stop."""
        def fn(points):
            if self.heavy.stopping:
                raise Cancelled
            return sdf_fn(points)
        return fn

    @staticmethod
    def _info(source, ds, step, mtime, train, test) -> RunInfo:
        c2w = ds.cam_to_world.double().cpu().numpy()
        return RunInfo(Path(source), step, mtime, c2w, ds.intrinsics.double().cpu().numpy(), ds.width, ds.height,
                       list(ds.names), list(train), list(test),
                       bool(np.median(np.linalg.norm(c2w[:, :3, 3], axis=1)) < 1.0))

    def _do_trace(self, job: TraceJob) -> None:
        if self.traced_sdf is None:
            return
        sdf, step, fine = self.traced_sdf
        t0 = time.perf_counter()
        o, d = view_rays(job.to_world, job.fov_x, job.width, job.height)
        r = sdf.sphere_trace(o, d, max_steps=256, eps=1e-3, step_scale=0.9)
        image = np.broadcast_to(BACKGROUND, (job.height * job.width, 3)).copy()
        forward = torch.from_numpy(np.asarray(job.to_world, dtype=np.float64)[:3, 2]).float()
        z = torch.where(r.hit, r.t * (d @ forward), torch.full_like(r.t, math.inf))
        if r.hit.any():
            p = o[r.hit] + r.t[r.hit, None] * d[r.hit]
            image[r.hit.numpy()] = (shade_normals(sdf, p, d[r.hit]).clamp(0, 1) * 255 + 0.5).byte().numpy()
        self.traced.emit(SDFFrame(job.generation, step, image.reshape(job.height, job.width, 3),
                                  z.reshape(job.height, job.width).numpy(), float(r.hit.float().mean()),
                                  time.perf_counter() - t0, fine))

    def _do_maps(self, index: int) -> None:
        s = self.state
        if s is None:  # a dataset without a run: its image only
            if self.dataset is not None:
                scale = min(1.0, MAP_WIDTH / self.dataset.width)
                rgb = (dataset_rgb(self.dataset, index, scale).clamp(0, 1) * 255 + 0.5).byte().numpy()
                self.maps.emit(ViewMaps(index, None, {"gt": rgb}, None, math.nan))
            return
        scale = min(1.0, MAP_WIDTH / s.dataset.width)
        images, psnr = view_images(s.model, s.grid, s.dataset, index, render_options(s.config, s.progress, s.model.sdf_net.sign < 0), scale)
        heat = None
        if index in s.train_ids:
            heat = s.sampler.heat_map(s.train_ids.index(index)).numpy().copy()
            images["sampling"] = heat_image(heat, upscale=max(1, round(s.sampler.cell * scale)))
        self.maps.emit(ViewMaps(index, s.step, images, heat, psnr))

    def _do_export(self, path: Path) -> None:
        s = self.state
        if s is None:
            raise UserError("export mesh: no checkpoint loaded yet")
        try:
            summary = export_mesh(s.model, s.dataset, path, s.config.mesh_resolution)
        except OSError as e:
            raise UserError(f"{path}: cannot write the mesh ({e.strerror or e})") from None
        self.exported.emit(str(path), summary)


# ---- widgets -----------------------------------------------------------------------------------------------------

class LossPlot(QWidget):
    """Loss curves against step, log-scaled y (every positive numeric field but step/time/lr)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
        self.setMinimumSize(420, 220)

    def series(self) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        for r in self.rows:
            for k, v in r.items():
                if k not in NOT_PLOTTED and isinstance(v, (int, float)) and not isinstance(v, bool) \
                        and v > 0 and math.isfinite(v):
                    out.setdefault(k, []).append((float(r["step"]), math.log10(v)))
        return out

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.white)
        series = self.series()
        left, top, right, bottom = 60, 16, self.width() - 130, self.height() - 36
        p.setPen(QPen(Qt.GlobalColor.black, 1))
        p.drawRect(left, top, right - left, bottom - top)
        if not series:
            p.drawText(left + 10, top + 20, "waiting for metrics.jsonl…")
            p.end()
            return
        xs = [x for s in series.values() for x, _ in s]
        ys = [y for s in series.values() for _, y in s]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
        y1 = max(y1, y0 + 1)
        sx = lambda x: left + (x - x0) / (x1 - x0) * (right - left)  # noqa: E731
        sy = lambda y: bottom - (y - y0) / (y1 - y0) * (bottom - top)  # noqa: E731
        for e in range(y0, y1 + 1):  # decades
            p.setPen(QPen(QColor("#dddddd"), 1))
            p.drawLine(QPointF(left, sy(e)), QPointF(right, sy(e)))
            p.setPen(QPen(Qt.GlobalColor.black, 1))
            p.drawText(QPointF(8, sy(e) + 4), f"1e{e}")
        p.drawText(QPointF(left, bottom + 16), f"{x0:g}")
        p.drawText(QPointF(right - 40, bottom + 16), f"{x1:g}")
        p.drawText(QPointF((left + right) / 2 - 12, bottom + 30), "step")
        for i, (name, pts) in enumerate(sorted(series.items())):
            color = QColor(COLORS[i % len(COLORS)])
            p.setPen(QPen(color, 2))
            p.drawPolyline(QPolygonF([QPointF(sx(x), sy(y)) for x, y in pts]))
            p.drawText(QPointF(right + 10, top + 14 + 16 * i), f"{name} {10 ** pts[-1][1]:.3g}")
        p.end()


class SDFView(ImageView):
    """The sphere-traced SDF, with the dataset cameras' frusta drawn over it (train white, held-out orange, the
    selected view yellow; pieces behind the surface faint)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frusta: list[tuple[np.ndarray, np.ndarray]] = []  # per dataset camera: frustum_segments' pieces
        self.frustum_colors: list[QColor] = []
        self.depth: np.ndarray | None = None  # the traced frame's view depth (H,W), same pixels as the frusta
        self.show_frusta = True
        self.setMinimumSize(400, 300)

    def hidden(self, segs: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(S,) bool: the segment's midpoint lies behind the traced surface."""
        if self.depth is None or not len(z):
            return np.zeros(len(z), dtype=bool)
        h, w = self.depth.shape
        mid = segs.mean(1)
        u, v = np.floor(mid[:, 0]).astype(int), np.floor(mid[:, 1]).astype(int)
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        surface = np.full(len(z), np.inf)
        surface[inside] = self.depth[v[inside], u[inside]]
        return surface < z * 0.99

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.show_frusta or self.image is None:
            return
        s = self.image_scale()
        ox = (self.width() - self.image.width() * s) / 2
        oy = (self.height() - self.image.height() * s) / 2
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setClipRect(int(ox), int(oy), int(self.image.width() * s), int(self.image.height() * s))
        for (segs, z), color in zip(self.frusta, self.frustum_colors):
            faint = QColor(color)
            faint.setAlpha(60)
            for (a, b), behind in zip(segs, self.hidden(segs, z)):
                p.setPen(QPen(faint if behind else color, 1.5))
                p.drawLine(QPointF(ox + a[0] * s, oy + a[1] * s), QPointF(ox + b[0] * s, oy + b[1] * s))
        p.end()


class ReconTab(QWidget):
    """A run folder (or a dataset folder, from which a run can be started), watched live: loss curves re-read and
    the checkpoint's modification time polled every `poll_ms`; a newer checkpoint is reloaded."""

    ready = Signal()           # the SDF view and the current view's maps are on screen (screenshots)
    error = Signal(str)        # one line for the window's error dialog

    def __init__(self, poll_ms: int = 1000, sdf_resolution: int = SDF_RESOLUTION, trace_width: int = TRACE_WIDTH,
                 parent=None):
        super().__init__(parent)
        self.run: Path | None = None
        self.data: Path | None = None
        self.offset = 0
        self.info: RunInfo | None = None
        self.camera: OrbitCamera | None = None
        self.trace_width = trace_width
        self.generation = 0
        self.last_frame: SDFFrame | None = None
        self.last_maps: ViewMaps | None = None
        self.loaded_mtime: float | None = None
        self.process: QProcess | None = None
        self._process_config: str | None = None
        self._stopping = False
        self._ready_sent = False

        self.title = QLabel("no run")
        self.title.setWordWrap(True)
        self.sdf_view = SDFView()
        self.frusta_box = QCheckBox("cameras")
        self.frusta_box.setChecked(True)
        self.frusta_box.setToolTip("Draw the dataset cameras as frusta (train white, held-out orange)")
        self.reset_button = QPushButton("Reset camera")
        self.export_button = QPushButton("Export mesh…")
        self.export_button.setToolTip("Marching cubes of the current SDF, culled to the cameras, in world units (.ply)")
        self.export_button.setEnabled(False)
        self.plot = LossPlot()
        self.view_box = QComboBox()
        self.view_box.setToolTip("Dataset view whose maps are shown")
        self.look_button = QPushButton("Look through")
        self.look_button.setToolTip("Move the SDF view's camera to this dataset camera (its pose and field of view)")
        self.map_labels: dict[str, QLabel] = {}
        self.map_note = QLabel("")
        self.map_note.setWordWrap(True)
        # Start a run (dataset folders only).
        self.start_panel = QWidget()
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("Run folder for `radiant reconstruct --out` (must not exist or be empty)")
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 24 * 60)
        self.minutes.setValue(10.0)
        self.minutes.setSuffix(" min")
        self.start_button = QPushButton("Start reconstruction")
        start = QHBoxLayout(self.start_panel)
        start.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("output"), self.out_edit, self.minutes, self.start_button):
            start.addWidget(w)
        self.start_panel.hide()

        bar = QHBoxLayout()
        for w in (self.frusta_box, self.reset_button, self.export_button):
            bar.addWidget(w)
        bar.addStretch(1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(bar)
        lv.addWidget(self.sdf_view, 1)
        lv.addWidget(self.start_panel)

        maps = QWidget()
        grid = QGridLayout(maps)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("view"), 0, 0)
        grid.addWidget(self.view_box, 0, 1, 1, 2)
        grid.addWidget(self.look_button, 0, 3)
        for n, (key, caption) in enumerate(MAP_KEYS):
            label = QLabel()
            label.setMinimumSize(MAP_WIDTH, MAP_WIDTH * 3 // 4)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background: #202024; color: #bbbbbb")
            self.map_labels[key] = label
            cell = QVBoxLayout()
            cell.addWidget(QLabel(caption))
            cell.addWidget(label)
            grid.addLayout(cell, 1 + n // 4, n % 4)
        grid.addWidget(self.map_note, 3, 0, 1, 4)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plot)
        right.addWidget(maps)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(split, 1)

        self.worker = ReconWorker(sdf_resolution)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.refined.connect(lambda _step: self.request_trace())
        self.worker.traced.connect(self._on_traced)
        self.worker.maps.connect(self._on_maps)
        self.worker.exported.connect(self._on_exported)
        self.worker.failed.connect(self._on_failed)
        self.worker.start()

        self.frusta_box.toggled.connect(self._toggle_frusta)
        self.reset_button.clicked.connect(self.reset_camera)
        self.export_button.clicked.connect(self.export_dialog)
        self.view_box.currentIndexChanged.connect(self._view_changed)
        self.look_button.clicked.connect(lambda: self.look_through(self.view_box.currentData()))
        self.start_button.clicked.connect(self._start_clicked)
        v = self.sdf_view
        v.orbit.connect(lambda dx, dy: self._move("orbit", dx, dy))
        v.pan.connect(lambda dx, dy: self._move("pan", dx, dy))
        v.zoom.connect(lambda s: self._move("zoom", s))
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)

    # ---- opening
    def open_run(self, run: Path) -> None:
        self.run, self.offset, self.plot.rows = Path(run), 0, []
        self.loaded_mtime = None
        if self.process is None:  # a run opened by the user, not the one started here from a dataset
            self.data = None
            self.start_panel.hide()
        self.poll()
        self.timer.start()

    def open_dataset(self, data: Path) -> None:
        """A dataset folder: its cameras, and the panel that starts `radiant reconstruct` on it."""
        self.timer.stop()
        self.run, self.plot.rows = None, []
        self.plot.update()
        self.data = Path(data)
        self.title.setText(f"dataset {self.data}: start a reconstruction below")
        out = self.data.parent / f"{self.data.name}_run"
        n = 2
        while out.exists():
            out, n = self.data.parent / f"{self.data.name}_run{n}", n + 1
        self.out_edit.setText(str(out))
        self.start_panel.show()
        self.worker.load_dataset(self.data)

    def has_checkpoint(self) -> bool:
        return self.run is not None and (self.run / "ckpt" / "latest.pt").is_file()

    def poll(self) -> None:
        if self.run is None:
            return
        rows, self.offset = read_new_metrics(self.run / "metrics.jsonl", self.offset)
        if rows:
            self.plot.rows.extend(rows)
            self.plot.update()
        last = self.plot.rows[-1] if self.plot.rows else None
        text = f"{self.run}: " + (f"step {last['step']}, {len(self.plot.rows)} logged steps" if last
                                  else "no metrics yet")
        if self.info is not None and self.info.step is not None:
            text += f"  |  SDF of checkpoint step {self.info.step}"
            if self.last_frame is not None:
                h, w = self.last_frame.image.shape[:2]
                text += f" ({w}x{h} sphere-traced in {1000 * self.last_frame.seconds:.0f} ms)"
        if self.process is not None:
            text += "  |  training (started here)"
        self.title.setText(text)
        ckpt = self.run / "ckpt" / "latest.pt"
        try:
            mtime = ckpt.stat().st_mtime
        except OSError:
            return
        if (self.loaded_mtime is None or mtime > self.loaded_mtime) and self.worker.idle() and \
                (self.run / "config.yaml").is_file():
            self.loaded_mtime = mtime
            self.worker.load_run(self.run)

    # ---- worker results
    def _on_loaded(self, info: RunInfo) -> None:
        first = self.info is None or self.info.names != info.names
        self.info = info
        if info.ckpt_mtime is not None:
            self.loaded_mtime = max(self.loaded_mtime or 0.0, info.ckpt_mtime)
        self.export_button.setEnabled(info.step is not None)
        if first or self.camera is None:
            self.camera = OrbitCamera(home_view(info), dataset_fov_x(info, 0), center=np.zeros(3))
            self.view_box.blockSignals(True)
            self.view_box.clear()
            for i, name in enumerate(info.names):
                self.view_box.addItem(f"{name} ({'held-out' if i in info.test_ids else 'train'})", i)
            if info.train_ids:  # a training view first: it has a pixel-sampling map
                self.view_box.setCurrentIndex(info.train_ids[0])
            self.view_box.blockSignals(False)
        self.update_frusta()
        if info.step is None:  # a dataset: no SDF yet, the cameras over an empty view, the dataset's images
            self._show_empty()
            self.request_maps()
            return
        self.request_trace()
        self.request_maps()
        self.poll()

    def _show_empty(self) -> None:
        w, h = self.view_size()
        self.sdf_view.set_image(to_qimage(np.broadcast_to(BACKGROUND, (h, w, 3)).copy()))

    def _on_traced(self, frame: SDFFrame) -> None:
        if self.last_frame is not None and frame.generation < self.last_frame.generation:
            return
        first = self.last_frame is None
        self.last_frame = frame
        self.sdf_view.depth = frame.depth
        self.sdf_view.set_image(to_qimage(frame.image))
        if first:
            self.poll()
        self.ready_check()

    def _on_maps(self, maps: ViewMaps) -> None:
        self.last_maps = maps
        for key, label in self.map_labels.items():
            img = maps.images.get(key)
            if img is None:
                label.setPixmap(QPixmap())
                label.setText("held-out view:\nnever sampled" if key == "sampling" and maps.step is not None
                              else "")
                continue
            pix = QPixmap.fromImage(to_qimage(img))
            label.setPixmap(pix.scaled(MAP_WIDTH, MAP_WIDTH * 3 // 4, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.FastTransformation))
        name = self.info.names[maps.index] if self.info else str(maps.index)
        if maps.step is None:
            self.map_note.setText(f"view {name}: the dataset's image; the model's maps come with a checkpoint")
            self.ready_check()
            return
        uniform = maps.heat is not None and np.ptp(maps.heat) <= 1e-9 * maps.heat.max()
        self.map_note.setText(f"view {name}, checkpoint step {maps.step}: PSNR {maps.psnr:.2f} dB; sampling "
                              "P = (1 - r) U / sum U + r / N over cells of the uncertainty map (DebSDF)"
                              + ("; uniform so far (no refresh yet)" if uniform else ""))
        self.ready_check()

    def ready_check(self) -> None:
        done = self.info is not None and self.last_maps is not None and \
            (self.info.step is None or (self.last_frame is not None and self.last_frame.fine))
        if done and not self._ready_sent:
            self._ready_sent = True
            self.ready.emit()

    def _on_exported(self, path: str, summary) -> None:
        self.title.setText(f"wrote {path} ({summary['vertices']} vertices, {summary['faces']} faces, world units)")

    def _on_failed(self, message: str) -> None:
        self.error.emit(message)

    # ---- camera and requests
    def view_size(self) -> tuple[int, int]:
        if self.info is None:
            return self.trace_width, self.trace_width * 3 // 4
        return self.trace_width, max(1, round(self.trace_width * self.info.height / self.info.width))

    def request_trace(self) -> None:
        if self.camera is None or self.info is None or self.info.step is None:
            return
        self.generation += 1
        w, h = self.view_size()
        self.worker.trace(TraceJob(self.generation, self.camera.to_world, self.camera.fov_x, w, h))

    def request_maps(self) -> None:
        if self.info is not None and self.view_box.count():
            self.worker.render_maps(int(self.view_box.currentData()))

    def update_frusta(self) -> None:
        if self.info is None or self.camera is None:
            return
        w, h = self.view_size()
        self.sdf_view.frusta = frustum_segments(self.camera.to_world, self.camera.fov_x, w, h, self.info.cam_to_world,
                                                self.info.intrinsics, self.info.width, self.info.height)
        selected = self.view_box.currentData()
        self.sdf_view.frustum_colors = [QColor("#ffd400") if i == selected else
                                        QColor("#ff8c1a") if i in self.info.test_ids else QColor("#f0f0f0")
                                        for i in range(len(self.info.names))]
        self.sdf_view.update()

    def _move(self, how: str, *args) -> None:
        if self.camera is None:
            return
        if how == "zoom":
            self.camera.zoom(*args)
        else:
            getattr(self.camera, how)(*args, self.view_size()[0])
        self.update_frusta()
        self.request_trace()

    def reset_camera(self) -> None:
        if self.camera is not None:
            self.camera.fov_x = dataset_fov_x(self.info, 0)
            self.camera.reset()
            self.update_frusta()
            self.request_trace()

    def look_through(self, index) -> None:
        """The SDF view from dataset camera `index` (Reset camera goes back to the first view)."""
        if self.camera is None or index is None:
            return
        home = self.camera.home
        self.camera.home = opencv_to_mitsuba(self.info.cam_to_world[index])
        self.camera.fov_x = dataset_fov_x(self.info, index)
        self.camera.reset()
        self.camera.home = home
        self.update_frusta()
        self.request_trace()

    def _toggle_frusta(self, on: bool) -> None:
        self.sdf_view.show_frusta = on
        self.sdf_view.update()

    def _view_changed(self, _index: int) -> None:
        self.update_frusta()
        self.request_maps()

    # ---- mesh export
    def export_mesh(self, path) -> None:
        """Writes the current SDF's mesh (world units, as `radiant reconstruct`'s mesh.ply) in the worker thread."""
        path = Path(path)
        if path.suffix.lower() != ".ply":
            raise UserError(f"{path}: unsupported extension {path.suffix!r}; expected .ply")
        if self.info is None or self.info.step is None:
            raise UserError("export mesh: no checkpoint loaded yet")
        self.title.setText(f"exporting {path}…")
        self.worker.export(path)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export mesh", "", "PLY mesh (*.ply)")
        if path:
            try:
                self.export_mesh(path)
            except UserError as e:
                self.error.emit(str(e))

    # ---- starting a run from a dataset
    def reconstruct_command(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "render.cli", "reconstruct", str(self.data), "--out", str(out), "--quiet",
                "--config", self._process_config]

    def start_reconstruction(self, out, minutes: float) -> None:
        """Runs `radiant reconstruct DATA --out OUT --config C` as a subprocess, C giving the budget (`minutes`) and
        a checkpoint every LIVE_CKPT_MINUTES, and watches OUT live; its one-line error goes to the error dialog."""
        if self.data is None:
            raise UserError("start reconstruction: open a dataset folder first")
        if self.process is not None:
            raise UserError("start reconstruction: a reconstruction started here is still running")
        out = Path(out).expanduser()
        if not str(out).strip() or out == Path("."):
            raise UserError("start reconstruction: expected an output folder")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"{out}: exists and is not empty; choose a new output folder")
        fd, self._process_config = tempfile.mkstemp(prefix="radiant-view-", suffix=".yaml")
        with os.fdopen(fd, "w") as fh:  # JSON scalars are YAML
            fh.write("".join(f"{k}: {json.dumps(v)}\n" for k, v in live_config(minutes).items()))
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.process.finished.connect(self._process_finished)
        cmd = self.reconstruct_command(out)
        self.process.start(cmd[0], cmd[1:])
        self.start_button.setEnabled(False)
        self.start_panel.setToolTip(" ".join(cmd))
        self.open_run(out)

    def _start_clicked(self) -> None:
        try:
            self.start_reconstruction(self.out_edit.text(), self.minutes.value())
        except UserError as e:
            self.error.emit(str(e))

    def _process_finished(self, code: int, _status) -> None:
        proc, self.process = self.process, None
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip().splitlines() if proc else []
        if self._process_config:
            Path(self._process_config).unlink(missing_ok=True)
            self._process_config = None
        self.start_button.setEnabled(True)
        if code != 0 and not self._stopping:  # (an interrupt from shutdown() is not an error)
            line = err[-1] if err else f"radiant reconstruct exited with code {code}"
            self.error.emit(line.removeprefix("error: "))
        self.poll()

    def shutdown(self) -> None:
        """Stops the worker thread and a reconstruction started here (SIGINT: it checkpoints, so
        `radiant reconstruct --resume` continues it)."""
        self.timer.stop()
        self._stopping = True
        proc = self.process
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            try:
                os.kill(int(proc.processId()), signal.SIGINT)
            except OSError:
                pass
            if not proc.waitForFinished(30_000):
                proc.kill()
                proc.waitForFinished(5_000)
        self.worker.stop()
