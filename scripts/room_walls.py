"""Per-wall median signed offset (cm, + = into the room) of reconstructions of the bundled room
(scripts/make_recon_scenes.py: x in [-2,2], y in [0,2.6], z in [-2.5,2.5]).

    python scripts/room_walls.py RUN_OR_MESH ... [--data DATASET]

A mesh (.ply) gives its own offsets. A run folder gives its mesh.ply's; with --data (the dataset it was trained
on) also where its fixed depth fits put the walls: every 4th pixel's mono depth prior, aligned by the last
checkpoint's DepthFitAnchor and back-projected, and the fits' distance over the true one along the rays. A mesh
ends where its fits put the walls plus whatever else moves them (README, Reconstruction, sessions 11-13)."""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

WALLS = {"floor": (1, 0.0, +1), "ceiling": (1, 2.6, -1), "back": (2, -2.5, +1), "front": (2, 2.5, -1),
         "left": (0, -2.0, +1), "right": (0, 2.0, -1)}  # name: (axis, plane, inward sign)
LO, HI = np.array([-2.0, 0.0, -2.5]), np.array([2.0, 2.6, 2.5])


def wall_points(points: np.ndarray, name: str, margin: float = 0.3, band: float = 0.15):
    """(signed offsets in m, mask) of the points within `band` of a wall and `margin` from its edges."""
    ax, val, sign = WALLS[name]
    d = (points[:, ax] - val) * sign
    inner = np.all([(points[:, k] > LO[k] + margin) & (points[:, k] < HI[k] - margin) for k in range(3) if k != ax],
                   axis=0)
    return d, inner & (np.abs(d) < band)


def offsets(points: np.ndarray) -> str:
    row = []
    for name in WALLS:
        d, sel = wall_points(points, name)
        row.append(f"{name} {100 * np.median(d[sel]):+.1f}" if sel.any() else f"{name} -")
    return " | ".join(row)


def fit_points(run: str, data: str):
    """(world points of the priors through the run's fixed fits, world ray origins, step)."""
    import torch

    from render.recon.dataset import load_dataset
    from render.recon.losses import DepthFitAnchor

    ds = load_dataset(data)
    ck = sorted(glob.glob(os.path.join(run, "ckpt", "step_*.pt")) or glob.glob(os.path.join(run, "ckpt", "*.pt")))[-1]
    state = torch.load(ck, weights_only=True)
    anchor = DepthFitAnchor(len(ds.images), 0)
    anchor.load_state_dict(state["depth_anchor"])
    good, a, b = anchor.depth_maps()
    ys, xs = torch.meshgrid(torch.arange(0, ds.height, 4), torch.arange(0, ds.width, 4), indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).float() + 0.5
    points, origins = [], []
    for i in range(len(ds.images)):
        if not good[i]:
            continue
        o, d = ds.rays(torch.full((pix.shape[0],), i, dtype=torch.int64), pix)
        z = a[i] * ds.depths[i, pix[:, 1].long(), pix[:, 0].long()].double() + b[i]
        t = z / (d.double() * ds.cam_to_world[i][:3, 2].double()).sum(-1)  # depth along the axis -> ray length
        points.append(ds.to_world(o.double() + t[:, None] * d.double()).numpy())
        origins.append(ds.to_world(o.double()).numpy())
    return np.concatenate(points), np.concatenate(origins), state.get("step")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--data", help="the dataset the runs were trained on (adds the fits' offsets)")
    args = ap.parse_args()
    import trimesh

    for path in args.paths:
        mesh = path if path.endswith(".ply") else os.path.join(path, "mesh.ply")
        if os.path.exists(mesh):
            print(f"{mesh}: mesh  {offsets(np.asarray(trimesh.load(mesh, process=False).vertices))}")
        if args.data and os.path.isdir(os.path.join(path, "ckpt")):
            p, o, step = fit_points(path, args.data)
            ratios = []
            for name, (ax, val, _) in WALLS.items():
                _, sel = wall_points(p, name)
                seg = p[sel, ax] - o[sel, ax]
                keep = np.abs(seg) > 1e-6
                ratios.append(seg[keep] / (val - o[sel, ax][keep]))  # fit distance / true distance along the ray
            r = np.concatenate(ratios)
            print(f"{path}: fits (step {step})  {offsets(p)}  fit / true distance: median {np.median(r):.4f}")


if __name__ == "__main__":
    main()
