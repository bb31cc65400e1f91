"""A tiny reconstruction run on disk for the viewer's recon-tab tests: the synthetic sphere of tests/recon written
as a MonoSDF dataset folder (cameras.npz, *_rgb.png, depth/normal/mask priors), then `reconstruct` for a few steps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recon"))
from synthetic import make_dataset  # noqa: E402

from render.recon.monosdf import monosdf_world_mat  # noqa: E402


def write_monosdf_dataset(folder: Path, views: int = 8, width: int = 32, height: int = 24) -> Path:
    """The synthetic sphere (world = 2 x normalized) as a MonoSDF folder; returns the folder."""
    import imageio.v3 as iio

    ds = make_dataset("sphere", views=views, width=width, height=height)
    folder.mkdir(parents=True, exist_ok=True)
    scale_mat = ds.normalization.numpy()
    mats = {}
    for i in range(views):
        c2w_world = scale_mat @ ds.cam_to_world[i].double().numpy()
        c2w_world[:3, :3] /= scale_mat[0, 0]  # the rotation stays orthonormal; only the centre is scaled
        mats[f"world_mat_{i}"] = monosdf_world_mat(ds.intrinsics[i].numpy(), c2w_world)
        mats[f"scale_mat_{i}"] = scale_mat
        name = f"{i:06d}"
        iio.imwrite(folder / f"{name}_rgb.png", (ds.images[i].numpy() * 255 + 0.5).astype(np.uint8))
        np.save(folder / f"{name}_depth.npy", ds.depths[i].numpy())
        np.save(folder / f"{name}_normal.npy", np.moveaxis(ds.normals[i].numpy() * 0.5 + 0.5, -1, 0))
        np.save(folder / f"{name}_mask.npy", ds.masks[i].numpy())
    np.savez(folder / "cameras.npz", **mats)
    return folder


TINY_RUN = dict(rays_per_batch=256, fine_samples=8, levels=6, log2_table=10, max_resolution=32, grid_resolution=16,
                grid_every=8, mesh_resolution=32, report_views=1, report_scale=0.5, log_every=5, threads=1,
                sampler_refresh_every=10)


def make_run(data: Path, out: Path, iters: int = 30) -> Path:
    from render.recon.config import ReconConfig
    from render.recon.run import reconstruct

    cfg = ReconConfig(data=str(data.resolve()), iters=iters, minutes=None, **TINY_RUN)
    reconstruct(cfg, out, progress=False)
    return out
