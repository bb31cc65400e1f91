"""Synthetic reconstruction datasets from a Mitsuba scene: path-traced views, GT mesh, simulated monocular priors.

    make_dataset(Path("scenes/room/room.xml"), Path("data/room"), views=60, mode="inside")

writes, into one folder, both formats ReconDataset reads: MonoSDF (`cameras.npz` with world_mat_i / scale_mat_i,
`NNNNNN_rgb.png`, `NNNNNN_depth.npy`, `NNNNNN_normal.npy`, `NNNNNN_mask.png` when some pixels see no geometry),
nerfstudio (`transforms.json` pointing at the same files; `ns-train ... nerfstudio-data`) and sdfstudio
(`meta_data.json`, normalized poses + mono priors; `ns-train ... sdfstudio-data --include-mono-prior True`), plus
`gt.ply` (every triangle of the scene in world units, analytic spheres tessellated), `gt_thin.ply` (its rods: legs,
posts, poles, for thin-part recall), `gt_objects.ply` (all but the big flat walls, floor and ceiling: furniture
recall) and `recipe.json` (how it was made). RGB comes from our path tracer
(render_loaded; the fused kernel when it supports the scene); GT depth/normals from one BVH ray per pixel centre
(exact, no filter mixing at edges), turned into priors that fail like Omnidata/DPT do (simulate_priors).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

MODES = ("orbit", "inside")
THIN_EXTENT = 0.06  # a shape is a thin structure (gt_thin.ply) when its two smaller extents are <= 6 cm
PRIORS = ("noisy", "gt", "none")


@dataclass
class Recipe:
    """How a dataset was made (written to recipe.json). Defaults: the DESIGN target, 60 views at 320x240."""
    scene: str
    views: int = 60
    mode: str = "inside"
    priors: str = "noisy"
    width: int = 320
    height: int = 240
    spp: int = 12
    seed: int = 0
    fov: float = 75.0   # horizontal field of view, degrees


@dataclass
class Views:
    """Sampled cameras: OpenCV camera-to-world (N,4,4) in world units and one shared K (3,3), +0.5 centres."""
    c2w: np.ndarray
    k: np.ndarray


# --- scene geometry ------------------------------------------------------------------------------------------

def scene_triangles(scene, sphere_subdivisions: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices, faces) of every shape in world units, analytic spheres tessellated as icospheres (subdivision
    4: 5120 faces, radial error < 0.1 % of the radius)."""
    import trimesh

    meshes = []
    for s in scene.shapes:
        if s.kind == "sphere":
            ico = trimesh.creation.icosphere(subdivisions=sphere_subdivisions, radius=float(s.radius))
            v = np.asarray(ico.vertices) + np.asarray(s.center, dtype=np.float64)
            f = np.asarray(ico.faces)
        else:
            v, f = np.asarray(s.vertices, dtype=np.float64), np.asarray(s.faces, dtype=np.int64)
        meshes.append((v, f))
    if not meshes:
        raise UserError(f"{scene.source}: the scene has no shapes to reconstruct")
    return meshes


def merge_meshes(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes[:-1]])
    return (np.concatenate([v for v, _ in meshes]), np.concatenate([f + o for (_, f), o in zip(meshes, offsets)]))


def box_meets_sphere(lo: np.ndarray, hi: np.ndarray, centre: np.ndarray, radius: float) -> bool:
    return float(np.linalg.norm(np.clip(centre, lo, hi) - centre)) <= radius


def scene_up(scene) -> np.ndarray:
    """World up: the principal axis closest to the scene sensor's image-up (+y of Mitsuba's camera); +y without one."""
    if scene.sensor is None:
        return np.array([0.0, 1.0, 0.0])
    y = np.asarray(scene.sensor.to_world, dtype=np.float64)[:3, 1]
    axis = int(np.argmax(np.abs(y)))
    up = np.zeros(3)
    up[axis] = math.copysign(1.0, y[axis])
    return up


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world (x right, y down, z forward)."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:
        x = np.cross(z, np.roll(up, 1))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def intrinsics(width: int, height: int, fov_x: float) -> np.ndarray:
    """Pinhole K for a horizontal fov, square pixels, principal point at the image centre (+0.5 convention)."""
    f = width / 2 / math.tan(math.radians(fov_x) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


class Clearance:
    """BVH queries for camera placement: is a point inside geometry, and how far is the nearest surface."""

    def __init__(self, sd):
        self.sd = sd
        g = (1 + 5 ** 0.5) / 2  # 26 directions: axes, face and edge diagonals, plus the 12 icosahedron vertices
        dirs = [d for d in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T if np.any(d)]
        ico = [[0, 1, g], [0, -1, g], [0, 1, -g], [0, -1, -g], [1, g, 0], [-1, g, 0], [1, -g, 0], [-1, -g, 0],
               [g, 0, 1], [-g, 0, 1], [g, 0, -1], [-g, 0, -1]]
        d = np.concatenate([np.asarray(dirs, float), np.asarray(ico, float)])
        self.dirs = torch.from_numpy(d / np.linalg.norm(d, axis=1, keepdims=True)).float()

    def probe(self, point: np.ndarray) -> tuple[float, float, float]:
        """(fraction of probe rays that hit a back face, fraction that escape, nearest hit distance)."""
        o = torch.from_numpy(np.asarray(point, np.float32)).expand(len(self.dirs), 3).contiguous()
        hits = self.sd.bvh.closest_hit(o, self.dirs)
        hit = hits.hit
        if not hit.any():
            return 0.0, 1.0, math.inf
        n = surface_normals(self.sd, o[hit] + self.dirs[hit] * hits.t[hit, None], hits.prim[hit])
        back = (n * self.dirs[hit]).sum(1) > 0
        return float(back.float().sum() / len(self.dirs)), float((~hit).float().mean()), float(hits.t[hit].min())

    def forward_distance(self, c2w: np.ndarray) -> float:
        o = torch.from_numpy(c2w[:3, 3].astype(np.float32))[None]
        d = torch.from_numpy(c2w[:3, 2].astype(np.float32))[None]
        return float(self.sd.bvh.closest_hit(o, d).t[0])


def surface_normals(sd, points: torch.Tensor, prim: torch.Tensor) -> torch.Tensor:
    """Geometric unit normals at hit points: triangle face normals, sphere radial normals."""
    n = torch.zeros_like(points)
    tri = prim < sd.num_triangles
    if tri.any():
        f = sd.faces[prim[tri]]
        v0, v1, v2 = sd.vertices[f[:, 0]], sd.vertices[f[:, 1]], sd.vertices[f[:, 2]]
        n[tri] = torch.nn.functional.normalize(torch.cross(v1 - v0, v2 - v0, dim=1), dim=1)
    if (~tri).any():
        s = sd.spheres[prim[~tri] - sd.num_triangles]
        n[~tri] = torch.nn.functional.normalize(points[~tri] - s[:, :3], dim=1)
    return n


def sample_views(sd, recipe: Recipe, target_bounds: np.ndarray, up: np.ndarray) -> Views:
    """Deterministic cameras for the recipe's mode, rejected when inside geometry or too close to a surface.

    orbit: around the centre of target_bounds at elevations 10..50 degrees, evenly spread in azimuth with
    seeded jitter, far enough that the bounds' sphere fills the view. inside: eyes on a ring at 50..80 % of
    the way from the room's centre to its walls (spread in azimuth, seeded jitter), at 45..70 % of the room's
    height, each looking across the room at a point near its middle (+-30 %, 15..45 % of the height), so that
    every wall and the furniture is seen from the far side; each at least 0.25 m from any surface and seeing
    at least 0.8 m ahead.
    """
    rng = np.random.default_rng(recipe.seed)
    k = intrinsics(recipe.width, recipe.height, recipe.fov)
    lo, hi = target_bounds
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo) / 2)
    clear = Clearance(sd)
    half_fov = math.atan(min(recipe.width, recipe.height) / 2 / k[0, 0])
    # two axes orthogonal to up for azimuths
    a1 = np.cross(up, np.roll(up, 1))
    a1 /= np.linalg.norm(a1)
    a2 = np.cross(up, a1)
    out = []
    for i in range(recipe.views):
        for attempt in range(200):
            jitter = rng.uniform(-0.5, 0.5)
            azimuth = 2 * math.pi * (i + jitter) / recipe.views
            if recipe.mode == "orbit":
                elevation = math.radians(rng.uniform(10, 50))
                dist = radius / math.sin(half_fov) * rng.uniform(1.0, 1.25)
                direction = math.cos(elevation) * (math.cos(azimuth) * a1 + math.sin(azimuth) * a2) + math.sin(elevation) * up
                eye = centre + dist * direction
                c2w = look_at(eye, centre + rng.normal(0, 0.03 * radius, 3), up)
                back, escape, nearest = clear.probe(eye)
                ok = back < 0.25 and nearest > 0.05 * radius
            else:
                h_lo, h_hi = sorted((float(lo @ up), float(hi @ up)))  # floor, ceiling along up
                half = (hi - lo) / 2
                ring = rng.uniform(0.5, 0.8)
                eye = centre + ring * (math.cos(azimuth) * abs(half @ a1) * a1 + math.sin(azimuth) * abs(half @ a2) * a2)
                eye = eye + (h_lo + (h_hi - h_lo) * rng.uniform(0.45, 0.7) - eye @ up) * up
                look = centre + rng.uniform(-0.3, 0.3) * abs(half @ a1) * a1 + rng.uniform(-0.3, 0.3) * abs(half @ a2) * a2
                look = look + (h_lo + (h_hi - h_lo) * rng.uniform(0.15, 0.45) - look @ up) * up
                c2w = look_at(eye, look, up)
                back, escape, nearest = clear.probe(eye)
                ok = back == 0 and escape == 0 and nearest > 0.25 and clear.forward_distance(c2w) > 0.8
            if ok:
                out.append(c2w)
                break
        else:
            raise UserError(f"{sd.scene.source}: could not place camera {i} for --{recipe.mode} after 200 tries "
                            f"(every candidate was inside geometry or too close to a surface); "
                            f"{'is this an indoor scene? try --orbit' if recipe.mode == 'inside' else 'try --inside'}")
    return Views(c2w=np.stack(out), k=k)


# --- rendering -----------------------------------------------------------------------------------------------

def set_camera(scene, c2w: np.ndarray, fov_x: float, width: int, height: int) -> None:
    """Point the scene's sensor along an OpenCV camera-to-world (Mitsuba's camera: +x left, +y up, +z forward)."""
    to_world = c2w @ np.diag([-1.0, -1.0, 1.0, 1.0])
    scene.sensor.to_world = to_world
    scene.sensor.fov, scene.sensor.fov_axis, scene.sensor.fov_x = fov_x, "x", fov_x
    scene.sensor.film.width, scene.sensor.film.height = width, height


def gt_depth_normal(sd, c2w: np.ndarray, k: np.ndarray, width: int, height: int):
    """Exact z-depth (H,W), camera-frame OpenCV normals facing the camera (H,W,3) and hit mask (H,W): one BVH
    ray per pixel centre."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    xc = (u - float(k[0, 2])) / float(k[0, 0])
    yc = (v - float(k[1, 2])) / float(k[1, 1])
    d_cam = torch.stack([xc, yc, torch.ones_like(xc)], -1).reshape(-1, 3)
    rot = torch.from_numpy(c2w[:3, :3].astype(np.float32))
    d = torch.nn.functional.normalize(d_cam @ rot.T, dim=1)
    o = torch.from_numpy(c2w[:3, 3].astype(np.float32)).expand_as(d).contiguous()
    hits = sd.bvh.closest_hit(o, d)
    hit = hits.hit
    t = torch.where(hit, hits.t, torch.zeros_like(hits.t))
    n_world = torch.zeros_like(d)
    if hit.any():
        n_world[hit] = surface_normals(sd, o[hit] + d[hit] * t[hit, None], hits.prim[hit])
    n_world = torch.where(((n_world * d).sum(1, keepdim=True) > 0), -n_world, n_world)  # face the camera
    z = t * (d @ rot[:, 2])
    n_cam = n_world @ rot
    return (z.reshape(height, width).numpy(), n_cam.reshape(height, width, 3).numpy(),
            hit.reshape(height, width).numpy())


def simulate_priors(depth: np.ndarray, normal: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """Monocular-like priors from GT z-depth and camera normals.

    Depth: thin near structures narrower than ~5 px are closed away (grey closing fills narrow minima of the
    depth map with the background behind them, the way DPT/Omnidata miss chair legs), then Gaussian blur,
    multiplicative noise that grows with the local depth variation (edges, thin parts), and an unknown
    per-image scale (log-uniform 0.5..2) and shift (+-30 % of the median): only affine-invariant losses can use it.
    Normals: the same thin parts take the normals of the surface behind them (nearest kept pixel), then blur
    and noise growing with local normal variation, renormalized.
    """
    from scipy import ndimage

    valid = mask
    z = np.where(valid, depth, depth[valid].max() if valid.any() else 1.0).astype(np.float64)
    closed = ndimage.grey_closing(z, size=(5, 5))
    thin = (closed - z) > 0.02 * np.maximum(z, 1e-6)
    zs = ndimage.gaussian_filter(closed, 1.2)
    local = np.abs(z - ndimage.gaussian_filter(z, 2.0)) / np.maximum(z, 1e-6)
    sigma = 0.01 + 0.5 * np.minimum(local, 0.2) + 0.03 * thin
    zs = zs * (1 + rng.normal(0, 1, z.shape) * sigma)
    scale = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    shift = rng.uniform(-0.3, 0.3) * float(np.median(zs[valid])) if valid.any() else 0.0
    depth_prior = np.where(valid, scale * zs + shift, 0.0).astype(np.float32)

    n = normal.astype(np.float64)
    if thin.any():
        idx = ndimage.distance_transform_edt(thin, return_distances=False, return_indices=True)
        n = n[idx[0], idx[1]]
    var = sum(np.abs(n[..., c] - ndimage.gaussian_filter(n[..., c], 2.0)) for c in range(3))
    n = np.stack([ndimage.gaussian_filter(n[..., c], 1.2) for c in range(3)], -1)
    n = n + rng.normal(0, 1, n.shape) * (0.03 + 1.5 * np.minimum(var, 0.3))[..., None]
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)
    n = np.where(valid[..., None], n, 0.0)
    return depth_prior, n.astype(np.float32), thin


# --- writing -------------------------------------------------------------------------------------------------

def normalization_from_bounds(lo: np.ndarray, hi: np.ndarray, margin: float = 1.05) -> np.ndarray:
    """normalized -> world similarity putting the bounding sphere of [lo, hi] (times margin) at the unit sphere."""
    m = np.eye(4)
    m[:3, :3] *= float(np.linalg.norm(hi - lo) / 2 * margin)
    m[:3, 3] = (lo + hi) / 2
    return m


def make_dataset(scene_path: Path, out: Path, recipe: Recipe, force: bool = False, progress: bool = False,
                 integrator: str = "auto") -> dict:
    """Render the recipe into `out` (atomically: a temp folder renamed at the end). Returns a summary dict."""
    import imageio.v3 as iio
    import trimesh

    from ..core.image import to_png8
    from ..integrators import SceneData
    from ..render import render_loaded
    from ..scene import load_scene
    from .monosdf import monosdf_world_mat
    from .nerfstudio import sdfstudio_meta, transforms_frame

    out = Path(out)
    if recipe.mode not in MODES:
        raise UserError(f"mode: expected one of {', '.join(MODES)}, got {recipe.mode!r}")
    if recipe.priors not in PRIORS:
        raise UserError(f"--priors: expected one of {', '.join(PRIORS)}, got {recipe.priors!r}")
    for name, v in (("--views", recipe.views), ("--width", recipe.width), ("--height", recipe.height),
                    ("--spp", recipe.spp)):
        if v <= 0:
            raise UserError(f"{name}: expected a positive integer, got {v}")
    if not 1 <= recipe.fov < 179:
        raise UserError(f"--fov: expected degrees in [1, 179), got {recipe.fov}")
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to overwrite")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    t0 = time.perf_counter()
    scene = load_scene(scene_path)
    if scene.sensor is None:
        raise UserError(f"{scene_path}: the scene has no sensor (needed for its film, sampler and up direction)")
    up = scene_up(scene)
    meshes = scene_triangles(scene)
    bounds = [np.stack([v.min(0), v.max(0)]) for v, _ in meshes]
    emitting = [s.emitter is not None for s in scene.shapes]
    solid = [b for b, e in zip(bounds, emitting) if not e] or bounds
    lo, hi = np.min([b[0] for b in solid], 0), np.max([b[1] for b in solid], 0)
    normalization = normalization_from_bounds(lo, hi)
    # gt.ply: every shape that reaches into the reconstruction volume (a key light far above is left out)
    inside_sphere = [box_meets_sphere(b[0], b[1], normalization[:3, 3], normalization[0, 0]) for b in bounds]
    verts, faces = merge_meshes([m for m, keep in zip(meshes, inside_sphere) if keep])
    thin_meshes = [m for m, b, keep, e in zip(meshes, bounds, inside_sphere, emitting)
            if keep and not e and np.sort(b[1] - b[0])[1] <= THIN_EXTENT]
    # gt_objects.ply: what stands in the scene (furniture), every solid shape but the big flat ones that bound it
    # (walls, floor, ceiling: flat and spanning most of the scene along both of their sides)
    span = hi - lo
    objects_meshes = [m for m, b, keep, e in zip(meshes, bounds, inside_sphere, emitting)
                      if keep and not e and not (np.min(b[1] - b[0]) < 1e-6
                                                 and np.sort((b[1] - b[0]) / np.maximum(span, 1e-9))[1] > 0.9)]
    target = (lo, hi)
    if recipe.mode == "orbit":  # look at the objects, not at the ground plane or walls: skip big flat shapes
        extent = np.linalg.norm(hi - lo)
        objects = [b for b, e in zip(bounds, emitting)
                   if not e and not (np.min(b[1] - b[0]) < 1e-6 and np.linalg.norm(b[1] - b[0]) > 0.5 * extent)]
        if objects:
            target = (np.min([b[0] for b in objects], 0), np.max([b[1] for b in objects], 0))
    sd = SceneData(scene, "cpu")
    views = sample_views(sd, recipe, np.stack(target), up)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the folder a plain mkdir's permissions
    rng = np.random.default_rng(recipe.seed + 1)
    bar = None
    try:
        if progress:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            bar = Progress(TextColumn("make-dataset"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                           transient=True)
            bar.start()
            task = bar.add_task("views", total=recipe.views, rate="")
        mats, frames, thin_fraction, any_miss = {}, [], [], False
        masks = []
        for i, c2w in enumerate(views.c2w):
            name = f"{i:06d}"
            set_camera(scene, c2w, recipe.fov, recipe.width, recipe.height)
            res = render_loaded(scene, spp=recipe.spp, seed=recipe.seed * 100003 + i, sd=sd,
                                width=recipe.width, height=recipe.height, integrator=integrator)
            iio.imwrite(tmp / f"{name}_rgb.png", to_png8(res.rgb), extension=".png")
            depth, normal, hit = gt_depth_normal(sd, c2w, views.k, recipe.width, recipe.height)
            any_miss |= not hit.all()
            masks.append(hit)
            frame = {"file_path": f"{name}_rgb.png"}
            if recipe.priors != "none":
                if recipe.priors == "noisy":
                    depth, normal, thin = simulate_priors(depth, normal, hit, rng)
                    thin_fraction.append(float(thin.mean()))
                np.save(tmp / f"{name}_depth.npy", depth.astype(np.float32))
                np.save(tmp / f"{name}_normal.npy", np.moveaxis(normal * 0.5 + 0.5, -1, 0).astype(np.float32))
                frame.update(mono_depth_path=f"{name}_depth.npy", mono_normal_path=f"{name}_normal.npy")
            mats[f"world_mat_{i}"] = monosdf_world_mat(views.k, c2w)
            mats[f"scale_mat_{i}"] = normalization
            frame.update(transforms_frame(views.k, c2w))
            for key in ("fl_x", "fl_y", "cx", "cy"):
                frame.pop(key)  # shared intrinsics at the top level
            frames.append(frame)
            if bar is not None:
                done = i + 1
                bar.update(task, advance=1, rate=f"{done / (time.perf_counter() - t0):.2f} views/s")
        if any_miss:  # some pixels see no geometry (sky): mark the valid ones
            for i, (m, frame) in enumerate(zip(masks, frames)):
                # PNG (255 valid, 0 not): what nerfstudio's mask_path loader reads; ours reads it too.
                iio.imwrite(tmp / f"{i:06d}_mask.png", (m * 255).astype(np.uint8), extension=".png")
                frame["mask_path"] = f"{i:06d}_mask.png"
        np.savez(tmp / "cameras.npz", **mats)
        meta = {"camera_model": "PINHOLE", "w": recipe.width, "h": recipe.height,
                "fl_x": float(views.k[0, 0]), "fl_y": float(views.k[1, 1]),
                "cx": float(views.k[0, 2]), "cy": float(views.k[1, 2]),
                "radiant_normalization": normalization.tolist(), "frames": frames}
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=1))
        sdf_meta = sdfstudio_meta(views.k, views.c2w, normalization, recipe.width, recipe.height,
                                  [f["file_path"] for f in frames],
                                  [f.get("mono_depth_path") for f in frames], [f.get("mono_normal_path") for f in frames])
        (tmp / "meta_data.json").write_text(json.dumps(sdf_meta, indent=1))
        trimesh.Trimesh(verts, faces, process=False).export(tmp / "gt.ply")
        for name, part in (("thin", thin_meshes), ("objects", objects_meshes)):
            if part:
                trimesh.Trimesh(*merge_meshes(part), process=False).export(tmp / f"gt_{name}.ply")
        recipe_out = {**asdict(recipe), "scene": str(scene_path), "up": up.tolist(),
                      "seconds": round(time.perf_counter() - t0, 2),
                      "thin_prior_fraction": float(np.mean(thin_fraction)) if thin_fraction else 0.0}
        (tmp / "recipe.json").write_text(json.dumps(recipe_out, indent=1))
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(trash / out.name)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.stop()
    return recipe_out
