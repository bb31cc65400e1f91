"""MonoSDF / DebSDF dataset format: cameras.npz (world_mat_i = K [R|t], scale_mat_i) + NNNNNN_rgb.png and priors.

Layout (autonomousvision/monosdf code/datasets/scene_dataset.py, DebSDF the same): one folder with
`cameras.npz`, `NNNNNN_rgb.png`, optional `NNNNNN_depth.npy` (H x W, affine-ambiguous mono depth),
`NNNNNN_normal.npy` (3 x H x W in [0,1], camera frame), `NNNNNN_mask.npy|png`; frame i is the i-th `*_rgb.png`
in sorted order. MonoSDF decomposes P = world_mat @ scale_mat with cv2.decomposeProjectionMatrix; we decompose
world_mat with an RQ factorization in numpy (same K, R, t) and apply scale_mat (normalized -> world) as the
dataset's normalization. MonoSDF casts rays through integer pixel coordinates (np.mgrid), so its K puts pixel
centres at integers: we add 0.5 to cx, cy on reading (and the writer subtracts it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .dataset import (DatasetError, ReconDataset, as_depth, as_normals, check_intrinsics, fit_unit_sphere,
                      normalize_poses, read_mask, read_npy, read_rgb, similarity_parts, stack_optional)


def rq3(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RQ factorization of a 3x3 matrix: a = upper-triangular @ orthogonal (via numpy QR of the row-flipped
    transpose, as scipy.linalg.rq does)."""
    p = np.eye(3)[::-1]
    q, r = np.linalg.qr((p @ a).T)
    return p @ r.T @ p, p @ q.T


def decompose_projection(p: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(K 3x3 with K[2,2] = 1, camera-to-world 4x4 in OpenCV axes) from a 3x4 P = lambda K [R|t] (any lambda != 0)."""
    m = p[:3, :3]
    if abs(np.linalg.det(m)) < 1e-12 * max(1.0, np.abs(m).max()) ** 3:
        raise DatasetError(f"{what}: expected an invertible K R in K [R|t] (singular 3x3 part)")
    k, r = rq3(m)
    d = np.diag(np.where(np.diag(k) < 0, -1.0, 1.0))
    k, r = k @ d, d @ r
    if np.linalg.det(r) < 0:  # P was given up to a negative scale
        k, r = -k, -r
    t = np.linalg.solve(k, p[:3, 3])
    k = k / k[2, 2]
    c2w = np.eye(4)
    c2w[:3, :3] = r.T
    c2w[:3, 3] = -r.T @ t
    return k, c2w


def read_monosdf(cameras: Path) -> ReconDataset:
    folder = cameras.parent
    try:
        with np.load(cameras, allow_pickle=False) as z:
            mats = {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:
        raise DatasetError(f"{cameras}: cannot read as a .npz archive: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    world_keys = sorted((int(m.group(1)) for k in mats if (m := re.fullmatch(r"world_mat_(\d+)", k))))
    if not world_keys:
        raise DatasetError(f"{cameras}: no world_mat_0, world_mat_1, ... arrays")
    if world_keys != list(range(len(world_keys))):
        missing = sorted(set(range(max(world_keys) + 1)) - set(world_keys))
        raise DatasetError(f"{cameras}: world_mat_{missing[0]} is missing (expected world_mat_0..{max(world_keys)})")
    rgbs = sorted(folder.glob("*_rgb.png"))
    n = len(world_keys)
    if len(rgbs) != n:
        raise DatasetError(f"{cameras}: {n} world_mat_i but {len(rgbs)} *_rgb.png images in {folder}; expected one "
                           "image per camera")
    scale_keys = [i for i in range(n) if f"scale_mat_{i}" in mats]
    if scale_keys and len(scale_keys) != n:
        i = sorted(set(range(n)) - set(scale_keys))[0]
        raise DatasetError(f"{cameras}: scale_mat_{i} is missing while other frames have one")

    names = [p.name[: -len("_rgb.png")] for p in rgbs]
    images, ks, c2ws, depths, normals, masks = [], [], [], [], [], []
    h = w = None
    for i, (rgb_path, name) in enumerate(zip(rgbs, names)):
        what = f"{cameras}: frame {i} ({name})"
        p = np.asarray(mats[f"world_mat_{i}"])
        if p.shape not in ((3, 4), (4, 4)) or p.dtype.kind not in "fiu":
            raise DatasetError(f"{cameras}: world_mat_{i}: expected a 3x4 or 4x4 matrix, got shape {p.shape}")
        p = p.astype(np.float64)
        if not np.isfinite(p).all():
            raise DatasetError(f"{cameras}: world_mat_{i}: expected finite values, found NaN or inf")
        k, c2w = decompose_projection(p, f"{cameras}: world_mat_{i}")
        check_intrinsics(k, f"{cameras}: world_mat_{i}")
        k = k.copy()
        k[0, 2] += 0.5
        k[1, 2] += 0.5
        img = read_rgb(rgb_path, what)
        if h is None:
            h, w = img.shape[:2]
        elif img.shape[:2] != (h, w):
            raise DatasetError(f"{what}: image {rgb_path.name} is {img.shape[1]}x{img.shape[0]}, expected {w}x{h} "
                               "like the first frame")
        images.append(img)
        ks.append(k)
        c2ws.append(c2w)
        dp = folder / f"{name}_depth.npy"
        depths.append(as_depth(read_npy(dp, what), h, w, dp, what) if dp.exists() else None)
        np_ = folder / f"{name}_normal.npy"
        normals.append(as_normals(read_npy(np_, what), h, w, np_, what) if np_.exists() else None)
        mp = next((q for q in (folder / f"{name}_mask.npy", folder / f"{name}_mask.png") if q.exists()), None)
        masks.append(read_mask(mp, h, w, what) if mp is not None else None)

    c2w_world = np.stack(c2ws)
    k_all = np.stack(ks)
    if scale_keys:
        scale = np.asarray(mats["scale_mat_0"])
        if scale.shape != (4, 4):
            raise DatasetError(f"{cameras}: scale_mat_0: expected a 4x4 matrix, got shape {scale.shape}")
        scale = scale.astype(np.float64)
        for i in range(1, n):
            si = np.asarray(mats[f"scale_mat_{i}"])
            if si.shape != (4, 4) or not np.allclose(si, scale, rtol=1e-5, atol=1e-6):
                raise DatasetError(f"{cameras}: scale_mat_{i}: expected the same 4x4 matrix as scale_mat_0 (one "
                                   "normalization per scene)")
        similarity_parts(scale, f"{cameras}: scale_mat_0")
    else:
        scale = fit_unit_sphere(c2w_world, k_all, w, h)
    labels = [f"{cameras}: frame {i} ({nm})" for i, nm in enumerate(names)]
    gt = folder / "gt.ply"
    return ReconDataset(
        images=torch.from_numpy(np.stack(images)),
        intrinsics=torch.from_numpy(k_all.astype(np.float32)),
        cam_to_world=torch.from_numpy(normalize_poses(c2w_world, scale, f"{cameras}: scale_mat_0").astype(np.float32)),
        depths=stack_optional(depths, labels, "depth (*_depth.npy)"),
        normals=stack_optional(normals, labels, "normal (*_normal.npy)"),
        masks=stack_optional(masks, labels, "mask (*_mask.npy|png)"),
        normalization=torch.from_numpy(scale),
        names=names,
        gt_mesh=gt if gt.is_file() else None,
        source=cameras,
    )


def monosdf_world_mat(k: np.ndarray, c2w_world: np.ndarray) -> np.ndarray:
    """4x4 world_mat = K [R|t] (world -> pixel, MonoSDF's integer pixel centres) from our K (+0.5 centres) and an
    OpenCV camera-to-world in world units; inverse of what read_monosdf does."""
    k = np.asarray(k, dtype=np.float64).copy()
    k[0, 2] -= 0.5
    k[1, 2] -= 0.5
    w2c = np.linalg.inv(np.asarray(c2w_world, dtype=np.float64))
    p = np.eye(4)
    p[:3, :4] = k @ w2c[:3, :4]
    return p
