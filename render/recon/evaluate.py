"""Mesh-vs-ground-truth geometry metrics: accuracy, completeness, chamfer, precision, recall, F-score.

Protocol (MonoSDF's Replica/ScanNet evaluation, NICE-SLAM's culling): sample points uniformly on both surfaces;
with a dataset, keep on each mesh only the points visible from at least one of its cameras (inside the image,
in front of the camera, and the first surface of THAT mesh along the camera ray, tested with our BVH), so that
parts no camera saw do not count against either mesh; then nearest neighbours with scipy's cKDTree:
    accuracy     = mean over predicted points of the distance to the GT points       (lower is better)
    completeness = mean over GT points of the distance to the predicted points       (lower is better)
    chamfer      = (accuracy + completeness) / 2
    precision@t  = fraction of predicted points within t of GT; recall@t likewise from GT to prediction;
    F@t          = 2 P R / (P + R)                      (Knapitsch et al. 2017, Tanks and Temples)
Distances and thresholds are in the meshes' units: world units, metres for the bundled scenes, so the defaults
5 cm and 2 cm are MonoSDF's/NeuralRecon's. For a scene in other units pass thresholds in those units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

DEFAULT_THRESHOLDS = (0.05, 0.02)


@dataclass
class EvalResult:
    accuracy: float
    completeness: float
    chamfer: float
    precision: dict[str, float]        # threshold (as text, e.g. "0.05") -> value
    recall: dict[str, float]
    fscore: dict[str, float]
    pred_points: int                   # points kept after culling
    gt_points: int
    culled: bool
    thresholds: list[float] = field(default_factory=list)
    # thin structures (gt_thin.ply: legs, posts, poles): how much of them the prediction recovers
    thin_recall: dict[str, float] | None = None
    thin_completeness: float | None = None
    thin_points: int = 0
    # objects (gt_objects.ply: every shape but the big flat ones, walls, floor, ceiling): furniture, likewise
    objects_recall: dict[str, float] | None = None
    objects_completeness: float | None = None
    objects_points: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def load_mesh(path: Path, what: str):
    """A triangle mesh (trimesh.Trimesh) with finite vertices and a positive area; UserError otherwise."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds for a broken file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{what} {path}: cannot read as a triangle mesh (ply/obj/off/stl/glb): {msg}")
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UserError(f"{what} {path}: expected a triangle mesh with faces, found none (a point cloud or empty file?)")
    v = np.asarray(mesh.vertices)
    if not np.isfinite(v).all():
        raise UserError(f"{what} {path}: expected finite vertex coordinates, found NaN or inf")
    if not mesh.area > 0:
        raise UserError(f"{what} {path}: the mesh has zero surface area (degenerate triangles only)")
    return mesh


def sample_surface(mesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """count points uniformly by area on the mesh (seeded), with their triangle ids."""
    import trimesh

    pts, face = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(pts, dtype=np.float64), np.asarray(face)


def world_cameras(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(K (N,3,3), OpenCV camera-to-world in WORLD units (N,4,4)) of a ReconDataset."""
    m = dataset.normalization.double().cpu().numpy()
    c2w = dataset.cam_to_world.double().cpu().numpy()
    s = float(np.cbrt(np.linalg.det(m[:3, :3])))
    out = np.repeat(np.eye(4)[None], len(c2w), 0)
    out[:, :3, :3] = (m[:3, :3] / s) @ c2w[:, :3, :3]
    out[:, :3, 3] = c2w[:, :3, 3] @ m[:3, :3].T + m[:3, 3]
    return dataset.intrinsics.double().cpu().numpy(), out


def visible_points(points: np.ndarray, mesh, k: np.ndarray, c2w: np.ndarray, width: int, height: int,
                   dataset=None, rel_eps: float = 0.005, abs_eps: float = 1e-3) -> np.ndarray:
    """(P,) bool: seen by at least one camera: projects inside the image (undistorted K, or the dataset's camera
    model), in front of the camera, and not occluded by the mesh itself (the BVH's closest hit along the camera
    ray is not more than rel_eps * distance + abs_eps in front of the point)."""
    from ..kernels.bvh import BVH

    bvh = BVH(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32))
    seen = np.zeros(len(points), dtype=bool)
    for i in range(len(c2w)):
        todo = np.flatnonzero(~seen)
        if len(todo) == 0:
            break
        p = points[todo]
        cam = (p - c2w[i, :3, 3]) @ c2w[i, :3, :3]   # world -> camera (OpenCV)
        z = cam[:, 2]
        front = z > 1e-6
        xy = cam[:, :2] / np.where(front, z, 1.0)[:, None]
        if dataset is not None and dataset.camera_model != "PINHOLE" and dataset.distortion is not None:
            from .dataset import distort_fisheye, distort_opencv

            dist = dataset.distortion[i].double().expand(len(xy), -1)
            fn = distort_opencv if dataset.camera_model == "OPENCV" else distort_fisheye
            xy = fn(torch.from_numpy(xy), dist).numpy()
        uv = xy @ k[i, :2, :2].T + k[i, :2, 2]
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] <= width) & (uv[:, 1] >= 0) & (uv[:, 1] <= height)
        cand = np.flatnonzero(inside)
        if len(cand) == 0:
            continue
        d = p[cand] - c2w[i, :3, 3]
        dist = np.linalg.norm(d, axis=1)
        o = torch.from_numpy(np.broadcast_to(c2w[i, :3, 3], d.shape).astype(np.float32)).contiguous()
        dirs = torch.from_numpy((d / dist[:, None]).astype(np.float32))
        t = bvh.closest_hit(o, dirs).t.double().numpy()
        ok = t >= dist * (1 - rel_eps) - abs_eps
        seen[todo[cand[ok]]] = True
    return seen


def auto_point_count(mesh, spacing: float, lo: int = 10_000, hi: int = 2_000_000) -> int:
    """Points for a mean spacing on the surface: with density 1/spacing^2 a point's nearest independent sample of
    the same surface is farther than 2*spacing with probability exp(-4 pi) ~ 3.5e-6 (Poisson disk), so identical
    meshes score F ~ 1 at thresholds >= 2 * spacing instead of being penalised by sparse sampling."""
    return int(min(max(mesh.area / spacing ** 2, lo), hi))


def ground_truth_parts(gt) -> dict:
    """{"thin": path or None, "objects": path or None}: make-dataset's gt_thin.ply / gt_objects.ply beside a gt.ply."""
    gt = Path(gt)
    return {name: (gt.parent / f"gt_{name}.ply") if gt.name == "gt.ply" and (gt.parent / f"gt_{name}.ply").is_file()
            else None for name in ("thin", "objects")}


def evaluate_meshes(pred, gt, dataset=None, thresholds=DEFAULT_THRESHOLDS, num_points: int | None = None,
                    seed: int = 0, thin=None, objects=None) -> EvalResult:
    """Metrics of mesh `pred` against `gt` (paths or trimesh meshes, same units). With a ReconDataset, both point
    sets are culled to what its cameras see (see the module docstring). num_points: per mesh; None samples each
    surface at a spacing of half the smallest threshold (auto_point_count), capped at 2M points. thin: the GT's
    thin structures (gt_thin.ply from make-dataset, a subset of gt): adds recall/completeness on them alone, since
    thin parts are too small a share of the area to move the whole-scene F-score; objects (gt_objects.ply) likewise
    for the furniture, which a room's walls outweigh."""
    from scipy.spatial import cKDTree

    thresholds = [float(t) for t in thresholds]
    if not thresholds or any(not (t > 0 and math.isfinite(t)) for t in thresholds):
        raise UserError(f"--threshold: expected positive distances, got {thresholds}")
    if num_points is not None and num_points < 1:
        raise UserError(f"--points: expected a positive count, got {num_points}")
    pred_mesh = pred if not isinstance(pred, (str, Path)) else load_mesh(pred, "mesh")
    gt_mesh = gt if not isinstance(gt, (str, Path)) else load_mesh(gt, "ground truth")
    parts = {name: m if not isinstance(m, (str, Path)) else load_mesh(m, f"{name} ground truth")
             for name, m in (("thin", thin), ("objects", objects)) if m is not None}
    spacing = min(thresholds) / 2
    pred_pts, _ = sample_surface(pred_mesh, num_points or auto_point_count(pred_mesh, spacing), seed)
    gt_pts, _ = sample_surface(gt_mesh, num_points or auto_point_count(gt_mesh, spacing), seed + 1)
    part_pts = {name: sample_surface(m, auto_point_count(m, spacing / 2, lo=1000), seed + 2 + i)[0]
                for i, (name, m) in enumerate(parts.items())}
    if dataset is not None:
        k, c2w = world_cameras(dataset)
        for name, pts in part_pts.items():  # occluded by the whole GT, not only by the part's other shapes
            if len(pts):
                part_pts[name] = pts[visible_points(pts, gt_mesh, k, c2w, dataset.width, dataset.height, dataset)]
        pred_pts = pred_pts[visible_points(pred_pts, pred_mesh, k, c2w, dataset.width, dataset.height, dataset)]
        gt_pts = gt_pts[visible_points(gt_pts, gt_mesh, k, c2w, dataset.width, dataset.height, dataset)]
        for name, pts in (("mesh", pred_pts), ("ground truth", gt_pts)):
            if len(pts) == 0:
                raise UserError(f"--data {dataset.source}: no point of the {name} is visible from the dataset's "
                                "cameras; are the mesh and the dataset in the same world units and frame?")
    d_pred = cKDTree(gt_pts).query(pred_pts, workers=-1)[0]    # accuracy side: prediction -> GT
    d_gt = cKDTree(pred_pts).query(gt_pts, workers=-1)[0]      # completeness side: GT -> prediction
    acc, comp = float(d_pred.mean()), float(d_gt.mean())
    prec, rec, fs = {}, {}, {}
    for t in thresholds:
        key = f"{t:g}"
        p, r = float((d_pred < t).mean()), float((d_gt < t).mean())
        prec[key], rec[key] = p, r
        fs[key] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    result = EvalResult(accuracy=acc, completeness=comp, chamfer=(acc + comp) / 2, precision=prec, recall=rec,
                        fscore=fs, pred_points=len(pred_pts), gt_points=len(gt_pts), culled=dataset is not None,
                        thresholds=thresholds)
    for name, pts in part_pts.items():
        if len(pts):
            d = cKDTree(pred_pts).query(pts, workers=-1)[0]
            setattr(result, f"{name}_recall", {f"{t:g}": float((d < t).mean()) for t in thresholds})
            setattr(result, f"{name}_completeness", float(d.mean()))
            setattr(result, f"{name}_points", len(pts))
    return result


def print_table(result: EvalResult, title: str = "geometry") -> None:
    """A rich table: one row per metric, thresholds in the metric name."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("accuracy", f"{result.accuracy:.4f}")
    table.add_row("completeness", f"{result.completeness:.4f}")
    table.add_row("chamfer", f"{result.chamfer:.4f}")
    for key in result.fscore:
        table.add_row(f"precision@{key}", f"{result.precision[key]:.4f}")
        table.add_row(f"recall@{key}", f"{result.recall[key]:.4f}")
        table.add_row(f"F-score@{key}", f"{result.fscore[key]:.4f}")
    for name in ("thin", "objects"):
        if getattr(result, f"{name}_recall") is not None:
            table.add_row(f"{name} completeness", f"{getattr(result, f'{name}_completeness'):.4f}")
            for key, v in getattr(result, f"{name}_recall").items():
                table.add_row(f"{name} recall@{key}", f"{v:.4f}")
    table.caption = (f"{result.pred_points} / {result.gt_points} points (mesh / GT)"
                     + (", culled to the cameras' view" if result.culled else ", no culling"))
    Console().print(table)
