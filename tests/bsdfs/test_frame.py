"""Shading frame (Duff et al. 2017): orthonormal, right-handed, and identical to Mitsuba's coordinate_system."""

import numpy as np
import pytest
import torch

from render.core.warp import coordinate_system


def test_frame_orthonormal_right_handed():
    gen = torch.Generator().manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(10000, 3, generator=gen, dtype=torch.float64), dim=1)
    n[:4] = torch.tensor([[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0], [0, 1e-9, -1.0]], dtype=torch.float64)
    n = torch.nn.functional.normalize(n, dim=1)
    s, t = coordinate_system(n)
    for a, b in ((s, t), (s, n), (t, n)):
        assert (a * b).sum(1).abs().max() < 1e-12
    assert ((s.norm(dim=1) - 1).abs().max() < 1e-12) and ((t.norm(dim=1) - 1).abs().max() < 1e-12)
    assert torch.allclose(torch.linalg.cross(s, t), n, atol=1e-12)


def test_frame_matches_mitsuba():
    mi = pytest.importorskip("mitsuba")
    mi.set_variant("scalar_rgb")
    rng = np.random.default_rng(1)
    for v in rng.normal(size=(50, 3)):
        v = (v / np.linalg.norm(v)).astype(np.float32)
        s, t = coordinate_system(torch.from_numpy(v)[None])
        ms, mt = mi.coordinate_system(mi.Vector3f(*v.tolist()))
        np.testing.assert_allclose(s[0].numpy(), np.array(ms), atol=1e-5)
        np.testing.assert_allclose(t[0].numpy(), np.array(mt), atol=1e-5)
