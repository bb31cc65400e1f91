"""The torch reference path tracer against Mitsuba 3 reference images (scripts/make_refs.py): same expected image,
noise only. (The fused kernel, the default integrator, has the same checks in tests/render/test_fused.py.)

Per scene: the image mean (of both renders) within 1% per channel of Mitsuba's, and no bias beyond noise: the relMSE of our render
against the (nearly noise-free, 4096 spp) reference must stay below 0.75 x the relMSE between two independent
renders of ours. For an unbiased renderer the first is ~ 0.5 x the second (one render's variance vs two); a bias
b adds b^2 to the first, so the test fails once the bias is comparable to the per-pixel noise.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from render.core.image import read_exr_channels, rel_mse
from render.render import render_scene

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "render" / "refs"
MANIFEST = json.loads((REFS / "manifest.json").read_text())
SPP = {"cbox": 128, "spheres": 256, "lights": 64}


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda c: c["name"])
def test_matches_mitsuba_reference(case):
    ref = read_exr_channels(REFS / f"{case['name']}.exr")["RGB"]
    spp = SPP[case["name"]]
    a = render_scene(ROOT / case["scene"], spp=spp, seed=1, params=case["params"], integrator="torch").rgb
    b = render_scene(ROOT / case["scene"], spp=spp, seed=2, params=case["params"], integrator="torch").rgb
    assert a.shape == ref.shape
    ratio = (a + b).mean(axis=(0, 1)) / (2 * ref.mean(axis=(0, 1)))
    assert np.all(np.abs(ratio - 1) < 0.01), f"{case['name']}: mean ratio to Mitsuba {ratio}"
    err, noise = rel_mse(a, ref), rel_mse(a, b)
    assert err < 0.75 * noise, f"{case['name']}: relMSE vs Mitsuba {err:.3g} vs noise relMSE {noise:.3g}"


def test_same_seed_same_image():
    case = MANIFEST["cases"][0]
    a = render_scene(ROOT / case["scene"], spp=2, seed=7, params=case["params"], integrator="torch").rgb
    b = render_scene(ROOT / case["scene"], spp=2, seed=7, params=case["params"], integrator="torch").rgb
    c = render_scene(ROOT / case["scene"], spp=2, seed=8, params=case["params"], integrator="torch").rgb
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
