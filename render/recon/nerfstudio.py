"""nerfstudio transforms.json datasets: intrinsics (shared or per frame), OpenGL camera-to-world, priors, masks.

Conventions follow nerfstudio's nerfstudio_dataparser.py and cameras/camera_utils.py: frames sorted by file_path;
fl_x, fl_y, cx, cy, w, h at the top level (shared) or per frame; camera_model PINHOLE (SIMPLE_PINHOLE), OPENCV
(k1, k2, p1, p2 and optional k3, k4 of the radial polynomial) or OPENCV_FISHEYE (k1..k4); pixel centres at +0.5
(nerfstudio's get_image_coords offset); `transform_matrix` is camera-to-world in OpenGL axes (x right, y up,
z back), converted here to OpenCV by negating the y and z columns. `applied_transform` (what ns-process-data
applied to the poses) is recorded but not undone: poses are used as given. `depth_file_path` is metric depth
times `depth_unit_scale_factor` (default 1e-3, mm -> m, as nerfstudio); `mono_depth_path` / `mono_normal_path`
are sdfstudio-style .npy priors (H x W depth, 3 x H x W normals in [0,1], camera frame). All paths must stay
inside the dataset folder.

Normalization (no scale_mat in this format): a top-level `radiant_normalization` (4x4 normalized -> world,
written by `radiant make-dataset` so both formats of one dataset agree), else the bounding sphere of
`ply_file_path` points or back-projected metric depth, else the cameras' frusta (dataset.fit_unit_sphere).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .dataset import (DatasetError, ReconDataset, as_depth, as_normals, check_intrinsics, fit_unit_sphere,
                      normalize_poses, read_mask, read_npy, read_raw_image, read_rgb, similarity_parts, stack_optional)

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
MODEL_ALIASES = {"PINHOLE": "PINHOLE", "SIMPLE_PINHOLE": "PINHOLE", "OPENCV": "OPENCV",
                 "OPENCV_FISHEYE": "OPENCV_FISHEYE"}
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
DISTORTION_KEYS = {"OPENCV": ("k1", "k2", "p1", "p2", "k3", "k4"), "OPENCV_FISHEYE": ("k1", "k2", "k3", "k4")}


def _number(value, what: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{what}: expected a number, got {value!r}")
    if integer and (not float(value).is_integer() or value <= 0):
        raise DatasetError(f"{what}: expected a positive integer, got {value!r}")
    if not np.isfinite(value):
        raise DatasetError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _inside(folder: Path, rel, what: str) -> Path:
    if not isinstance(rel, str) or not rel:
        raise DatasetError(f"{what}: expected a relative file path string, got {rel!r}")
    p = Path(rel)
    resolved = (folder / p).resolve()
    if p.is_absolute() or not resolved.is_relative_to(folder.resolve()):
        raise DatasetError(f"{what}: {rel!r} points outside the dataset folder {folder}; expected a path inside it")
    return folder / p


def _read_metric_depth(path: Path, factor: float, h: int, w: int, what: str) -> np.ndarray:
    raw = read_npy(path, what) if path.suffix == ".npy" else read_raw_image(path, what, "depth")
    return as_depth(raw.astype(np.float32), h, w, path, what) * factor


def read_nerfstudio(path: Path) -> ReconDataset:
    folder = path.parent
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read: {e}")
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object with 'frames', got {type(meta).__name__}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: expected a non-empty 'frames' list")
    model = meta.get("camera_model", "PINHOLE")
    if model not in MODEL_ALIASES:
        raise DatasetError(f"{path}: camera_model {model!r} is not supported; expected one of "
                           f"{', '.join(MODEL_ALIASES)}")
    model = MODEL_ALIASES[model]
    factor = _number(meta.get("depth_unit_scale_factor", 1e-3), f"{path}: depth_unit_scale_factor")
    applied = None
    if "applied_transform" in meta:
        try:
            applied = np.asarray(meta["applied_transform"], dtype=np.float64)
        except (TypeError, ValueError):
            applied = None
        if applied is None or applied.shape != (3, 4) or not np.isfinite(applied).all():
            raise DatasetError(f"{path}: applied_transform: expected a finite 3x4 matrix")

    for i, fr in enumerate(frames):
        if not isinstance(fr, dict):
            raise DatasetError(f"{path}: frames[{i}]: expected an object, got {type(fr).__name__}")
        if "file_path" not in fr:
            raise DatasetError(f"{path}: frames[{i}]: missing file_path")
        if not isinstance(fr["file_path"], str):
            raise DatasetError(f"{path}: frames[{i}]: file_path: expected a string, got {fr['file_path']!r}")
    order = sorted(range(len(frames)), key=lambda i: frames[i]["file_path"])  # nerfstudio sorts by file name

    images, ks, c2ws, dists, depths, metric, normals, masks, names, labels = ([] for _ in range(10))
    for i in order:
        fr = frames[i]
        what = f"{path}: frame {i} ({fr['file_path']})"

        def get(key, integer=False):
            if key in fr:
                return _number(fr[key], f"{what}: {key}", integer)
            if key in meta:
                return _number(meta[key], f"{path}: {key}", integer)
            raise DatasetError(f"{what}: missing {key} (give it per frame or at the top level)")

        fx, fy, cx, cy = (get(k) for k in ("fl_x", "fl_y", "cx", "cy"))
        w, h = int(get("w", True)), int(get("h", True))
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        check_intrinsics(k, what)
        if model != "PINHOLE":
            vals = {key: (get(key) if key in fr or key in meta else 0.0) for key in DISTORTION_KEYS[model]}
            dists.append([vals[key] for key in DISTORTION_KEYS[model]])
        tm = fr.get("transform_matrix")
        try:
            m = np.asarray(tm, dtype=np.float64)
        except (TypeError, ValueError):
            raise DatasetError(f"{what}: transform_matrix: expected a 4x4 list of numbers")
        if tm is None or m.shape not in ((4, 4), (3, 4)):
            raise DatasetError(f"{what}: transform_matrix: expected a 4x4 matrix, got "
                               f"{'nothing' if tm is None else f'shape {m.shape}'}")
        if not np.isfinite(m).all():
            raise DatasetError(f"{what}: transform_matrix: expected finite values, found NaN or inf")
        c2w = np.eye(4)
        c2w[:3] = m[:3]
        r = c2w[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-3) or np.linalg.det(r) < 0:
            raise DatasetError(f"{what}: transform_matrix: expected a rigid camera-to-world (orthonormal rotation)")
        c2w = c2w @ OPENGL_TO_OPENCV
        img_path = _inside(folder, fr["file_path"], f"{what}: file_path")
        img = read_rgb(img_path, what)
        if img.shape[:2] != (h, w):
            raise DatasetError(f"{what}: image {img_path.name} is {img.shape[1]}x{img.shape[0]}, expected w x h = {w}x{h}")
        if images and img.shape != images[0].shape:
            raise DatasetError(f"{what}: image is {w}x{h}, expected {images[0].shape[1]}x{images[0].shape[0]} like "
                               "the first frame (one resolution per dataset)")
        images.append(img)
        ks.append(k)
        c2ws.append(c2w)
        names.append(Path(fr["file_path"]).stem)
        labels.append(what)
        mono = fr.get("mono_depth_path")
        if mono is not None:
            p = _inside(folder, mono, f"{what}: mono_depth_path")
            depths.append(as_depth(read_npy(p, what), h, w, p, what))
        else:
            depths.append(None)
        sensor = fr.get("depth_file_path")
        metric.append(_read_metric_depth(_inside(folder, sensor, f"{what}: depth_file_path"), factor, h, w, what)
                      if sensor is not None else None)
        nrm = fr.get("mono_normal_path")
        if nrm is not None:
            p = _inside(folder, nrm, f"{what}: mono_normal_path")
            if p.suffix == ".npy":
                raw = read_npy(p, what)
            else:
                raw = read_rgb(p, what)  # an 8/16-bit normal image, already in [0,1]
            normals.append(as_normals(raw, h, w, p, what))
        else:
            normals.append(None)
        mp = fr.get("mask_path")
        masks.append(read_mask(_inside(folder, mp, f"{what}: mask_path"), h, w, what) if mp is not None else None)

    c2w_world = np.stack(c2ws)
    k_all = np.stack(ks)
    metric_t = stack_optional(metric, labels, "depth_file_path")
    depth_t = stack_optional(depths, labels, "mono_depth_path")
    h, w = images[0].shape[:2]
    if "radiant_normalization" in meta:
        try:
            norm = np.asarray(meta["radiant_normalization"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: radiant_normalization: expected a 4x4 list of numbers")
        similarity_parts(norm, f"{path}: radiant_normalization")
    else:
        points = None
        if "ply_file_path" in meta:
            points = _read_points(_inside(folder, meta["ply_file_path"], f"{path}: ply_file_path"), path)
        elif metric_t is not None:
            points = _backproject(metric_t.numpy(), k_all, c2w_world)
        norm = fit_unit_sphere(c2w_world, k_all, w, h, points=points)
    kind = "mono"
    if depth_t is None and metric_t is not None:
        depth_t, kind = metric_t, "metric"
    gt = folder / "gt.ply"
    return ReconDataset(
        images=torch.from_numpy(np.stack(images)),
        intrinsics=torch.from_numpy(k_all.astype(np.float32)),
        cam_to_world=torch.from_numpy(normalize_poses(c2w_world, norm, f"{path}: normalization").astype(np.float32)),
        depths=depth_t,
        normals=stack_optional(normals, labels, "mono_normal_path"),
        masks=stack_optional(masks, labels, "mask_path"),
        normalization=torch.from_numpy(norm),
        names=names,
        camera_model=model,
        distortion=torch.tensor(dists, dtype=torch.float32) if model != "PINHOLE" else None,
        gt_mesh=gt if gt.is_file() else None,
        source=path,
        depth_kind=kind,
        applied_transform=applied,
    )


def _read_points(ply: Path, what: Path) -> np.ndarray:
    import trimesh

    if not ply.is_file():
        raise DatasetError(f"{what}: ply_file_path {ply} does not exist")
    try:
        pts = np.asarray(trimesh.load(ply, process=False).vertices, dtype=np.float64)
    except Exception as e:
        raise DatasetError(f"{what}: cannot read ply_file_path {ply}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
        raise DatasetError(f"{what}: ply_file_path {ply}: expected finite 3D points")
    return pts


def _backproject(depth: np.ndarray, k: np.ndarray, c2w: np.ndarray, stride: int = 4) -> np.ndarray:
    """World points from metric z-depth maps (every stride-th pixel and the last row/column), for the normalization fit."""
    n, h, w = depth.shape
    v, u = np.meshgrid(np.unique(np.r_[0:h:stride, h - 1]), np.unique(np.r_[0:w:stride, w - 1]), indexing="ij")
    pts = []
    for i in range(n):
        z = depth[i, v, u]
        ok = z > 0
        x = ((u[ok] + 0.5) - k[i, 0, 2]) / k[i, 0, 0] * z[ok]
        y = ((v[ok] + 0.5) - k[i, 1, 2]) / k[i, 1, 1] * z[ok]
        cam = np.stack([x, y, z[ok]], 1)
        pts.append(cam @ c2w[i, :3, :3].T + c2w[i, :3, 3])
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def transforms_frame(k: np.ndarray, c2w_world: np.ndarray) -> dict:
    """The per-frame intrinsics and OpenGL transform_matrix of an OpenCV camera-to-world (writer side)."""
    return {"fl_x": float(k[0, 0]), "fl_y": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2]),
            "transform_matrix": (np.asarray(c2w_world, dtype=np.float64) @ OPENGL_TO_OPENCV).tolist()}


def sdfstudio_meta(k: np.ndarray, c2w_world: np.ndarray, normalization: np.ndarray, width: int, height: int,
                   rgb: list[str], depth: list, normal: list) -> dict:
    """sdfstudio's meta_data.json (what nerfstudio's `sdfstudio-data` dataparser reads): OpenCV `camtoworld` in the
    normalized frame (scene in the unit sphere), 4x4 `intrinsics` (+0.5 centres, as nerfstudio's ray generator),
    `worldtogt` = normalized -> world, mono priors (`mono_depth_path`, `mono_normal_path`: camera-frame normals
    in [0,1], as ours) when every frame has them."""
    poses = normalize_poses(np.asarray(c2w_world, dtype=np.float64), normalization, "normalization")
    k4 = np.eye(4)
    k4[:3, :3] = k
    priors = all(d is not None for d in depth) and all(n is not None for n in normal)
    frames = []
    for i, name in enumerate(rgb):
        frame = {"rgb_path": name, "camtoworld": poses[i].tolist(), "intrinsics": k4.tolist()}
        if priors:
            frame.update(mono_depth_path=depth[i], mono_normal_path=normal[i])
        frames.append(frame)
    return {"camera_model": "OPENCV", "height": int(height), "width": int(width), "has_mono_prior": priors,
            "worldtogt": np.asarray(normalization, dtype=np.float64).tolist(),
            "scene_box": {"aabb": [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], "near": 0.05, "far": 2.5, "radius": 1.0,
                          "collider_type": "box"},
            "frames": frames}
