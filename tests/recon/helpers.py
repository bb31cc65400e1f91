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
