"""Chi-square tests of every non-delta BSDF sampler (C++ kernels) against its own pdf, and of the warps."""

import math

import pytest
import torch

from render.bsdfs import bsdf_pdf, bsdf_sample, pack_bsdf
from render.core import warp
from chi2 import chi2_test

# Sidak correction over the whole (fast + slow) suite of chi2 tests.
TEST_COUNT = 60


def direction(theta_deg, phi_deg=30.0):
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    return torch.tensor([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)], dtype=torch.float32)


def run_bsdf_chi2(type_name, props, theta_deg, sample_count=300_000, res=36, ires=8):
    params = pack_bsdf(type_name, **props)[None]
    wi = direction(theta_deg)

    def sample(u):
        n = u.shape[0]
        w = wi.expand(n, 3).contiguous()
        wo, weight, pdf, _, flags = bsdf_sample(params, w, u[:, 0].contiguous(), u[:, 1:].contiguous())
        return wo, (flags != 0) & (weight.amax(1) > 0)

    def pdf(dirs):
        return bsdf_pdf(params, wi.expand(dirs.shape[0], 3).contiguous(), dirs.contiguous())

    result = chi2_test(sample, pdf, sample_count=sample_count, res=res, ires=ires, test_count=TEST_COUNT)
    assert result.passed, result.message
    assert result.pdf_sum <= 1.0 + 2e-2, result.message  # the pdf integrates to at most 1
    assert abs(result.pdf_sum - result.histogram_sum) < 2e-2, result.message
    return result


FAST = [
    ("diffuse", {"reflectance": 0.5}, 30),
    ("diffuse", {"reflectance": 0.5, "twosided": True}, 130),
    ("roughconductor", {"distribution": "ggx", "alpha": 0.3}, 45),
    ("roughconductor", {"distribution": "beckmann", "alpha_u": 0.15, "alpha_v": 0.45}, 60),
    ("roughconductor", {"distribution": "ggx", "alpha": 0.4, "sample_visible": False}, 30),
    ("roughdielectric", {"distribution": "ggx", "alpha": 0.3}, 40),
    ("roughdielectric", {"distribution": "beckmann", "alpha": 0.3, "int_ior": 1.33}, 140),
    ("roughplastic", {"distribution": "ggx", "alpha": 0.3}, 50),
    ("plastic", {"diffuse_reflectance": 0.5}, 35),  # diffuse lobe of the smooth coat (delta samples excluded)
]

SLOW = [
    ("roughconductor", {"distribution": d, "alpha_u": au, "alpha_v": av, "sample_visible": vis}, th)
    for d in ("ggx", "beckmann") for (au, av) in ((0.1, 0.1), (0.5, 0.5), (0.2, 0.6)) for vis in (True, False)
    for th in (10, 70)
] + [
    ("roughdielectric", {"distribution": d, "alpha_u": au, "alpha_v": av, "int_ior": ior, "sample_visible": vis}, th)
    for d in ("ggx", "beckmann") for (au, av) in ((0.2, 0.2), (0.1, 0.5)) for ior in (1.5, 1.1)
    for vis in (True, False) for th in (20, 75, 160)
] + [
    ("roughplastic", {"distribution": d, "alpha": a, "nonlinear": True}, th)
    for d in ("ggx", "beckmann") for a in (0.1, 0.6) for th in (5, 80)
]


def _ids(cases):
    return [f"{t}-{'-'.join(f'{k}={v}' for k, v in p.items())}-theta{th}" for t, p, th in cases]


@pytest.mark.parametrize("case", FAST, ids=_ids(FAST))
def test_bsdf_chi2(case):
    type_name, props, theta = case
    if type_name == "plastic":
        # The smooth plastic mixes a delta lobe; its histogram counts only diffuse samples, so compare the
        # diffuse-only sampler: pdf is prob_diffuse * cos/pi and delta samples are invalid for this test.
        params = pack_bsdf(type_name, **props)[None]
        wi = direction(theta)

        def sample(u):
            n = u.shape[0]
            wo, weight, pdf, _, flags = bsdf_sample(params, wi.expand(n, 3).contiguous(), u[:, 0].contiguous(),
                                                    u[:, 1:].contiguous())
            return wo, flags == 2

        def pdf(dirs):
            return bsdf_pdf(params, wi.expand(dirs.shape[0], 3).contiguous(), dirs.contiguous())

        r = chi2_test(sample, pdf, sample_count=200_000, res=30, test_count=TEST_COUNT)
        assert r.passed, r.message
        return
    run_bsdf_chi2(type_name, props, theta)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW, ids=_ids(SLOW))
def test_bsdf_chi2_sweep(case):
    type_name, props, theta = case
    run_bsdf_chi2(type_name, props, theta, sample_count=1_000_000, res=96, ires=16)


WARPS = [
    ("uniform_sphere", warp.square_to_uniform_sphere, warp.square_to_uniform_sphere_pdf),
    ("uniform_hemisphere", warp.square_to_uniform_hemisphere, warp.square_to_uniform_hemisphere_pdf),
    ("cosine_hemisphere", warp.square_to_cosine_hemisphere, warp.square_to_cosine_hemisphere_pdf),
    ("uniform_cone", lambda u: warp.square_to_uniform_cone(u, 0.6),
     lambda v: warp.square_to_uniform_cone_pdf(v, 0.6)),
]


@pytest.mark.parametrize("name,sample,pdf", WARPS, ids=[w[0] for w in WARPS])
def test_warp_chi2(name, sample, pdf):
    r = chi2_test(lambda u: (sample(u[:, :2]), torch.ones(u.shape[0], dtype=torch.bool)), pdf,
                  sample_count=200_000, res=30, test_count=TEST_COUNT)
    assert r.passed, r.message
    assert abs(r.pdf_sum - 1) < 1e-2 and abs(r.histogram_sum - 1) < 1e-9


def test_planar_warps_distribution():
    """Concentric disk and triangle warps: Kolmogorov-Smirnov tests of their exact marginals, and pdf values."""
    from scipy import stats
    gen = torch.Generator().manual_seed(3)
    n = 100_000
    d = warp.square_to_uniform_disk_concentric(torch.rand(n, 2, generator=gen).double())
    r2 = (d * d).sum(1).numpy()
    ang = torch.atan2(d[:, 1], d[:, 0]).numpy()
    assert stats.kstest(r2, "uniform").pvalue > 1e-3  # uniform area: r^2 ~ U(0, 1)
    assert stats.kstest((ang + math.pi) / (2 * math.pi), "uniform").pvalue > 1e-3
    assert torch.allclose(warp.square_to_uniform_disk_concentric_pdf(d), torch.full((n,), 1 / math.pi, dtype=d.dtype))
    b = warp.square_to_uniform_triangle(torch.rand(n, 2, generator=gen).double())
    b1, b2 = b[:, 0].numpy(), b[:, 1].numpy()
    # Uniform on the triangle: P(b1 <= x) = 1 - (1 - x)^2, and b2 / (1 - b1) ~ U(0, 1) independently.
    assert stats.kstest(b1, lambda x: 1 - (1 - x) ** 2).pvalue > 1e-3
    assert stats.kstest(b2 / (1 - b1), "uniform").pvalue > 1e-3
    assert torch.all(warp.square_to_uniform_triangle_pdf(b) == 2)


KERNEL_WARPS = [("uniform_sphere", 0.0), ("uniform_hemisphere", 0.0), ("cosine_hemisphere", 0.0),
                ("uniform_cone", 0.3)]


@pytest.mark.parametrize("name,param", KERNEL_WARPS, ids=[w[0] for w in KERNEL_WARPS])
def test_kernel_warp_chi2_and_twin(name, param):
    """The C++ warps (warp.h) against their own pdf, and against the torch twin in render/core/warp.py."""
    def sample(u):
        pts, _ = warp.warp_kernel(name, u[:, :2].contiguous(), param)
        return pts, torch.ones(u.shape[0], dtype=torch.bool)

    def pdf(v):
        # pdf of the kernel at arbitrary directions: the torch twin (checked equal at samples below).
        fn = getattr(warp, f"square_to_{name}_pdf")
        return fn(v, param) if name == "uniform_cone" else fn(v)

    r = chi2_test(sample, pdf, sample_count=200_000, res=30, test_count=TEST_COUNT)
    assert r.passed, r.message
    u = torch.rand(10_000, 2)
    pts, pdf_k = warp.warp_kernel(name, u, param)
    fn = getattr(warp, f"square_to_{name}")
    twin = fn(u, param) if name == "uniform_cone" else fn(u)
    torch.testing.assert_close(pts, twin, rtol=1e-5, atol=1e-5)  # z = sqrt(1 - r^2) near the rim
    torch.testing.assert_close(pdf_k, pdf(twin), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["uniform_disk_concentric", "uniform_triangle"])
def test_kernel_planar_warps_match_twin(name):
    u = torch.rand(10_000, 2)
    pts, pdf_k = warp.warp_kernel(name, u)
    twin = getattr(warp, f"square_to_{name}")(u)
    torch.testing.assert_close(pts[:, :2], twin, rtol=1e-5, atol=2e-6)
    assert torch.all(pts[:, 2] == 0)
    torch.testing.assert_close(pdf_k, getattr(warp, f"square_to_{name}_pdf")(twin), rtol=1e-6, atol=0)
