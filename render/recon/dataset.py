"""Posed-image datasets for reconstruction: one ReconDataset for every input format, normalized to the unit sphere.

    ds = load_dataset(Path("data/room"))       # cameras.npz (MonoSDF) or transforms.json (nerfstudio)
    o, d = ds.rays(idx, xy)                     # normalized-space rays through pixel coords (centres at +0.5)
    world = ds.normalization @ x_norm           # back to world units (meshes are written in world units)

Conventions (all readers convert to these): images are sRGB values in [0,1] as stored; K is pixel-space with
pixel (i, j)'s centre at (i + 0.5, j + 0.5) (nerfstudio's convention; MonoSDF/IDR files put the centre at the
integer coordinate, so their reader shifts cx, cy by +0.5); camera-to-world in OpenCV axes (x right, y down,
z forward) in normalized space, with an orthonormal rotation (the normalization is a similarity, so it
moves and scales camera centres, never the camera axes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


class DatasetError(UserError):
    """A malformed dataset: one line naming the file (and frame) and what was expected."""


CAMERA_MODELS = ("PINHOLE", "OPENCV", "OPENCV_FISHEYE")


@dataclass
class ReconDataset:
    images: torch.Tensor            # (N,H,W,3) float32 in [0,1], sRGB values as stored
    intrinsics: torch.Tensor        # (N,3,3) float32 pixel-space K (pixel centres at +0.5)
    cam_to_world: torch.Tensor      # (N,4,4) float32, OpenCV axes, normalized space
    depths: torch.Tensor | None     # (N,H,W) float32 depth prior, z-depth along the camera axis (see depth_kind)
    normals: torch.Tensor | None    # (N,H,W,3) float32 unit normals prior in the camera frame (OpenCV axes)
    masks: torch.Tensor | None      # (N,H,W) bool valid/foreground mask
    normalization: torch.Tensor     # (4,4) float64 normalized -> world (world = M @ x_norm); a similarity
    names: list[str]                # frame names (error messages, reports)
    camera_model: str = "PINHOLE"   # PINHOLE | OPENCV | OPENCV_FISHEYE
    distortion: torch.Tensor | None = None  # (N,6) OPENCV k1,k2,p1,p2,k3,k4 (radial polynomial) / (N,4) fisheye k1..k4
    gt_mesh: Path | None = None     # ground-truth mesh in world units (gt.ply) when the dataset has one
    source: Path | None = None      # the file the dataset was read from (cameras.npz / transforms.json)
    # "mono": affine-ambiguous (unknown per-image scale and shift); "metric": z-depth in WORLD units
    # (nerfstudio depth_file_path); divide by `scale` for normalized units.
    depth_kind: str = "mono"
    applied_transform: np.ndarray | None = None  # nerfstudio's applied_transform (3x4), recorded, not undone

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def scale(self) -> float:
        """World units per normalized unit (the normalization's uniform scale)."""
        return float(torch.linalg.det(self.normalization[:3, :3]).abs() ** (1.0 / 3.0))

    def to_world(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) normalized-space points -> world units."""
        m = self.normalization.to(points.device, torch.float64)
        return (points.double() @ m[:3, :3].T + m[:3, 3]).to(points.dtype)

    def to_normalized(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) world points -> normalized space (exact inverse of to_world up to float rounding)."""
        m = torch.linalg.inv(self.normalization.to(points.device, torch.float64))
        return (points.double() @ m[:3, :3].T + m[:3, 3]).to(points.dtype)

    def camera_directions(self, image_index: torch.Tensor, pixel_xy: torch.Tensor) -> torch.Tensor:
        """Unnormalized camera-frame directions (x, y, 1) (OpenCV axes) through pixel coords, undistorted."""
        k_inv = torch.linalg.inv(self.intrinsics.to(pixel_xy.dtype))[image_index]  # N small inverses, not M
        uv1 = torch.cat([pixel_xy, torch.ones_like(pixel_xy[:, :1])], 1)
        xy = torch.einsum("mij,mj->mi", k_inv, uv1)[:, :2]  # K^-1 handles skew too
        if self.camera_model != "PINHOLE" and self.distortion is not None:
            dist = self.distortion[image_index].to(xy.dtype)
            xy = undistort_opencv(xy, dist) if self.camera_model == "OPENCV" else undistort_fisheye(xy, dist)
        return torch.cat([xy, torch.ones_like(xy[:, :1])], 1)

    def rays(self, image_index: torch.Tensor, pixel_xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through float pixel coords (M,2) of images (M,): origins (M,3), unit directions (M,3), normalized space."""
        image_index = image_index.long().to(self.intrinsics.device)
        pixel_xy = pixel_xy.to(self.intrinsics.device, torch.float32)
        d_cam = self.camera_directions(image_index, pixel_xy)
        c2w = self.cam_to_world[image_index]
        d = torch.einsum("mij,mj->mi", c2w[:, :3, :3], d_cam)
        return c2w[:, :3, 3].clone(), torch.nn.functional.normalize(d, dim=-1)

    def to(self, device) -> "ReconDataset":
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return replace(self, **moved)

    def split(self, holdout_every: int = 8) -> tuple[list[int], list[int]]:
        """(train, held-out) view indices: every holdout_every-th view (0, k, 2k, ...) is held out, as in the
        mip-NeRF 360 / nerfstudio convention; holdout_every <= 0 or a single view keeps all for training."""
        n = self.num_images
        if holdout_every <= 0 or n < 2:
            return list(range(n)), []
        held = [i for i in range(n) if i % holdout_every == 0]
        return [i for i in range(n) if i % holdout_every != 0], held


def load_dataset(path: Path) -> ReconDataset:
    """Read a dataset folder (or its cameras.npz / transforms.json). A folder with cameras.npz is read as MonoSDF
    (it carries scale_mat), else transforms.json as nerfstudio. Bad data raises DatasetError (a UserError)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset folder or file")
    if path.is_dir():
        if (path / "cameras.npz").is_file():
            path = path / "cameras.npz"
        elif (path / "transforms.json").is_file():
            path = path / "transforms.json"
        else:
            raise DatasetError(f"{path}: expected cameras.npz (MonoSDF) or transforms.json (nerfstudio) in the folder")
    if path.suffix == ".npz":
        from .monosdf import read_monosdf

        return read_monosdf(path)
    if path.suffix == ".json":
        from .nerfstudio import read_nerfstudio

        return read_nerfstudio(path)
    raise DatasetError(f"{path}: expected a dataset folder, cameras.npz or transforms.json")


# --- camera models -------------------------------------------------------------------------------------------

def distort_opencv(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Brown-Conrady distortion of normalized coords, nerfstudio's radial polynomial 1 + k1 r2 + k2 r4 + k3 r6 +
    k4 r8 and tangential p1, p2 (nerfstudio camera_utils._compute_residual_and_jacobian). dist: (M,6) k1,k2,p1,p2,k3,k4."""
    x, y = xy[:, 0], xy[:, 1]
    k1, k2, p1, p2, k3, k4 = dist.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], -1)


def undistort_opencv(xy_d: torch.Tensor, dist: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Inverse of distort_opencv by Newton's method with a finite-free analytic 2x2 Jacobian (as nerfstudio)."""
    xy = xy_d.clone()
    k1, k2, p1, p2, k3, k4 = dist.unbind(-1)
    for _ in range(iterations):
        x, y = xy[:, 0], xy[:, 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
        d_radial = k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4))  # d radial / d r2
        fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xy_d[:, 0]
        fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - xy_d[:, 1]
        fx_x = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
        fx_y = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        fy_x = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
        fy_y = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
        det = fx_x * fy_y - fx_y * fy_x
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        xy = xy - torch.stack([(fx * fy_y - fy * fx_y) / det, (fy * fx_x - fx * fy_x) / det], -1)
    return xy


def distort_fisheye(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """OpenCV fisheye (equidistant + polynomial): theta_d = theta (1 + k1 t2 + k2 t4 + k3 t6 + k4 t8)."""
    r = xy.norm(dim=-1).clamp_min(1e-12)
    theta = torch.atan(r)
    t2 = theta * theta
    k1, k2, k3, k4 = dist.unbind(-1)
    theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    return xy * (theta_d / r).unsqueeze(-1)


def undistort_fisheye(xy_d: torch.Tensor, dist: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Inverse of distort_fisheye: Newton on theta for theta_d, then r = tan(theta)."""
    theta_d = xy_d.norm(dim=-1)
    k1, k2, k3, k4 = dist.unbind(-1)
    theta = theta_d.clone()
    for _ in range(iterations):
        t2 = theta * theta
        f = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d
        df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
        theta = (theta - f / df).clamp(0.0, math.pi / 2 - 1e-4)
    scale = torch.where(theta_d > 1e-12, torch.tan(theta) / theta_d.clamp_min(1e-12), torch.ones_like(theta_d))
    return xy_d * scale.unsqueeze(-1)


# --- normalization -------------------------------------------------------------------------------------------

def similarity_parts(m: np.ndarray, what: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale s, rotation R, translation t) of a 4x4 similarity world = s R x + t; DatasetError if it is not one."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise DatasetError(f"{what}: expected a finite 4x4 matrix, got shape {m.shape}")
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise DatasetError(f"{what}: expected the last row 0 0 0 1, got {m[3].tolist()}")
    a = m[:3, :3]
    det = np.linalg.det(a)
    if not det > 1e-15:
        raise DatasetError(f"{what}: expected a similarity (uniform scale > 0, rotation), got determinant {det:.3g}")
    s = det ** (1.0 / 3.0)
    r = a / s
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4):
        raise DatasetError(f"{what}: expected a similarity (uniform scale and rotation), got a non-uniform scale or shear")
    return float(s), r, m[:3, 3].copy()


def normalize_poses(c2w_world: np.ndarray, normalization: np.ndarray, what: str) -> np.ndarray:
    """World camera-to-world (N,4,4) -> normalized space under the similarity `normalization` (normalized ->
    world). Rotations stay orthonormal: the camera axes turn with R, the centre moves by the inverse map."""
    s, r, t = similarity_parts(normalization, what)
    out = np.repeat(np.eye(4)[None], len(c2w_world), 0)
    out[:, :3, :3] = r.T @ c2w_world[:, :3, :3]
    out[:, :3, 3] = (c2w_world[:, :3, 3] - t) @ r / s
    return out


def fit_unit_sphere(c2w: np.ndarray, intrinsics: np.ndarray, width: int, height: int,
                    points: np.ndarray | None = None, margin: float = 1.1) -> np.ndarray:
    """Normalization (normalized -> world, 4x4) that puts the scene in the unit sphere, from world cameras.

    With points (e.g. back-projected metric depth): a robust bounding sphere (centre of the 1..99 % box, radius
    the 99.9 % distance). Else from the frusta:
    when the optical axes converge in front of the cameras (an object orbit), the centre is their least-squares
    intersection and the radius the largest sphere seen whole by every camera (D_i sin(half fov_i)); when they do
    not (cameras inside a room looking out), the centre is the cameras' mean and the radius covers the cameras plus
    their spread again, as scannet-style recipes do (MonoSDF uses 2 / (extent + 3) for metric ScanNet rooms).
    """
    centres = c2w[:, :3, 3]
    axes = c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=1, keepdims=True)
    if points is not None and len(points) >= 16:
        lo, hi = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
        centre = (lo + hi) / 2
        radius = np.percentile(np.linalg.norm(points - centre, axis=1), 99.9)
    else:
        a = np.zeros((3, 3))
        b = np.zeros(3)
        for c, ax in zip(centres, axes):
            p = np.eye(3) - np.outer(ax, ax)
            a += p
            b += p @ c
        eig = np.linalg.eigvalsh(a)
        converged = False
        if eig[0] > 0.05 * len(centres):
            centre = np.linalg.solve(a, b)
            in_front = ((centre - centres) * axes).sum(1) > 0
            converged = in_front.mean() >= 0.9
        if converged:
            dist = np.linalg.norm(centre - centres, axis=1)
            half_fov = np.minimum(np.arctan2(np.minimum(intrinsics[:, 0, 2], width - intrinsics[:, 0, 2]), intrinsics[:, 0, 0]),
                                  np.arctan2(np.minimum(intrinsics[:, 1, 2], height - intrinsics[:, 1, 2]), intrinsics[:, 1, 1]))
            radius = float(np.min(dist * np.sin(half_fov)))
        else:
            centre = centres.mean(0)
            spread = float(np.linalg.norm(centres - centre, axis=1).max()) if len(centres) > 1 else 0.0
            radius = 2.0 * spread + 1.0 if spread > 0 else 1.0
    radius = max(float(radius) * margin, 1e-6)
    m = np.eye(4)
    m[:3, :3] *= radius
    m[:3, 3] = centre
    return m


# --- shared reading helpers ----------------------------------------------------------------------------------

def read_rgb(path: Path, what: str) -> np.ndarray:
    """(H,W,3) float32 in [0,1] from an 8- or 16-bit PNG/JPEG, values as stored (grey is repeated, alpha dropped)."""
    from ..scene.images import ImageReadError, read_image

    if not path.is_file():
        raise DatasetError(f"{what}: image {path} does not exist")
    try:
        img = read_image(path, raw=True)
    except ImageReadError as e:
        raise DatasetError(f"{what}: cannot read image {path}: {e}")
    return np.ascontiguousarray(np.repeat(img, 3, -1) if img.shape[-1] == 1 else img)


def read_raw_image(path: Path, what: str, kind: str) -> np.ndarray:
    """The stored integers of an image file (a mask, a 16-bit depth map), unscaled."""
    import imageio.v3 as iio

    if not path.is_file():
        raise DatasetError(f"{what}: {kind} {path} does not exist")
    try:
        return np.asarray(iio.imread(path))
    except Exception as e:  # imageio raises many types for a corrupt file
        raise DatasetError(f"{what}: cannot read {kind} {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


def read_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{what}: {path} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DatasetError(f"{what}: cannot read {path} as a .npy array: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
        raise DatasetError(f"{what}: {path}: expected a numeric array")
    return arr


def as_depth(arr: np.ndarray, h: int, w: int, path: Path, what: str) -> np.ndarray:
    """(H,W) float32 depth from (H,W), (H,W,1) or (1,H,W); finite."""
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.shape != (h, w):
        raise DatasetError(f"{what}: depth {path}: expected shape ({h}, {w}) like the image, got {arr.shape}")
    if not np.isfinite(a).all():
        raise DatasetError(f"{what}: depth {path}: expected finite values, found NaN or inf")
    return a


def as_normals(arr: np.ndarray, h: int, w: int, path: Path, what: str) -> np.ndarray:
    """(H,W,3) unit camera-frame normals from MonoSDF's 3 x H x W (or H x W x 3) map encoded in [0,1] (n*0.5+0.5)."""
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 3 and a.shape == (3, h, w):
        a = np.moveaxis(a, 0, -1)
    elif not (a.ndim == 3 and a.shape == (h, w, 3)):
        raise DatasetError(f"{what}: normal {path}: expected shape (3, {h}, {w}) like the image, got {arr.shape}")
    if not np.isfinite(a).all():
        raise DatasetError(f"{what}: normal {path}: expected finite values, found NaN or inf")
    if a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise DatasetError(f"{what}: normal {path}: expected values in [0, 1] (n * 0.5 + 0.5, as MonoSDF), "
                           f"got [{a.min():.3g}, {a.max():.3g}]")
    n = a * 2.0 - 1.0
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.where(norm > 1e-6, n / np.maximum(norm, 1e-6), np.array([0, 0, -1], np.float32)).astype(np.float32)


def read_mask(path: Path, h: int, w: int, what: str) -> np.ndarray:
    """(H,W) bool mask from .npy (nonzero = valid) or an image (nonzero in the first channel)."""
    a = read_npy(path, what) if path.suffix == ".npy" else read_raw_image(path, what, "mask")
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.shape != (h, w):
        raise DatasetError(f"{what}: mask {path}: expected shape ({h}, {w}) like the image, got {a.shape}")
    return a > 0


def check_intrinsics(k: np.ndarray, what: str) -> None:
    if not np.isfinite(k).all():
        raise DatasetError(f"{what}: intrinsics: expected finite values, found NaN or inf")
    if not (k[0, 0] > 0 and k[1, 1] > 0) or abs(np.linalg.det(k)) < 1e-12:
        raise DatasetError(f"{what}: intrinsics: expected positive focal lengths (singular K: fx={k[0, 0]:.3g}, "
                           f"fy={k[1, 1]:.3g})")


def stack_optional(items: list, labels: list[str], kind: str):
    """None if no frame has the prior, a stacked tensor if all have it, DatasetError if only some do."""
    have = [x is not None for x in items]
    if not any(have):
        return None
    if not all(have):
        missing = have.index(False)
        raise DatasetError(f"{labels[missing]}: no {kind} while other frames have one; give it for every frame or none")
    return torch.from_numpy(np.stack(items))
