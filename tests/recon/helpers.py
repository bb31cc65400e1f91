"""Small hand-made datasets for the reader tests: cameras with known K and poses, written in MonoSDF format."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def look_at_opencv(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world (x right, y down, z forward) at eye looking at target."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def project(k: np.ndarray, c2w: np.ndarray, x_world: np.ndarray) -> np.ndarray:
    """Pixel coords (our +0.5-centre convention) of a world point."""
    xc = np.linalg.inv(c2w)[:3] @ np.append(x_world, 1.0)
    uv = k @ (xc / xc[2])
    return uv[:2]


def write_png(path: Path, rgb: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), extension=".png")


def make_monosdf(folder: Path, n: int = 3, w: int = 16, h: int = 12, priors: bool = True,
                 scale_mat: np.ndarray | None = None, seed: int = 0):
    """A tiny MonoSDF-format dataset with world_mat built by hand (K [R|t], integer pixel centres).
    Returns (K ours (+0.5 centres), list of c2w world, scale_mat)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    k = np.array([[20.0, 0.0, w / 2 + 0.3], [0.0, 21.0, h / 2 - 0.2], [0.0, 0.0, 1.0]])
    if scale_mat is None:
        scale_mat = np.diag([2.5, 2.5, 2.5, 1.0])
        scale_mat[:3, 3] = [1.0, -2.0, 0.5]
    c2ws, mats = [], {}
    for i in range(n):
        a = 2 * np.pi * i / n
        eye = scale_mat[:3, 3] + 4.0 * np.array([np.cos(a), np.sin(a), 0.3])
        c2w = look_at_opencv(eye, scale_mat[:3, 3])
        c2ws.append(c2w)
        k_int = k.copy()
        k_int[:2, 2] -= 0.5  # MonoSDF: pixel centres at integer coords
        p = np.eye(4)
        p[:3, :4] = k_int @ np.linalg.inv(c2w)[:3, :4]
        mats[f"world_mat_{i}"] = p * (1.0 if i % 2 == 0 else -3.0)  # P is defined up to scale, sign included
        mats[f"scale_mat_{i}"] = scale_mat
        write_png(folder / f"{i:06d}_rgb.png", rng.random((h, w, 3)))
        if priors:
            np.save(folder / f"{i:06d}_depth.npy", rng.random((h, w)).astype(np.float32))
            nrm = rng.normal(size=(3, h, w))
            nrm /= np.linalg.norm(nrm, axis=0, keepdims=True)
            np.save(folder / f"{i:06d}_normal.npy", (nrm * 0.5 + 0.5).astype(np.float32))
            np.save(folder / f"{i:06d}_mask.npy", rng.random((h, w)) > 0.2)
    np.savez(folder / "cameras.npz", **mats)
    return k, c2ws, scale_mat


def look_at_opengl(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL camera-to-world (x right, y up, z back), as nerfstudio's transform_matrix."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def project_opengl(fx, fy, cx, cy, c2w_gl, x_world, distort=None) -> np.ndarray:
    """nerfstudio's pixel of a world point: camera looks down -z, image y down = camera -y, centres at +0.5."""
    xc = np.linalg.inv(c2w_gl)[:3] @ np.append(x_world, 1.0)
    x, y = xc[0] / -xc[2], -xc[1] / -xc[2]
    if distort is not None:
        x, y = distort(x, y)
    return np.array([cx + fx * x, cy + fy * y])


def make_nerfstudio(folder: Path, n: int = 3, w: int = 16, h: int = 12, centre=(0.5, -1.0, 2.0), seed: int = 0,
                    **top) -> tuple[dict, list]:
    """A tiny transforms.json dataset with shared intrinsics and orbit cameras (OpenGL). Returns (meta, c2ws)."""
    import json

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    meta = {"fl_x": 20.0, "fl_y": 21.0, "cx": w / 2 + 0.3, "cy": h / 2 - 0.2, "w": w, "h": h, "frames": []}
    meta.update(top)
    c2ws = []
    for i in range(n):
        a = 2 * np.pi * i / n
        c2w = look_at_opengl(np.asarray(centre) + 3.0 * np.array([np.cos(a), np.sin(a), 0.4]), centre)
        c2ws.append(c2w)
        write_png(folder / "images" / f"frame_{i:05d}.png", rng.random((h, w, 3)))
        meta["frames"].append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": c2w.tolist()})
    (folder / "transforms.json").write_text(json.dumps(meta, indent=1))
    return meta, c2ws
