"""Hash-grid encoding: the C++ kernel (cuda/include/radiant/hashgrid.h) against the pure-torch reference path:
features, spatial Jacobian and the table gradient, on dense and hashed levels, clamped points, several feature
counts and bounds; input checks; the CUDA build against the CPU one when a GPU is present."""

import pytest
import torch

from render.kernels import load
from render.recon.hashgrid import HashGrid


def _grid(features=2, bound=1.0, levels=6, log2_table=9, max_resolution=48):
    torch.manual_seed(features * 7 + levels)
    g = HashGrid(levels=levels, features=features, log2_table=log2_table, base_resolution=3,
                 max_resolution=max_resolution, bound=bound)
    with torch.no_grad():
        g.table.uniform_(-1, 1)
    return g


def _points(n, bound, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pts = (torch.rand(n, 3, generator=gen) * 2.4 - 1.2) * bound  # ~30 % outside the box: clamped
    edge = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.5, 0.2, -0.3],
                         [0.9999999, -0.5, 0.3], [-1.0, 1.0, 0.25]]) * bound
    return torch.cat([edge, pts])


@pytest.mark.parametrize("features,bound", [(1, 1.0), (2, 1.0), (4, 0.7), (8, 2.0)])
def test_kernel_matches_torch_forward_and_backward(features, bound):
    g = _grid(features, bound)
    assert bool(g.dense[0]) and not bool(g.dense[-1])  # both indexing schemes are exercised
    pts = _points(3000, bound)
    f_k, j_k = g(pts)
    f_t, j_t = g.forward_torch(pts)
    assert torch.allclose(f_k, f_t, rtol=1e-5, atol=1e-6)
    assert torch.allclose(j_k, j_t, rtol=1e-5, atol=1e-4 * j_t.abs().max().item())
    gen = torch.Generator().manual_seed(1)
    gf, gj = torch.randn(f_k.shape, generator=gen), torch.randn(j_k.shape, generator=gen)
    (a,) = torch.autograd.grad((f_k * gf).sum() + (j_k * gj).sum(), g.table)
    (b,) = torch.autograd.grad((f_t * gf).sum() + (j_t * gj).sum(), g.table)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
    # Features alone (no Jacobian requested) and a loss through the features only.
    f_only, none = g(pts, with_jacobian=False)
    assert none is None and torch.equal(f_only, f_k)
    (c,) = torch.autograd.grad((f_only * gf).sum(), g.table)
    (d,) = torch.autograd.grad((g.forward_torch(pts, with_jacobian=False)[0] * gf).sum(), g.table)
    assert torch.allclose(c, d, rtol=1e-4, atol=1e-5 * d.abs().max().item())


def test_kernel_gradient_is_not_trivially_equal():
    """The comparison above can fail: a table row moved changes the kernel's features where it is used."""
    g = _grid()
    pts = _points(500, 1.0)
    before, _ = g(pts)
    with torch.no_grad():
        g.table[g.offsets[-1]: g.offsets[-1] + 64] += 1.0
    after, _ = g(pts)
    assert (after - before).abs().max() > 1e-3


def test_kernel_parallel_backward_matches_single_thread():
    g = _grid(levels=8, log2_table=12, max_resolution=128)
    pts = _points(20000, 1.0, seed=3)
    gf = torch.randn(pts.shape[0], g.output_dim)
    old = torch.get_num_threads()
    try:
        grads = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            f, _ = g(pts, with_jacobian=False)
            (gt,) = torch.autograd.grad((f * gf).sum(), g.table)
            grads.append(gt)
    finally:
        torch.set_num_threads(old)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5 * grads[0].abs().max().item())


def test_points_with_gradient_and_double_use_the_torch_path():
    g = _grid()
    pts = _points(100, 1.0).requires_grad_(True)
    f, j = g(pts)
    (gp,) = torch.autograd.grad(f.sum(), pts)  # only the torch path differentiates the points
    assert torch.allclose(gp, j.sum(1), atol=1e-4)
    gd = _grid().double()
    fd, _ = gd(_points(10, 1.0).double())
    assert fd.dtype == torch.float64


def test_kernel_rejects_bad_inputs():
    k = load()
    g = _grid()
    args = (g.table.detach(), *g.kernel_args())
    with pytest.raises(ValueError, match="points"):
        k.hashgrid_forward(*args, torch.zeros(4, 2), True)
    with pytest.raises(ValueError, match="table_size"):
        k.hashgrid_forward(g.table.detach(), g.resolutions, g.offsets32, g.dense_u8, 1000, 1.0, torch.zeros(4, 3), True)
    with pytest.raises(ValueError, match="grad_features"):
        k.hashgrid_backward(*args, torch.zeros(4, 3), torch.zeros(4, 5), None)
    with pytest.raises(ValueError, match="table"):
        k.hashgrid_forward(torch.zeros(10, 9), *g.kernel_args(), torch.zeros(4, 3), True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    g = _grid()
    pts = _points(5000, 1.0)
    f_c, j_c = g(pts)
    gf, gj = torch.randn_like(f_c), torch.randn_like(j_c)
    (a,) = torch.autograd.grad((f_c * gf).sum() + (j_c * gj).sum(), g.table)
    gc = g.cuda()
    f_g, j_g = gc(pts.cuda())
    (b,) = torch.autograd.grad((f_g * gf.cuda()).sum() + (j_g * gj.cuda()).sum(), gc.table)
    assert torch.allclose(f_g.cpu(), f_c, rtol=1e-5, atol=1e-6)
    assert torch.allclose(j_g.cpu(), j_c, rtol=1e-5, atol=1e-4 * j_c.abs().max().item())
    assert torch.allclose(b.cpu(), a, rtol=1e-4, atol=1e-4 * a.abs().max().item())
