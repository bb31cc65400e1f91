"""BVH over triangles and analytic spheres: closest hit and any hit, with a brute-force pure-torch twin."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .build import load
from .checks import as_tensor, check_rays, ray_bounds


@dataclass
class Hits:
    """Closest hits: t (inf on a miss), prim (-1 on a miss; triangles first, then spheres), u, v.

    For triangles (u, v) are the barycentrics of vertices 1 and 2; for spheres they are (phi / 2pi, theta / pi)
    in the world-aligned frame at the sphere's center, as Mitsuba's sphere.
    """

    t: torch.Tensor
    prim: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    @property
    def hit(self) -> torch.Tensor:
        return self.prim >= 0


def _scene_inputs(vertices, faces, spheres):
    vertices = as_tensor(vertices, "vertices", torch.float32, (None, 3), empty_shape=(0, 3))
    faces = as_tensor(faces, "faces", torch.int32, (None, 3), empty_shape=(0, 3), integer=True)
    spheres = as_tensor(spheres, "spheres", torch.float32, (None, 4), empty_shape=(0, 4))
    if vertices.numel() and not torch.isfinite(vertices).all():
        raise ValueError("vertices: expected finite values, found NaN or inf")
    if spheres.numel() and not torch.isfinite(spheres).all():
        raise ValueError("spheres: expected finite values, found NaN or inf")
    if faces.numel():
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= vertices.shape[0]:
            raise ValueError(f"faces: expected vertex indices in [0, {vertices.shape[0]}), got [{lo}, {hi}]")
    return vertices, faces, spheres


class BVH:
    """Binned-SAH bounding volume hierarchy over triangles (vertices (V,3), faces (F,3)) and spheres (S,4).

    Built on the CPU by the C++ kernel; `.to("cuda")` moves it for the CUDA traversal. Primitive ids are
    face indices for triangles and F + sphere index for spheres.
    """

    def __init__(self, vertices=None, faces=None, spheres=None, max_leaf_size: int = 0):
        vertices, faces, spheres = _scene_inputs(vertices, faces, spheres)
        self.num_triangles = int(faces.shape[0])
        self.num_spheres = int(spheres.shape[0])
        self.nodes, self.prims, self.prim_ids = load().bvh_build(vertices, faces, spheres, int(max_leaf_size))
        self.device = torch.device("cpu")

    def to(self, device) -> "BVH":
        out = object.__new__(BVH)
        out.__dict__.update(self.__dict__)
        out.device = torch.device(device)
        out.nodes, out.prims, out.prim_ids = (x.to(device) for x in (self.nodes, self.prims, self.prim_ids))
        return out

    @property
    def num_nodes(self) -> int:
        return int(self.nodes.shape[0])

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene bounds (lo, hi) from the root node; empty scenes give (inf, -inf)."""
        if self.num_nodes == 0:
            return torch.full((3,), math.inf), torch.full((3,), -math.inf)
        root = self.nodes[0].cpu().view(torch.float32)[:24].view(6, 4)  # lo_x, hi_x, lo_y, hi_y, lo_z, hi_z
        used = self.nodes[0, 28:32].cpu() >= 0
        lo = root[0::2][:, used].min(1).values
        hi = root[1::2][:, used].max(1).values
        return lo, hi

    def _intersect(self, origins, directions, tmin, tmax, any_hit: bool, wide: bool, packet: int = -1):
        check_rays(origins, directions, self.device)
        tmin_t, tmax_t = ray_bounds(tmin, tmax, origins)
        return load().bvh_intersect(self.nodes, self.prims, self.prim_ids, self.num_triangles,
                                    origins.contiguous(), directions.contiguous(), tmin_t, tmax_t, any_hit, wide,
                                    packet)

    def closest_hit(self, origins, directions, tmin=0.0, tmax=math.inf, wide: bool = False,
                    packet: int = -1) -> Hits:
        """Closest intersection in the open interval (tmin, tmax) for each ray (origins, directions (N,3) float32).
        wide: trace the CPU's 8-wide tree (bvh_wide.h, what the fused path tracer uses on AVX2 CPUs; elsewhere the
        4-wide one). packet >= 0 with wide: 16 (AVX-512) or 8 (AVX2) consecutive rays at a time as a packet
        (bvh_wide.h packet_traverse; load().bvh_packet_compiled()), each ray alone where at most `packet` are left in a subtree."""
        t, prim, u, v = self._intersect(origins, directions, tmin, tmax, any_hit=False, wide=wide, packet=packet)
        return Hits(t, prim, u, v)

    def any_hit(self, origins, directions, tmin=0.0, tmax=math.inf, wide: bool = False,
                packet: int = -1) -> torch.Tensor:
        """True where anything is hit in (tmin, tmax): the shadow-ray query (wide, packet: as closest_hit)."""
        return self._intersect(origins, directions, tmin, tmax, any_hit=True, wide=wide, packet=packet)[0]


# ----------------------------------------------------------------------------------------------------------
# Pure-torch reference: every ray against every primitive, the same arithmetic as bvh.h.


def _max_dimension(a: torch.Tensor) -> torch.Tensor:
    x, y, z = a.unbind(-1)
    return torch.where(x > y, torch.where(x > z, 0, 2), torch.where(y > z, 1, 2))


def _watertight_reference(org, d, v0, v1, v2, tmin, tmax):
    """Woop et al. 2013 for rays (R,·) x triangles (P,·); returns t (R,P) with inf for misses, u, v."""
    kz = _max_dimension(d.abs())
    kx = torch.where(kz == 2, 0, kz + 1)
    ky = torch.where(kx == 2, 0, kx + 1)
    dz = d.gather(1, kz[:, None])[:, 0]
    flip = dz < 0
    kx, ky = torch.where(flip, ky, kx), torch.where(flip, kx, ky)
    sx = d.gather(1, kx[:, None])[:, 0] / dz
    sy = d.gather(1, ky[:, None])[:, 0] / dz
    sz = 1.0 / dz

    def project(v):
        rel = v[None, :, :] - org[:, None, :]  # (R,P,3)
        pick = lambda k: rel.gather(2, k[:, None, None].expand(-1, rel.shape[1], 1))[..., 0]
        z = pick(kz)
        return pick(kx) - sx[:, None] * z, pick(ky) - sy[:, None] * z, z

    ax, ay, az = project(v0)
    bx, by, bz = project(v1)
    cx, cy, cz = project(v2)
    U = cx * by - cy * bx
    V = ax * cy - ay * cx
    W = bx * ay - by * ax
    edge = (U == 0) | (V == 0) | (W == 0)
    if edge.any():
        dbl = lambda p, q, r, s: (p.double() * q.double() - r.double() * s.double()).float()
        U = torch.where(edge, dbl(cx, by, cy, bx), U)
        V = torch.where(edge, dbl(ax, cy, ay, cx), V)
        W = torch.where(edge, dbl(bx, ay, by, ax), W)
    inside = ~(((U < 0) | (V < 0) | (W < 0)) & ((U > 0) | (V > 0) | (W > 0)))
    det = U + V + W
    T = U * (sz[:, None] * az) + V * (sz[:, None] * bz) + W * (sz[:, None] * cz)
    inv_det = 1.0 / det
    t = T * inv_det
    ok = inside & (det != 0) & (t > tmin[:, None]) & (t < tmax[:, None])
    return torch.where(ok, t, math.inf), V * inv_det, W * inv_det


def _dot(a, b):
    """x*x' + y*y' + z*z' summed left to right, as vec.h's dot (a reduction could reorder the sum)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _sphere_reference(org, d, spheres, tmin, tmax):
    """Robust ray/sphere (Ray Tracing Gems ch. 7) for rays (R,·) x spheres (S,4); t (R,S) with inf for misses."""
    center, radius = spheres[None, :, :3], spheres[None, :, 3]
    f = org[:, None, :] - center
    dd = d[:, None, :]
    a = _dot(dd, dd)
    b = -_dot(f, dd)
    l = f + (b / a)[..., None] * dd
    disc = a * (radius * radius - _dot(l, l))
    c = _dot(f, f) - radius * radius
    # sqrt in double, rounded once: correctly rounded like sqrtf (torch's vectorized float sqrt may be 1 ulp off).
    q = b + torch.copysign(torch.sqrt(disc.clamp_min(0).double()).float(), b)
    t0, t1 = c / q, q / a
    t0, t1 = torch.minimum(t0, t1), torch.maximum(t0, t1)
    lo, hi = tmin[:, None], tmax[:, None]
    ok0 = (t0 > lo) & (t0 < hi)
    ok1 = (t1 > lo) & (t1 < hi)
    t = torch.where(ok0, t0, torch.where(ok1, t1, math.inf))
    return torch.where(disc >= 0, t, math.inf)


class BVHReference:
    """Brute-force twin of `BVH` in pure torch (same constructor and queries), for tests."""

    def __init__(self, vertices=None, faces=None, spheres=None, max_leaf_size: int = 0):
        vertices, faces, spheres = _scene_inputs(vertices, faces, spheres)
        self.num_triangles = int(faces.shape[0])
        self.num_spheres = int(spheres.shape[0])
        self.tris = vertices[faces.long()] if faces.numel() else torch.zeros(0, 3, 3)
        self.spheres = spheres
        self.device = torch.device("cpu")

    def closest_hit(self, origins, directions, tmin=0.0, tmax=math.inf, chunk_elems: int = 1 << 22) -> Hits:
        check_rays(origins, directions, self.device)
        tmin_t, tmax_t = ray_bounds(tmin, tmax, origins)
        n = origins.shape[0]
        out = Hits(torch.full((n,), math.inf), torch.full((n,), -1, dtype=torch.int32), torch.zeros(n), torch.zeros(n))
        num_prims = max(self.num_triangles + self.num_spheres, 1)
        step = max(1, chunk_elems // num_prims)
        for s in range(0, n, step):
            o, d = origins[s:s + step], directions[s:s + step]
            lo, hi = tmin_t[s:s + step], tmax_t[s:s + step]
            ts, us, vs = [], [], []
            if self.num_triangles:
                t, u, v = _watertight_reference(o, d, self.tris[:, 0], self.tris[:, 1], self.tris[:, 2], lo, hi)
                ts.append(t), us.append(u), vs.append(v)
            if self.num_spheres:
                ts.append(_sphere_reference(o, d, self.spheres, lo, hi))
            if not ts:
                continue
            t_all = torch.cat(ts, 1)
            best_t, best = t_all.min(1)
            hit = torch.isfinite(best_t)
            out.t[s:s + step] = best_t
            out.prim[s:s + step] = torch.where(hit, best, -1).int()
            if self.num_triangles:
                idx = best.clamp_max(self.num_triangles - 1)[:, None]
                is_tri = hit & (best < self.num_triangles)
                out.u[s:s + step] = torch.where(is_tri, torch.cat(us, 1).gather(1, idx)[:, 0], 0.0)
                out.v[s:s + step] = torch.where(is_tri, torch.cat(vs, 1).gather(1, idx)[:, 0], 0.0)
            if self.num_spheres:
                is_sph = hit & (best >= self.num_triangles)
                sph = self.spheres[(best - self.num_triangles).clamp(0, self.num_spheres - 1)]
                local = (o + best_t.where(is_sph, 0.0)[:, None] * d - sph[:, :3]) / sph[:, 3:4]
                phi = torch.atan2(local[:, 1], local[:, 0])
                phi = torch.where(phi < 0, phi + 2 * math.pi, phi)
                su = phi * (0.5 / math.pi)
                sv = torch.acos(local[:, 2].clamp(-1, 1)) * (1 / math.pi)
                out.u[s:s + step] = torch.where(is_sph, su, out.u[s:s + step])
                out.v[s:s + step] = torch.where(is_sph, sv, out.v[s:s + step])
        return out

    def any_hit(self, origins, directions, tmin=0.0, tmax=math.inf) -> torch.Tensor:
        return self.closest_hit(origins, directions, tmin, tmax).hit


def mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    """(vertices float32, faces int32) from a trimesh-like object."""
    return np.ascontiguousarray(mesh.vertices, np.float32), np.ascontiguousarray(mesh.faces, np.int32)
