"""BVH kernel (C++ CPU build) against its brute-force torch twin, adversarial rays, bad input, and Open3D/Embree."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from render.core.procedural import bumpy_sphere, camera_rays, scanned_scene
from render.kernels.build import load
from render.kernels.bvh import BVH, BVHReference


def random_directions(n, gen):
    d = torch.randn(n, 3, generator=gen)
    return d / d.norm(dim=1, keepdim=True)


def assert_same_hits(bvh_hits, ref_hits, ref: BVHReference, origins, directions, tmin=0.0, tmax=math.inf):
    """Hit/miss must agree exactly and t to a few ulps: where primitives meet (a shared vertex), each computes the
    point's t with its own rounding and box culling may keep a 1-ulp-farther one; the reported primitive must
    then itself be hit at exactly the reported t."""
    assert torch.equal(bvh_hits.hit, ref_hits.hit), f"{(bvh_hits.hit != ref_hits.hit).sum()} hit/miss mismatches"
    torch.testing.assert_close(bvh_hits.t[bvh_hits.hit], ref_hits.t[ref_hits.hit], rtol=1e-6, atol=0)
    assert (bvh_hits.t == ref_hits.t).float().mean() > 0.95
    assert torch.isinf(bvh_hits.t[~bvh_hits.hit]).all()
    differ = bvh_hits.prim != ref_hits.prim
    if differ.any():
        # The reported primitive must itself be hit at exactly that t.
        idx = differ.nonzero()[:, 0]
        for i in idx.tolist():
            p = int(bvh_hits.prim[i])
            single = _single_prim_reference(ref, p)
            lo, hi = (x[i:i + 1] if torch.is_tensor(x) else x for x in (tmin, tmax))
            h = single.closest_hit(origins[i:i + 1], directions[i:i + 1], lo, hi)
            assert h.hit.item() and h.t.item() == bvh_hits.t[i].item()
    same = ~differ & bvh_hits.hit
    torch.testing.assert_close(bvh_hits.u[same], ref_hits.u[same], atol=1e-5, rtol=0)
    torch.testing.assert_close(bvh_hits.v[same], ref_hits.v[same], atol=1e-5, rtol=0)


def _single_prim_reference(ref: BVHReference, prim: int) -> BVHReference:
    if prim < ref.num_triangles:
        tri = ref.tris[prim]
        return BVHReference(tri, torch.tensor([[0, 1, 2]], dtype=torch.int32))
    return BVHReference(spheres=ref.spheres[prim - ref.num_triangles][None])


@pytest.fixture(scope="module")
def soup():
    gen = torch.Generator().manual_seed(1)
    nt = 600
    centers = torch.rand(nt, 1, 3, generator=gen) * 4 - 2
    verts = (centers + 0.4 * torch.randn(nt, 3, 3, generator=gen)).reshape(-1, 3)
    faces = torch.arange(nt * 3, dtype=torch.int32).reshape(-1, 3)
    spheres = torch.cat([torch.rand(40, 3, generator=gen) * 4 - 2, torch.rand(40, 1, generator=gen) * 0.3 + 0.05], 1)
    return verts, faces, spheres


def test_random_soup_matches_reference(soup):
    verts, faces, spheres = soup
    gen = torch.Generator().manual_seed(2)
    n = 4000
    origins = torch.rand(n, 3, generator=gen) * 6 - 3
    directions = random_directions(n, gen)
    bvh, ref = BVH(verts, faces, spheres), BVHReference(verts, faces, spheres)
    a, b = bvh.closest_hit(origins, directions), ref.closest_hit(origins, directions)
    assert a.hit.float().mean() > 0.3  # the test must exercise hits
    assert (a.prim >= bvh.num_triangles).any() and ((a.prim >= 0) & (a.prim < bvh.num_triangles)).any()
    assert_same_hits(a, b, ref, origins, directions)
    assert torch.equal(bvh.any_hit(origins, directions), a.hit)


@pytest.mark.parametrize("leaf", [1, 4, 16])
def test_leaf_sizes_and_unnormalized_directions(soup, leaf):
    verts, faces, spheres = soup
    gen = torch.Generator().manual_seed(3)
    n = 2000
    origins = torch.rand(n, 3, generator=gen) * 6 - 3
    directions = random_directions(n, gen) * (torch.rand(n, 1, generator=gen) * 3 + 0.1)
    bvh, ref = BVH(verts, faces, spheres, max_leaf_size=leaf), BVHReference(verts, faces, spheres)
    assert_same_hits(bvh.closest_hit(origins, directions), ref.closest_hit(origins, directions), ref, origins,
                     directions)


def test_tmin_tmax_are_honoured(soup):
    verts, faces, spheres = soup
    gen = torch.Generator().manual_seed(4)
    n = 3000
    origins = torch.rand(n, 3, generator=gen) * 6 - 3
    directions = random_directions(n, gen)
    bvh, ref = BVH(verts, faces, spheres), BVHReference(verts, faces, spheres)
    full = bvh.closest_hit(origins, directions)
    tmin = torch.rand(n, generator=gen) * 2
    tmax = tmin + torch.rand(n, generator=gen) * 3
    a, b = bvh.closest_hit(origins, directions, tmin, tmax), ref.closest_hit(origins, directions, tmin, tmax)
    assert_same_hits(a, b, ref, origins, directions, tmin, tmax)
    assert ((a.t[a.hit] > tmin[a.hit]) & (a.t[a.hit] < tmax[a.hit])).all()
    # A hit closer than tmin is skipped, one past tmax is cut: the windowed result differs from the full one.
    assert (a.hit != full.hit).any()
    assert torch.equal(bvh.any_hit(origins, directions, tmin, tmax), a.hit)
    # Scalars broadcast.
    c = bvh.closest_hit(origins, directions, 0.5, 2.0)
    assert ((c.t[c.hit] > 0.5) & (c.t[c.hit] < 2.0)).all()


def _closed_mesh():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)


def test_watertight_through_vertices_and_edges():
    """Rays from inside a closed mesh aimed exactly at vertices and edge midpoints never leak."""
    verts, faces = _closed_mesh()
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    targets = np.concatenate([verts, (verts[edges[:, 0]] + verts[edges[:, 1]]) / 2]).astype(np.float32)
    gen = torch.Generator().manual_seed(5)
    starts = [torch.zeros(1, 3), torch.rand(7, 3, generator=gen) * 0.6 - 0.3]
    bvh, ref = BVH(verts, faces), BVHReference(verts, faces)
    for s in torch.cat(starts):
        o = s.expand(len(targets), 3).contiguous()
        d = torch.from_numpy(targets) - o
        a = bvh.closest_hit(o, d)
        assert a.hit.all(), f"{(~a.hit).sum()} rays leaked through edges/vertices from {s.tolist()}"
        assert_same_hits(a, ref.closest_hit(o, d), ref, o, d)
        # From outside, aimed at the same points: the entry hit exists too.
        o2 = (torch.from_numpy(targets) * 3).contiguous()
        d2 = (torch.from_numpy(targets) - o2).contiguous()
        assert bvh.closest_hit(o2, d2).hit.all()


def test_shared_edge_hit_counts_once_per_surface():
    """A quad split in two along its diagonal: rays through the diagonal hit exactly at the plane."""
    verts = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    s = torch.linspace(0.01, 0.99, 257)
    o = torch.stack([s, s, torch.ones_like(s)], 1)
    d = torch.tensor([[0.0, 0.0, -1.0]]).expand(len(s), 3).contiguous()
    # Also slanted rays through the diagonal.
    o2 = torch.stack([s - 0.3, s + 0.2, torch.ones_like(s)], 1)
    d2 = torch.stack([torch.full_like(s, 0.3), torch.full_like(s, -0.2), -torch.ones_like(s)], 1)
    bvh = BVH(verts, faces)
    for oo, dd in ((o, d), (o2, d2)):
        h = bvh.closest_hit(oo.contiguous(), dd.contiguous())
        assert h.hit.all()
        torch.testing.assert_close(h.t, torch.ones_like(h.t), atol=1e-6, rtol=0)


def _wide_cases():
    """(name, vertices, faces, spheres, origins, directions, tmin, tmax) for the 8-wide tree: a random soup with
    spheres, the bundled Cornell box, and a closed mesh with rays aimed exactly at its vertices and edge midpoints
    (grazing along the surface too) plus rays that miss."""
    from render.integrators import SceneData
    from render.scene import load_scene

    gen = torch.Generator().manual_seed(11)
    cases = []
    nt = 400
    centers = torch.rand(nt, 1, 3, generator=gen) * 4 - 2
    verts = (centers + 0.3 * torch.randn(nt, 3, 3, generator=gen)).reshape(-1, 3)
    faces = torch.arange(nt * 3, dtype=torch.int32).reshape(-1, 3)
    spheres = torch.cat([torch.rand(30, 3, generator=gen) * 4 - 2, torch.rand(30, 1, generator=gen) * 0.3 + 0.05], 1)
    n = 3000
    o = torch.rand(n, 3, generator=gen) * 6 - 3
    d = random_directions(n, gen) * (torch.rand(n, 1, generator=gen) * 2 + 0.2)
    cases.append(("soup", verts, faces, spheres, o, d, torch.rand(n, generator=gen) * 0.5, torch.full((n,), math.inf)))

    root = Path(__file__).resolve().parents[2]
    sd = SceneData(load_scene(root / "scenes/cbox/cbox.xml", params={"res": "16"}))
    cv, cf = sd.vertices.float(), sd.faces.int()
    lo, hi = cv.min(0).values, cv.max(0).values
    o = lo + (hi - lo) * torch.rand(n, 3, generator=gen)
    # From inside the box and from outside it, towards its vertices (edges of the quads) and at random.
    targets = cv[torch.randint(len(cv), (n,), generator=gen)]
    d = torch.where(torch.rand(n, 1, generator=gen) < 0.5, targets - o, random_directions(n, gen))
    o = torch.where(torch.rand(n, 1, generator=gen) < 0.2, o + (hi - lo) * 2, o)
    cases.append(("cbox", cv, cf, torch.zeros(0, 4), o, d, torch.zeros(n), torch.full((n,), math.inf)))

    mv, mf = (torch.from_numpy(x) for x in _closed_mesh())
    edges = torch.cat([mf[:, [0, 1]], mf[:, [1, 2]], mf[:, [2, 0]]]).long()
    targets = torch.cat([mv, (mv[edges[:, 0]] + mv[edges[:, 1]]) / 2])
    m = len(targets)
    o = torch.cat([torch.zeros(m, 3), targets * 2.5, targets * 2.5 + torch.tensor([0.0, 0.0, 3.0])])
    d = torch.cat([targets, targets - targets * 2.5, random_directions(m, gen)])
    # Grazing: from a vertex along one of its edges (the ray lies in the surface).
    v0, v1 = mv[edges[:, 0]], mv[edges[:, 1]]
    o = torch.cat([o, v0 - (v1 - v0)])
    d = torch.cat([d, v1 - v0])
    k = len(o)
    cases.append(("icosphere", mv, mf, torch.zeros(0, 4), o.contiguous(), d.contiguous(), torch.zeros(k),
                  torch.full((k,), math.inf)))
    return cases


@pytest.mark.parametrize("case", _wide_cases(), ids=lambda c: c[0])
def test_wide_bvh_matches_4_wide_and_reference(case):
    """The CPU's 8-wide tree with 4-triangle packets (bvh_wide.h, the fused path tracer's) agrees with the 4-wide
    tree: the same hits and misses, bit-identical t, u, v and primitive except where primitives meet within a few
    ulps of t (a shared vertex: which of the near-equal hits a tree finds first depends on its shape; the wide
    one's is then a real hit of its primitive, assert_same_hits); both match the torch reference;
    any-hit agrees with closest-hit, and an exclusive window ending at the hit finds nothing closer."""
    name, verts, faces, spheres, o, d, tmin, tmax = case
    bvh, ref = BVH(verts, faces, spheres), BVHReference(verts, faces, spheres)
    info = load().bvh_wide_info(bvh.nodes, bvh.prims)
    if not info:
        pytest.skip("the 8-wide tree needs AVX2 (this build traces the 4-wide one for wide=True)")
    wide_nodes, packets = info
    # Fewer, wider nodes than the 4-wide tree; packets of one to four primitives.
    n_prims = faces.shape[0] + spheres.shape[0]
    assert 0 < wide_nodes < bvh.num_nodes and n_prims / 4 <= packets <= n_prims
    a = bvh.closest_hit(o, d, tmin, tmax)
    w = bvh.closest_hit(o, d, tmin, tmax, wide=True)
    assert 0.2 < w.hit.float().mean() < 1.0, "the case must exercise hits and misses"
    assert torch.equal(w.hit, a.hit)
    differ = (w.t != a.t) | (w.prim != a.prim)
    assert differ.float().mean() < 0.1  # the cases aim many rays at shared vertices
    same = ~differ
    assert torch.equal(w.u[same], a.u[same]) and torch.equal(w.v[same], a.v[same])
    torch.testing.assert_close(w.t[w.hit], a.t[a.hit], rtol=1e-6, atol=0)
    assert_same_hits(w, ref.closest_hit(o, d, tmin, tmax), ref, o, d, tmin, tmax)
    assert torch.equal(bvh.any_hit(o, d, tmin, tmax, wide=True), w.hit)
    t_cut = torch.where(w.hit, w.t * (1 - 1e-6), 1.0)
    assert not bvh.any_hit(o, d, tmin, t_cut, wide=True)[w.hit & (t_cut > tmin)].any()
    if spheres.shape[0]:
        assert (w.prim >= bvh.num_triangles).any() and ((w.prim >= 0) & (w.prim < bvh.num_triangles)).any()


def test_parallel_and_degenerate():
    verts = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0],  # a triangle in z=0
                          [2, 2, 2], [3, 3, 3], [4, 4, 4],  # collinear: zero area
                          [5, 5, 5], [5, 5, 5], [5, 5, 5]],  # a point
                         dtype=torch.float32)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=torch.int32)
    bvh, ref = BVH(verts, faces), BVHReference(verts, faces)
    # Rays lying in the triangle's plane, along the collinear segment, and through the point.
    o = torch.tensor([[-1, 0.2, 0], [-1, 0.0, 0], [0, 0, 0], [1, 1, 1], [2.5, 2.5, 2.5], [5, 5, 0], [5, 5, 4]],
                     dtype=torch.float32)
    d = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 1]],
                     dtype=torch.float32)
    a = bvh.closest_hit(o, d)
    assert not a.hit.any()
    assert_same_hits(a, ref.closest_hit(o, d), ref, o, d)


def test_spheres_inside_grazing_and_uv():
    spheres = torch.tensor([[0, 0, 0, 1.0], [3, 0, 0, 0.5]])
    bvh, ref = BVH(spheres=spheres), BVHReference(spheres=spheres)
    gen = torch.Generator().manual_seed(6)
    n = 3000
    inside = random_directions(n, gen) * torch.rand(n, 1, generator=gen) * 0.95
    o = torch.cat([inside, torch.tensor([[0.0, 1.0, -5.0], [0.0, 1.0 + 1e-6, -5.0], [3.0, 0.5, -2.0]])])
    d = torch.cat([random_directions(n, gen), torch.tensor([[0.0, 0, 1], [0.0, 0, 1], [0.0, 0, 1]])])
    a, b = bvh.closest_hit(o, d), ref.closest_hit(o, d)
    assert a.hit[:n].all(), "origins inside a sphere must hit its far side"
    torch.testing.assert_close((o[:n] + a.t[:n, None] * d[:n]).norm(dim=1), torch.ones(n), atol=1e-5, rtol=0)
    assert_same_hits(a, b, ref, o, d)
    assert not a.hit[n + 1]  # passes just outside the silhouette
    # uv as Mitsuba's sphere: u = phi / 2pi, v = theta / pi (world-aligned frame at the center).
    p = o[:n] + a.t[:n, None] * d[:n]
    phi = torch.atan2(p[:, 1], p[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(a.u[:n], phi / (2 * math.pi), atol=1e-4, rtol=0)
    torch.testing.assert_close(a.v[:n], torch.acos(p[:, 2].clamp(-1, 1)) / math.pi, atol=1e-4, rtol=0)


def test_empty_scene():
    bvh = BVH()
    o, d = torch.zeros(10, 3), torch.ones(10, 3)
    h = bvh.closest_hit(o, d)
    assert not h.hit.any() and torch.isinf(h.t).all() and (h.prim == -1).all()
    assert not bvh.any_hit(o, d).any()
    assert bvh.closest_hit(torch.zeros(0, 3), torch.zeros(0, 3)).t.shape == (0,)


def test_bounds_and_mesh_scale():
    verts, faces = bumpy_sphere(3000, center=(1, 2, 3), radius=0.5)
    bvh = BVH(verts, faces)
    lo, hi = bvh.bounds()
    torch.testing.assert_close(lo, torch.from_numpy(verts.min(0)))
    torch.testing.assert_close(hi, torch.from_numpy(verts.max(0)))


@pytest.mark.parametrize("case,message", [
    (lambda b: b.closest_hit(torch.zeros(4, 3, dtype=torch.float64), torch.ones(4, 3)), "origins: expected dtype float32"),
    (lambda b: b.closest_hit(torch.zeros(4, 2), torch.ones(4, 2)), "origins: expected shape (N, 3)"),
    (lambda b: b.closest_hit(torch.zeros(4, 3), torch.ones(5, 3)), "directions: expected 4 rows"),
    (lambda b: b.closest_hit(torch.zeros(4, 3), [[1, 2, 3]] * 4), "directions: expected a torch.Tensor"),
    (lambda b: b.closest_hit(torch.zeros(4, 3), torch.ones(4, 3), torch.zeros(3)), "tmin: expected a scalar or shape (4,)"),
    (lambda b: b.closest_hit(torch.zeros(4, 3), torch.ones(4, 3), 0.0, "far"), "tmax: expected a number"),
    (lambda b: b.any_hit(torch.zeros(4, 3), torch.ones(4, 3), 0.0, torch.ones(4, dtype=torch.float64)), "tmax: expected dtype float32"),
    (lambda b: b.closest_hit(torch.zeros(4, 3, device="meta"), torch.ones(4, 3)), "origins: expected device cpu"),
])
def test_bad_ray_input(case, message):
    bvh = BVH(torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        case(bvh)


@pytest.mark.parametrize("kwargs,message", [
    (dict(vertices=torch.rand(3, 3), faces=torch.tensor([[0, 1, 3]])), r"faces: expected vertex indices in \[0, 3\)"),
    (dict(vertices=torch.rand(3, 3), faces=torch.tensor([[0, 1, -1]])), r"faces: expected vertex indices"),
    (dict(vertices=torch.rand(3, 3), faces=torch.tensor([[0.0, 1.0, 2.0]])), "faces: expected an integer dtype"),
    (dict(vertices=torch.rand(3, 2), faces=torch.tensor([[0, 1, 2]])), r"vertices: expected shape \(N, 3\)"),
    (dict(vertices=torch.tensor([[0, 0, 0], [1, 0, math.nan], [0, 1, 0]]), faces=torch.tensor([[0, 1, 2]])), "vertices: expected finite"),
    (dict(vertices=torch.randint(0, 3, (3, 3)), faces=torch.tensor([[0, 1, 2]])), "vertices: expected dtype float32"),
    (dict(spheres=torch.tensor([[0.0, 0, 0]])), r"spheres: expected shape \(N, 4\)"),
    (dict(spheres=torch.tensor([[0, 0, math.inf, 1.0]])), "spheres: expected finite"),
    (dict(vertices="mesh.obj"), "vertices: expected a torch.Tensor or numpy array"),
])
def test_bad_scene_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BVH(**kwargs)


def test_extension_checks_directly():
    """The C++ binding itself rejects bad tensors with ValueError (no crash) when the wrapper is bypassed."""
    from render.kernels import load

    ext = load()
    bvh = BVH(torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    o, d, t = torch.zeros(4, 3), torch.ones(4, 3), torch.zeros(4)
    with pytest.raises(ValueError, match="nodes: expected last dimension"):
        ext.bvh_intersect(bvh.nodes[:, :8].contiguous(), bvh.prims, bvh.prim_ids, 1, o, d, t, t, False)
    with pytest.raises(ValueError, match="tmax: expected 4 rows"):
        ext.bvh_intersect(bvh.nodes, bvh.prims, bvh.prim_ids, 1, o, d, t, torch.zeros(3), False)
    with pytest.raises(ValueError, match="faces: expected dtype Int, got Long"):
        ext.bvh_build(torch.rand(3, 3), torch.zeros(1, 3, dtype=torch.int64), torch.zeros(0, 4), 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA build is only compile-checked")
def test_cuda_matches_reference(soup):
    verts, faces, spheres = soup
    gen = torch.Generator().manual_seed(7)
    n = 20000
    origins = torch.rand(n, 3, generator=gen) * 6 - 3
    directions = random_directions(n, gen)
    bvh = BVH(verts, faces, spheres).to("cuda")
    a = bvh.closest_hit(origins.cuda(), directions.cuda())
    b = BVHReference(verts, faces, spheres).closest_hit(origins, directions)
    a = type(a)(*(x.cpu() for x in (a.t, a.prim, a.u, a.v)))
    agree = (a.hit == b.hit).float().mean()
    assert agree > 0.9999
    both = a.hit & b.hit
    torch.testing.assert_close(a.t[both], b.t[both], rtol=1e-5, atol=1e-6)
    assert torch.equal(bvh.any_hit(origins.cuda(), directions.cuda()).cpu(), a.hit)


# ----------------------------------------------------------------------------------------------------------
# Against Open3D's RaycastingScene (Embree) on real meshes.

def _embree(verts, faces, origins, directions):
    # Skips only the Embree comparisons when open3d is missing (e.g. on a CUDA box), not the whole module.
    o3d = pytest.importorskip("open3d", reason="open3d (Embree anchor) not installed")
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts), o3d.core.Tensor(faces.astype(np.uint32)))
    out = scene.cast_rays(o3d.core.Tensor(np.concatenate([origins, directions], 1).astype(np.float32)))
    return out["t_hit"].numpy(), out["primitive_ids"].numpy().astype(np.int64)


@pytest.mark.parametrize("mesh", ["icosphere", "scanned"])
def test_closest_hit_matches_embree(mesh):
    if mesh == "icosphere":
        m = trimesh.creation.icosphere(subdivisions=5)
        verts, faces = np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int32)
        origins, directions = camera_rays(320, 240, origin=(0.3, -3.0, 0.8), target=(0, 0, 0), fov_deg=45)
    else:
        verts, faces = scanned_scene(60000)
        origins, directions = camera_rays(320, 240)
    rng = np.random.default_rng(0)
    # Add incoherent rays from random points in the bounds.
    lo, hi = verts.min(0), verts.max(0)
    ro = (rng.random((40000, 3)) * (hi - lo) + lo).astype(np.float32)
    rd = rng.normal(size=(40000, 3)).astype(np.float32)
    rd /= np.linalg.norm(rd, axis=1, keepdims=True)
    origins, directions = np.concatenate([origins, ro]), np.concatenate([directions, rd])
    t_emb, prim_emb = _embree(verts, faces, origins, directions)
    hits = BVH(verts, faces).closest_hit(torch.from_numpy(origins), torch.from_numpy(directions))
    ours_hit, t_ours = hits.hit.numpy(), hits.t.numpy()
    emb_hit = np.isfinite(t_emb)
    agree = (ours_hit == emb_hit).mean()
    assert agree >= 0.9999, f"hit/miss agreement {agree:.6f} < 0.9999 ({(ours_hit != emb_hit).sum()} rays)"
    both = ours_hit & emb_hit
    rel = np.abs(t_ours[both] - t_emb[both]) / np.maximum(t_emb[both], 1e-6)
    assert both.mean() > 0.3
    frac_close = (rel <= 1e-4).mean()
    assert frac_close >= 0.9999, f"t within 1e-4 relative on {frac_close:.6f} of rays"


def test_non_finite_rays_miss_without_crashing():
    # Origins like an escaped ray's inf hit point: inf - inf NaNs in the slab test used to enter empty child slots.
    import itertools

    verts, faces = scanned_scene(2000)
    bvh = BVH(verts, faces)
    vals = [math.inf, -math.inf, math.nan, 0.25]
    combos = [c for c in itertools.product(vals, repeat=3) if not all(math.isfinite(x) for x in c)]
    o = torch.tensor(combos, dtype=torch.float32)
    d = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.8]]), dim=1).expand(len(o), 3).contiguous()
    hits = bvh.closest_hit(o, d)
    assert not hits.hit.any() and torch.isinf(hits.t).all()
    assert not bvh.any_hit(o, d).any()
    o2 = torch.zeros(2, 3)
    d2 = torch.tensor([[math.nan, 0.0, 1.0], [math.inf, 1.0, 0.0]])
    assert not bvh.closest_hit(o2, d2).hit.any()


def _packet_cases():
    """_wide_cases plus the bundled scenes' trees (cbox, spheres, lights: triangles and spheres) with rays as the
    path tracer makes them: 16-ray bundles from one point through neighbouring directions (camera rays), random
    rays from inside the scene, and shadow-like rays ending short of a target (tmax 1 - 1e-4 along target - origin)."""
    from render.integrators import SceneData
    from render.scene import load_scene

    cases = list(_wide_cases())
    gen = torch.Generator().manual_seed(23)
    root = Path(__file__).resolve().parents[2]
    for name in ("cbox", "spheres", "lights"):
        sd = SceneData(load_scene(root / f"scenes/{name}/{name}.xml", params={"res": "16", "width": "16",
                                                                             "height": "16"}))
        v, f, s = sd.vertices.float(), sd.faces.int(), sd.spheres.float()
        pts = torch.cat([v, s[:, :3]]) if len(s) else v
        lo, hi = pts.min(0).values, pts.max(0).values
        n = 4096
        # Bundles of 16: one origin, directions spread around a random axis by `spread` (0: identical rays).
        g = n // 16
        axis = random_directions(g, gen)
        spread = torch.tensor([0.0, 0.01, 0.05, 0.3, 2.0])[torch.randint(5, (g,), generator=gen)]
        o_b = (lo + (hi - lo) * torch.rand(g, 3, generator=gen)).repeat_interleave(16, 0)
        d_b = axis.repeat_interleave(16, 0) + spread.repeat_interleave(16)[:, None] * torch.randn(n, 3, generator=gen)
        o_r = lo + (hi - lo) * torch.rand(n, 3, generator=gen)
        d_r = random_directions(n, gen)
        # Shadow-like: towards a vertex / sphere center (on an edge or hidden behind the sphere's surface).
        tgt = pts[torch.randint(len(pts), (n,), generator=gen)]
        o = torch.cat([o_b, o_r, o_r])
        d = torch.cat([d_b, d_r, tgt - o_r])
        tmin = torch.cat([torch.zeros(2 * n), torch.rand(n, generator=gen) * 0.1])
        tmax = torch.cat([torch.full((2 * n,), math.inf), torch.full((n,), 1 - 1e-4)])
        cases.append((f"scene-{name}", v, f, s, o.contiguous(), d.contiguous(), tmin, tmax))
    return cases


@pytest.mark.parametrize("case", _packet_cases(), ids=lambda c: c[0])
def test_packet_traversal_matches_single_ray(case):
    """Ray packets (16 rays with AVX-512, 8 with AVX2) through the 8-wide tree (bvh_wide.h packet_traverse) give every
    ray the single-ray traversal's closest hit: the same hits and misses, bit-identical t, u, v and primitive except
    where primitives meet within a few ulps of t (rays aimed at shared vertices and edges: which of the near-equal
    hits a traversal finds first depends on its visiting order, as between the 4- and 8-wide trees; then a real hit
    of its primitive, assert_same_hits); on the bundled scenes' path-like rays the same t everywhere. Any-hit the
    same. For pure packets (switch 0), the default hybrid (2) and packets that hand over every subtree with fewer
    than 16 rays left (15), incl. a last packet of fewer than 16 rays."""
    name, verts, faces, spheres, o, d, tmin, tmax = case
    if not load().bvh_packet_compiled():
        pytest.skip("packet traversal needs AVX2 or AVX-512")
    bvh, ref = BVH(verts, faces, spheres), BVHReference(verts, faces, spheres)
    n = len(o) - 5  # a partial last packet
    o, d, tmin, tmax = o[:n].contiguous(), d[:n].contiguous(), tmin[:n].contiguous(), tmax[:n].contiguous()
    w = bvh.closest_hit(o, d, tmin, tmax, wide=True)
    wa = bvh.any_hit(o, d, tmin, tmax, wide=True)
    assert 0.05 < w.hit.float().mean() < 1.0 or name.endswith("cbox"), "hits and misses"
    for switch in (0, 2, 15):
        p = bvh.closest_hit(o, d, tmin, tmax, wide=True, packet=switch)
        assert torch.equal(p.hit, w.hit)
        differ = (p.t != w.t) | (p.prim != w.prim)
        assert differ.float().mean() < 0.1
        same = ~differ
        assert torch.equal(p.u[same], w.u[same]) and torch.equal(p.v[same], w.v[same])
        torch.testing.assert_close(p.t[p.hit], w.t[w.hit], rtol=1e-6, atol=0)
        if name.startswith("scene-"):
            assert torch.equal(p.t, w.t)  # (w itself is checked against the reference in the tests above)
        else:
            assert_same_hits(p, ref.closest_hit(o, d, tmin, tmax), ref, o, d, tmin, tmax)
        assert torch.equal(bvh.any_hit(o, d, tmin, tmax, wide=True, packet=switch), wa)
