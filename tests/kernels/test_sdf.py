"""Dense SDF and sphere tracing: C++ kernel against the torch twin, hits on analytic surfaces, the torch tracer, errors."""

import math

import pytest
import torch

from render.kernels import load
from render.kernels.sdf import DenseSDF, sphere_trace, sphere_trace_reference, sphere_trace_torch

RADIUS = 0.5
BOX_HALF = torch.tensor([0.45, 0.3, 0.6])


def sphere_sdf(p):
    return p.norm(dim=1) - RADIUS


def box_sdf(p):  # Quilez, "distance functions": exact box SDF
    q = p.abs() - BOX_HALF
    return q.clamp_min(0).norm(dim=1) + q.max(dim=1).values.clamp_max(0)


@pytest.fixture(scope="module")
def sphere_grid():
    return DenseSDF.from_function(sphere_sdf, [-1, -1, -1, 1, 1, 1], 65)


def _unit(v):
    return v / v.norm(dim=1, keepdim=True)


def _mixed_rays(n, scale=1.0):
    """Rays from outside aimed near the center, from inside the object, grazing the sphere, missing, axis-parallel."""
    q = n // 5
    o_out = _unit(torch.randn(q, 3)) * 2.0
    d_out = -o_out + torch.randn(q, 3) * 0.25
    o_in = torch.randn(q, 3) * 0.1
    d_in = torch.randn(q, 3)
    # Grazing: tangent to the sphere (closest approach = RADIUS), starting outside the grid box.
    normal = _unit(torch.randn(q, 3))
    tangent = _unit(torch.cross(normal, torch.randn(q, 3), dim=1))
    o_graze = normal * RADIUS * (1 + 1e-3 * torch.randn(q, 1)) - tangent * 2.0
    d_graze = tangent
    o_miss = _unit(torch.randn(q, 3)) * 1.5
    d_miss = o_miss + torch.randn(q, 3) * 0.2  # pointing away
    m = n - 4 * q
    o_axis = torch.rand(m, 3) * 2 - 1
    axis = torch.randint(0, 3, (m,))
    d_axis = torch.zeros(m, 3)
    d_axis[torch.arange(m), axis] = 1.0
    o_axis[torch.arange(m), axis] = -1.5
    o_axis[: m // 4, (axis[: m // 4] + 1) % 3] = 1.0  # on a face plane of the box, moving within it
    origins = torch.cat([o_out, o_in, o_graze, o_miss, o_axis])
    directions = torch.cat([d_out, d_in, d_graze, d_miss, d_axis]) * scale
    return origins, directions


def _assert_close_traces(a, b):
    """The kernel and the torch twin run the same float ops: bit-identical here; the bar is the documented one."""
    assert (a.hit == b.hit).float().mean() >= 0.999
    both = a.hit & b.hit
    assert torch.allclose(a.t[both], b.t[both], rtol=1e-5, atol=0)
    assert (a.steps == b.steps).float().mean() >= 0.999
    assert (a.t[both] == b.t[both]).float().mean() >= 0.99  # a different op order would differ on most hits


def test_query_kernel_matches_torch_trilinear():
    values = torch.randn(5, 9, 17)
    sdf = DenseSDF(values, [-1.0, 0.0, 2.0, 1.5, 0.5, 3.0])
    points = torch.rand(20000, 3) * torch.tensor([3.5, 1.5, 2.0]) + torch.tensor([-2.0, -0.5, 1.5])  # also outside
    assert torch.equal(sdf.query(points), sdf.query_kernel(points))
    # At the sample positions the samples come back; a linear field is reproduced everywhere (x first order).
    corners = torch.stack(torch.meshgrid(*[torch.linspace(float(sdf.lo[a]), float(sdf.hi[a]), values.shape[a])
                                           for a in range(3)], indexing="ij"), -1).reshape(-1, 3)
    assert torch.allclose(sdf.query(corners), values.reshape(-1), atol=1e-5)
    linear = DenseSDF.from_function(lambda p: p @ torch.tensor([1.0, -2.0, 0.5]), sdf.aabb, (5, 9, 17))
    inside = torch.rand(1000, 3) * (sdf.hi - sdf.lo) + sdf.lo
    assert torch.allclose(linear.query_kernel(inside), inside @ torch.tensor([1.0, -2.0, 0.5]), atol=1e-5)


@pytest.mark.parametrize("field,resolution", [(sphere_sdf, 48), (box_sdf, (33, 40, 29))])
def test_trace_matches_reference(field, resolution):
    sdf = DenseSDF.from_function(field, [-1, -1, -1, 1, 1, 1], resolution)
    origins, directions = _mixed_rays(3000, scale=1.7)
    n = origins.shape[0]
    near = torch.rand(n) * 0.2
    far = torch.full((n,), math.inf)
    far[::7] = 1.0 + torch.rand(n)[::7] * 2
    far[::31] = near[::31] - 0.1  # near > far
    a = sdf.sphere_trace(origins, directions, near, far, max_steps=96, eps=1e-4)
    b = sphere_trace_reference(sdf, origins, directions, near, far, max_steps=96, eps=1e-4)
    _assert_close_traces(a, b)
    assert 0.3 < a.hit.float().mean() < 0.9
    assert not a.hit[::31].any() and (a.steps[::31] == 0).all()
    assert torch.isinf(a.t[~a.hit]).all()
    # With over-relaxation the side-aware step walks back after overshooting.
    a = sdf.sphere_trace(origins, directions, near, far, step_scale=1.3)
    b = sphere_trace_reference(sdf, origins, directions, near, far, step_scale=1.3)
    _assert_close_traces(a, b)


def test_hits_lie_on_the_true_sphere(sphere_grid):
    origins = _unit(torch.randn(2000, 3)) * 1.8
    directions = _unit(-origins + torch.randn(2000, 3) * 0.15)
    out = sphere_grid.sphere_trace(origins, directions)
    # Analytic first intersection of the ray with the sphere (unit directions).
    b = (origins * directions).sum(1)
    c = (origins * origins).sum(1) - RADIUS**2
    disc = b * b - c
    expect_hit = disc > 1e-2  # leave grazing rays out of the analytic comparison
    assert out.hit[expect_hit].all()
    t_true = -b - disc.clamp_min(0).sqrt()
    both = expect_hit & out.hit
    assert (out.t[both] - t_true[both]).abs().max() < 2e-3  # trilinear error of |p| at h = 1/32
    hit_points = origins + out.t[:, None] * directions
    assert (hit_points[out.hit].norm(dim=1) - RADIUS).abs().max() < 2e-3
    assert not out.hit[disc < -1e-2].any()


def test_hits_lie_on_the_true_box():
    sdf = DenseSDF.from_function(box_sdf, [-1, -1, -1, 1, 1, 1], 41)
    origins = _unit(torch.randn(2000, 3)) * 1.7
    directions = -origins + torch.randn(2000, 3) * 0.05
    out = sdf.sphere_trace(origins, directions, eps=1e-5, max_steps=256)
    assert out.hit.float().mean() > 0.99
    p = origins[out.hit] + out.t[out.hit, None] * directions[out.hit]
    assert box_sdf(p).abs().max() < 2e-3


def test_rays_starting_inside_find_the_exit_surface(sphere_grid):
    directions = torch.randn(500, 3) * 3  # not unit length: t is in units of |d|
    origins = torch.zeros(500, 3)
    out = sphere_grid.sphere_trace(origins, directions)
    assert out.hit.all()
    assert torch.allclose(out.t * directions.norm(dim=1), torch.full((500,), RADIUS), atol=2e-3)


def test_torch_tracer_on_analytic_field_and_compaction():
    origins, directions = _mixed_rays(1000)
    evaluated = []

    def field(p):
        evaluated.append(p.shape[0])
        return sphere_sdf(p)

    out = sphere_trace(field, origins, directions, far=10.0, eps=1e-5)
    # Compaction: only rays still marching are evaluated, so the points handed to the field are the steps taken.
    assert sum(evaluated) == int(out.steps.sum())
    assert evaluated[-1] < evaluated[0]
    d = _unit(directions)
    b = (origins * d).sum(1)
    disc = b * b - ((origins * origins).sum(1) - RADIUS**2)
    outside = origins.norm(dim=1) > RADIUS
    front = outside & (disc > 1e-2) & (b < 0)
    assert out.hit[front].all()
    t_true = (-b - disc.clamp_min(0).sqrt()) / directions.norm(dim=1)
    assert (out.t[front] - t_true[front]).abs().max() < 1e-4
    # Same field through the grid (clipped to its box) agrees to the interpolation error.
    grid = DenseSDF.from_function(sphere_sdf, [-1, -1, -1, 1, 1, 1], 65)
    dense = sphere_trace(grid, origins, directions, far=10.0, eps=1e-5)
    assert (dense.hit[front]).all() and (dense.t[front] - out.t[front]).abs().max() < 2e-3


def test_step_budget_and_step_scale(sphere_grid):
    origins = torch.tensor([[0.3, 0.1, -2.0]]).repeat(4, 1)
    directions = torch.tensor([[0.0, 0.0, 1.0]]).repeat(4, 1)
    full = sphere_grid.sphere_trace(origins, directions)
    assert full.hit.all() and abs(full.t[0].item() - (2 - math.sqrt(RADIUS**2 - 0.1))) < 2e-3
    assert (full.steps > 3).all()
    short = sphere_grid.sphere_trace(origins, directions, max_steps=2)
    assert not short.hit.any() and (short.steps == 2).all() and torch.isinf(short.t).all()
    slow = sphere_grid.sphere_trace(origins, directions, step_scale=0.5)
    assert slow.hit.all() and (slow.steps > full.steps).all()


def test_cuda_matches_cpu(sphere_grid):
    if not torch.cuda.is_available() or not load().with_cuda:
        pytest.skip("needs a CUDA build")
    origins, directions = _mixed_rays(3000)
    a = sphere_grid.sphere_trace(origins, directions)
    b = sphere_grid.to("cuda").sphere_trace(origins.cuda(), directions.cuda())
    # exact.h keeps nvcc from fusing a*b+c into FMA: the device runs the same float ops as the host.
    _assert_close_traces(a, type(b)(b.t.cpu(), b.hit.cpu(), b.steps.cpu()))
    assert torch.equal(sphere_grid.query_kernel(origins), sphere_grid.to("cuda").query_kernel(origins.cuda()).cpu())


def test_bad_inputs_raise_value_error(sphere_grid):
    o, d = torch.zeros(4, 3), torch.ones(4, 3)
    cases = [
        (lambda: DenseSDF(torch.zeros(4, 4), [0, 0, 0, 1, 1, 1]), "values: expected shape"),
        (lambda: DenseSDF(torch.zeros(4, 1, 4), [0, 0, 0, 1, 1, 1]), "values: expected at least 2"),
        (lambda: DenseSDF(torch.zeros(4, 4, 4, dtype=torch.int32), [0, 0, 0, 1, 1, 1]), "values: expected dtype"),
        (lambda: DenseSDF(torch.full((2, 2, 2), math.nan), [0, 0, 0, 1, 1, 1]), "values: expected finite"),
        (lambda: DenseSDF(torch.zeros(2, 2, 2), [0, 0, 0, 1, -1, 1]), "aabb: expected finite"),
        (lambda: sphere_grid.sphere_trace(o.double(), d), "origins: expected dtype float32"),
        (lambda: sphere_grid.sphere_trace(o, d[:3]), "directions: expected 4 rows"),
        (lambda: sphere_grid.sphere_trace(o, torch.zeros(4, 3)), "directions: expected nonzero"),
        (lambda: sphere_grid.sphere_trace(o, d, max_steps=0), "max_steps: expected an int >= 1"),
        (lambda: sphere_grid.sphere_trace(o, d, eps=-1.0), "eps: expected a finite number >= 0"),
        (lambda: sphere_grid.sphere_trace(o, d, step_scale=0.0), "step_scale: expected a finite number > 0"),
        (lambda: sphere_grid.sphere_trace(o, d, far=torch.ones(3)), "far: expected a scalar or shape"),
        (lambda: sphere_grid.query(torch.zeros(4, 2)), "points: expected shape"),
        (lambda: sphere_trace_torch(lambda p: p, o, d), "fn: expected a tensor of 4 distances"),
        (lambda: sphere_trace("not a field", o, d), "sdf: expected a DenseSDF or a callable"),
    ]
    for fn, message in cases:
        with pytest.raises(ValueError, match=message):
            fn()


def test_binding_checks_raise_value_error(sphere_grid):
    args = dict(values=sphere_grid.values, box=sphere_grid._box, origins=torch.zeros(3, 3),
                directions=torch.ones(3, 3), near=torch.zeros(3), far=torch.ones(3), max_steps=8, eps=1e-4,
                step_scale=1.0)
    assert load().sdf_trace(**args)[0].shape == (3,)
    bad = [
        (dict(values=sphere_grid.values.double()), "values: expected dtype"),
        (dict(values=sphere_grid.values[:1]), "values: expected 2 to"),
        (dict(values=sphere_grid.values.transpose(0, 1)), "values: expected a contiguous"),
        (dict(box=sphere_grid._box[:6]), "box: expected 9 numbers"),
        (dict(box=[1, 1, 1, 0, 0, 0, 1, 1, 1]), "box: expected finite lo < hi"),
        (dict(box=sphere_grid._box[:6] + [0.0, 1.0, 1.0]), "inv_spacing"),
        (dict(far=torch.ones(2)), "far: expected 3 rows"),
        (dict(directions=torch.ones(3, 4)), "directions: expected last dimension 3"),
        (dict(max_steps=0), "max_steps"),
        (dict(eps=math.nan), "eps"),
        (dict(step_scale=-1.0), "step_scale"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            load().sdf_trace(**{**args, **change})
    with pytest.raises(ValueError, match="points: expected last dimension 3"):
        load().sdf_query(sphere_grid.values, sphere_grid._box, torch.zeros(5, 2))
