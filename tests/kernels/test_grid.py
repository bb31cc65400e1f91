"""Occupancy grid: the C++ marcher (with empty-cell skipping) against the every-candidate torch twin, updates, errors."""

import math

import pytest
import torch

from render.kernels import load
from render.kernels.grid import OccupancyGrid, OccupancyGridReference

AABB = [-1.0, -0.5, -1.0, 1.0, 1.5, 0.5]


def _grids(occupancy, aabb=AABB):
    return OccupancyGrid.from_dense(aabb, occupancy), OccupancyGridReference.from_dense(aabb, occupancy)


def _assert_same(a, b):
    assert torch.equal(a.packed_info, b.packed_info)
    assert torch.equal(a.ray_indices, b.ray_indices)
    assert torch.equal(a.t_starts, b.t_starts)
    assert torch.equal(a.t_ends, b.t_ends)


def _mixed_rays(grid, n):
    """Rays from outside and inside, axis-parallel ones, ones starting on cell planes, and ones pointing away."""
    lo, hi = grid.level_lo[-1], grid.level_hi[-1]
    center, extent = (lo + hi) / 2, hi - lo
    q = n // 4
    # From a shell outside the outermost box, aimed at random points inside it.
    direction = torch.randn(q, 3)
    o_out = center + direction / direction.norm(dim=1, keepdim=True) * extent.norm() * 1.5
    target = lo + torch.rand(q, 3) * extent
    d_out = target - o_out
    # From inside, random directions (not unit length on purpose).
    o_in = lo + torch.rand(q, 3) * extent
    d_in = torch.randn(q, 3) * (0.2 + torch.rand(q, 1) * 3)
    # Axis-parallel rays starting exactly on cell planes of the finest level.
    cell = 1.0 / grid.level_scale[0]
    idx = torch.randint(-2, max(grid.resolution) + 2, (q, 3)).float()
    o_ax = grid.level_lo[0] + idx * cell
    axis = torch.randint(0, 3, (q,))
    d_ax = torch.zeros(q, 3)
    d_ax[torch.arange(q), axis] = torch.where(torch.rand(q) < 0.5, -1.0, 1.0)
    o_ax[torch.arange(q), axis] = torch.where(d_ax[torch.arange(q), axis] > 0, lo[axis] - 0.3, hi[axis] + 0.3)
    # Pointing away from the box (miss) or grazing along a face.
    m = n - 3 * q
    o_miss = center + torch.randn(m, 3).sign() * extent * 0.75
    d_miss = o_miss - center
    o_miss[: m // 2, 0] = lo[0]  # on the face plane, moving within it
    d_miss[: m // 2, 0] = 0.0
    return torch.cat([o_out, o_in, o_ax, o_miss]), torch.cat([d_out, d_in, d_ax, d_miss])


@pytest.mark.parametrize("levels,resolution", [(1, 16), (3, (7, 9, 12))])
def test_march_matches_reference(levels, resolution):
    res = (resolution,) * 3 if isinstance(resolution, int) else resolution
    occupancy = torch.rand(levels, *res) < 0.25
    grid, ref = _grids(occupancy)
    origins, directions = _mixed_rays(grid, 2000)
    n = origins.shape[0]
    near = torch.rand(n) * 0.5
    far = near + 0.5 + torch.rand(n) * 8
    far[::5] = math.inf
    far[::17] = near[::17] - 0.1  # near > far: no samples
    step = 0.0173 * 2 ** (levels - 1)
    a = grid.march(origins, directions, near, far, step_size=step)
    b = ref.march(origins, directions, near, far, step_size=step)
    _assert_same(a, b)
    assert a.num_samples > 1000  # the rays do pass through occupied cells
    assert (a.packed_info[::17, 1] == 0).all()
    # Packing: sorted by ray, then t; each interval one step long up to rounding.
    assert (a.ray_indices[1:] >= a.ray_indices[:-1]).all()
    same_ray = a.ray_indices[1:] == a.ray_indices[:-1]
    assert (a.t_starts[1:][same_ray] > a.t_starts[:-1][same_ray]).all()
    assert torch.allclose(a.t_ends - a.t_starts, torch.full_like(a.t_starts, step), rtol=1e-3, atol=1e-5)
    starts, counts = a.packed_info.unbind(1)
    assert torch.equal(starts, torch.cumsum(counts, 0) - counts)


def test_max_samples_cap_matches_reference():
    grid, ref = _grids(torch.rand(2, 10, 10, 10) < 0.6)
    origins, directions = _mixed_rays(grid, 400)
    a = grid.march(origins, directions, step_size=0.01, max_samples=7)
    b = ref.march(origins, directions, step_size=0.01, max_samples=7)
    _assert_same(a, b)
    assert a.packed_info[:, 1].max() == 7
    # The capped samples are the first ones of the uncapped march.
    full = grid.march(origins, directions, step_size=0.01)
    first = full.packed_info[:, 0, None] + torch.arange(7)
    keep = torch.arange(7) < a.packed_info[:, 1, None]
    assert torch.equal(full.t_starts[first[keep]], a.t_starts)


def test_long_empty_jumps_are_exact():
    """Tiny steps through a mostly empty grid: the kernel jumps over thousands of candidates at a time."""
    occupancy = torch.zeros(2, 32, 32, 32, dtype=torch.bool)
    occupancy[0, 5:7, 10:20, 3:30] = True
    occupancy[1, 20, :, :] = True
    grid, ref = _grids(occupancy)
    origins, directions = _mixed_rays(grid, 48)
    a = grid.march(origins, directions, step_size=3e-4, max_samples=100000)
    b = ref.march(origins, directions, step_size=3e-4, max_samples=100000, k_block=4096)
    _assert_same(a, b)
    assert a.num_samples > 1000


def test_midpoints_on_cell_faces():
    """Steps of a quarter cell with midpoints exactly on the cell faces (all values exact in float): a jump that
    runs to the face would skip the first sample of the next cell."""
    grid, ref = _grids(torch.rand(1, 8, 8, 8) < 0.5, aabb=[0, 0, 0, 1, 1, 1])
    n = 600
    axis = torch.arange(n) % 3
    sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
    origins = (torch.randint(0, 8, (n, 3)) + 0.5) / 8
    directions = torch.zeros(n, 3)
    directions[torch.arange(n), axis] = sign
    step = 1 / 32
    start = torch.randint(0, 8, (n,)).float() / 8  # a face; the first midpoint lands on it
    origins[torch.arange(n), axis] = torch.where(sign > 0, start - step / 2, 1 - start + step / 2)
    a = grid.march(origins, directions, step_size=step)
    b = ref.march(origins, directions, step_size=step)
    _assert_same(a, b)
    assert a.num_samples > 1000


def test_far_origins_coarse_float_t():
    """Rays from ~1000 away with steps near the float spacing of t: t_start is rounded unevenly, so the jump
    estimate is off and only the verification keeps the marcher exact."""
    grid, ref = _grids(torch.rand(2, 16, 16, 16) < 0.1, aabb=[0.1, 0.0, -0.1, 0.35, 0.25, 0.15])
    origins, directions = _mixed_rays(grid, 32)
    directions = directions / directions.norm(dim=1, keepdim=True)
    origins = origins - directions * 1000
    # float spacing of t near 1000 is 6.1e-5: twice the step, so consecutive t_start are often equal.
    a = grid.march(origins, directions, step_size=3e-5, max_samples=100000)
    b = ref.march(origins, directions, step_size=3e-5, max_samples=100000, k_block=4096)
    _assert_same(a, b)
    assert a.num_samples > 1000


def test_full_grid_analytic_samples():
    grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], resolution=4).mark_all()
    origins = torch.tensor([[-2.0, 0.1, 0.2], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -2.0], [1.0, 0.0, 0.0]])
    out = grid.march(origins, directions, step_size=0.25)
    # Ray 0 enters at t=1 and leaves at t=3: 8 whole steps. Ray 1 (|d|=2) starts inside at t=0 and leaves at
    # t=0.5: 2 steps. Ray 2 misses.
    assert out.packed_info.tolist() == [[0, 8], [8, 2], [10, 0]]
    assert out.t_starts[:8].tolist() == [1 + 0.25 * k for k in range(8)]
    assert out.t_ends[8:].tolist() == [0.25, 0.5]
    assert out.ray_indices.tolist() == [0] * 8 + [1] * 2


def test_empty_grid_and_no_rays():
    grid = OccupancyGrid(AABB, resolution=8, levels=2)
    origins, directions = _mixed_rays(grid, 100)
    out = grid.march(origins, directions, step_size=0.01)
    assert out.num_samples == 0 and out.packed_info.shape == (100, 2) and (out.packed_info == 0).all()
    none = grid.march(torch.zeros(0, 3), torch.zeros(0, 3))
    assert none.num_samples == 0 and none.packed_info.shape == (0, 2)


def test_levels_cover_scaled_boxes():
    grid = OccupancyGrid([0, 0, 0, 2, 2, 2], resolution=8, levels=3)
    assert torch.equal(grid.level_lo, torch.tensor([[0.0] * 3, [-1.0] * 3, [-3.0] * 3]))
    assert torch.equal(grid.level_hi, torch.tensor([[2.0] * 3, [3.0] * 3, [5.0] * 3]))
    grid.binary[2] = 1  # only the coarsest level occupied: points inside level 0 or 1 use those (empty) levels
    points = torch.tensor([[1.0, 1.0, 1.0], [2.5, 1.0, 1.0], [4.5, 1.0, 1.0], [5.5, 1.0, 1.0]])
    assert grid.query(points).tolist() == [False, False, True, False]


def _sphere_density(points):
    return torch.where(points.norm(dim=1) < 0.5, 10.0, 0.0)


def test_update_on_sphere_density():
    grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], resolution=16, levels=2)
    grid.update(_sphere_density, jitter=False)
    centers = grid.cell_points().reshape(2, 16, 16, 16, 3)
    inside = centers.norm(dim=-1) < 0.5
    assert torch.equal(grid.binary.bool(), inside)
    assert torch.equal(grid.occs, torch.where(inside, 10.0, 0.0))
    # EMA: a later empty field only decays the estimate (max(occs * decay, 0)); the cells stay occupied.
    grid.update(lambda p: torch.zeros(p.shape[0]), ema_decay=0.5, jitter=True)
    assert torch.equal(grid.occs, torch.where(inside, 5.0, 0.0))
    assert torch.equal(grid.binary.bool(), inside)
    # Marching the updated grid: every kept midpoint is near the sphere (within one cell diagonal).
    origins = torch.randn(300, 3) * 3
    directions = -origins + torch.randn(300, 3) * 0.3
    out = grid.march(origins, directions, step_size=0.01)
    mid = origins[out.ray_indices] + ((out.t_starts + out.t_ends) / 2)[:, None] * directions[out.ray_indices]
    assert out.num_samples > 100
    assert mid.norm(dim=1).max() < 0.5 + 2 / 16 * math.sqrt(3)


def test_update_threshold_clamped_to_mean_and_schedule():
    grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], resolution=8)
    faint = lambda p: torch.where(p.norm(dim=1) < 0.5, 1e-3, 0.0)  # below the 0.01 threshold everywhere
    assert not grid.update_every_n_steps(3, faint, n=4)
    assert grid.binary.sum() == 0
    assert grid.update_every_n_steps(4, faint, n=4, jitter=False)
    inside = grid.cell_points().norm(dim=1).reshape(1, 8, 8, 8) < 0.5
    assert inside.any() and torch.equal(grid.binary.bool(), inside)  # threshold = mean(occs) < 1e-3


def test_cuda_matches_cpu():
    if not torch.cuda.is_available() or not load().with_cuda:
        pytest.skip("needs a CUDA build")
    grid = OccupancyGrid.from_dense(AABB, torch.rand(3, 12, 12, 12) < 0.3)
    origins, directions = _mixed_rays(grid, 2000)
    a = grid.march(origins, directions, step_size=0.02)
    b = grid.to("cuda").march(origins.cuda(), directions.cuda(), step_size=0.02)
    assert torch.equal(a.packed_info, b.packed_info.cpu())
    assert torch.equal(a.ray_indices, b.ray_indices.cpu())
    # exact.h keeps nvcc from fusing a*b+c into FMA: the device runs the same float ops as the host.
    assert torch.equal(a.t_starts, b.t_starts.cpu()) and torch.equal(a.t_ends, b.t_ends.cpu())


def test_bad_inputs_raise_value_error():
    grid = OccupancyGrid(AABB, resolution=4, levels=2).mark_all()
    o, d = torch.zeros(5, 3), torch.ones(5, 3)
    cases = [
        (lambda: grid.march(o.double(), d), "origins: expected dtype float32"),
        (lambda: grid.march(o[:, :2], d[:, :2]), "origins: expected shape"),
        (lambda: grid.march(o, d[:4]), "directions: expected 5 rows"),
        (lambda: grid.march(o, torch.zeros(5, 3)), "directions: expected nonzero"),
        (lambda: grid.march(o.index_fill(0, torch.tensor([2]), math.nan), d), "expected finite"),
        (lambda: grid.march(o, d, step_size=0.0), "step_size: expected a finite number > 0"),
        (lambda: grid.march(o, d, step_size=math.nan), "step_size"),
        (lambda: grid.march(o, d, max_samples=0), "max_samples: expected an int >= 1"),
        (lambda: grid.march(o, d, near=torch.zeros(4)), "near: expected a scalar or shape"),
        (lambda: grid.march(o.to("meta"), d.to("meta")), "origins: expected device cpu"),
        (lambda: OccupancyGrid([1, 0, 0, 0, 1, 1]), "aabb: expected finite"),
        (lambda: OccupancyGrid([0, 0, 0, 1, 1]), "aabb: expected shape"),
        (lambda: OccupancyGrid(AABB, resolution=0), "resolution"),
        (lambda: OccupancyGrid(AABB, resolution=(4, 4)), "resolution"),
        (lambda: OccupancyGrid(AABB, levels=0), "levels"),
        (lambda: OccupancyGrid(AABB, levels=17), "levels"),
        (lambda: grid.update(lambda p: p), "occ_eval_fn: expected a tensor of"),
        (lambda: OccupancyGrid.from_dense(AABB, torch.zeros(4, 4, dtype=torch.bool)), "occupancy: expected shape"),
    ]
    for fn, message in cases:
        with pytest.raises(ValueError, match=message):
            fn()


def test_binding_checks_raise_value_error():
    grid = OccupancyGrid(AABB, resolution=4, levels=2)
    args = dict(binary=grid.binary, level_lo=grid.level_lo, level_hi=grid.level_hi, level_scale=grid.level_scale,
                origins=torch.zeros(3, 3), directions=torch.ones(3, 3), near=torch.zeros(3), far=torch.ones(3),
                step=0.1, max_samples=8)
    assert load().grid_march(**args)[3].shape == (3, 2)
    bad = [
        (dict(binary=grid.binary.float()), "binary: expected dtype"),
        (dict(binary=grid.binary[0]), "binary: expected 4 dimensions"),
        (dict(level_lo=grid.level_lo[:1]), "level_lo: expected 2 rows"),
        (dict(level_scale=-grid.level_scale), "level_scale: expected finite values > 0"),
        (dict(level_hi=grid.level_lo - 1), "expected finite boxes"),
        (dict(near=torch.zeros(2)), "near: expected 3 rows"),
        (dict(origins=torch.zeros(3, 3, dtype=torch.float64)), "origins: expected dtype"),
        (dict(directions=torch.ones(6, 3)[::2]), "directions: expected a contiguous"),
        (dict(step=0.0), "step_size"),
        (dict(max_samples=0), "max_samples"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            load().grid_march(**{**args, **change})
