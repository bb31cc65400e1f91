"""The torch-material stage of the wavefront integrator (render/bsdfs/torch_bsdf.py protocol + registry).

A Lambertian written as a TorchBSDF, registered under a test plugin name, must render the same image as the
analytic `diffuse` row through the same integrator and seed: it samples with the same uniforms, so NEE, MIS and
BSDF sampling through the torch stage are checked value by value (also inside `twosided`, with textures of uv).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from render.bsdfs.torch_bsdf import TorchBSDF, register_torch_bsdf, torch_bsdf_plugin
from render.core.warp import square_to_cosine_hemisphere, square_to_cosine_hemisphere_pdf
from render.errors import UserError
from render.render import render_loaded
from render.scene import load_scene
from render.scene.loader import load_string

ROOT = Path(__file__).resolve().parents[2]
SCENE = (ROOT / "tests" / "regression" / "scenes" / "diffuse.xml").read_text()


class TorchLambert:
    name = "torchlambert"

    def __init__(self, reflectance):
        self.r = torch.as_tensor(reflectance, dtype=torch.float32)
        self.calls = 0

    def eval(self, uv, wi, wo):
        self.calls += 1
        up = (wi[:, 2] > 0) & (wo[:, 2] > 0)
        return torch.where(up[:, None], self.r * (wo[:, 2:3] / np.pi), 0.0)

    def pdf(self, uv, wi, wo):
        return torch.where((wi[:, 2] > 0) & (wo[:, 2] > 0), square_to_cosine_hemisphere_pdf(wo), 0.0)

    def sample(self, uv, wi, u, u_lobe):
        wo = square_to_cosine_hemisphere(u)
        pdf = torch.where(wi[:, 2] > 0, square_to_cosine_hemisphere_pdf(wo), 0.0)
        return wo, torch.where((pdf > 0)[:, None], self.r.expand(len(wi), 3), 0.0), pdf

    def albedo(self, uv):
        return self.r.expand(len(uv), 3)

    def to(self, device):
        self.r = self.r.to(device)
        return self


def _parse(r):
    return {"reflectance": r.rgb("reflectance", 0.5)}


register_torch_bsdf("torchlambert", lambda bsdf, where: TorchLambert(bsdf.params["reflectance"]), _parse)


def _scenes(wrap_twosided=False):
    torch_bsdf = '<bsdf type="torchlambert"><rgb name="reflectance" value="0.2, 0.5, 0.8"/></bsdf>'
    if wrap_twosided:
        torch_bsdf = f'<bsdf type="twosided">{torch_bsdf}</bsdf>'
        analytic = ('<bsdf type="twosided"><bsdf type="diffuse"><rgb name="reflectance" value="0.2, 0.5, 0.8"/>'
                    '</bsdf></bsdf>')
    else:
        analytic = '<bsdf type="diffuse">\n            <rgb name="reflectance" value="0.2, 0.5, 0.8"/>\n        </bsdf>'
    original = '<bsdf type="diffuse">\n            <rgb name="reflectance" value="0.2, 0.5, 0.8"/>\n        </bsdf>'
    assert original in SCENE
    a = load_string(SCENE.replace(original, analytic), params={"spp": "4", "res": "24"})
    t = load_string(SCENE.replace(original, torch_bsdf), params={"spp": "4", "res": "24"})
    return a, t


@pytest.mark.parametrize("twosided", [False, True])
def test_torch_material_matches_analytic_row(twosided):
    a, t = _scenes(twosided)
    ra = render_loaded(a, seed=3, integrator="torch", aovs=("albedo",))
    rt = render_loaded(t, seed=3, integrator="auto", aovs=("albedo",))
    assert rt.integrator == "torch"  # auto falls back: the fused kernel cannot shade torch materials
    assert np.isfinite(rt.rgb).all() and rt.rgb.mean() > 0
    np.testing.assert_allclose(rt.rgb, ra.rgb, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(rt.aovs["albedo"], ra.aovs["albedo"], atol=1e-5)


def test_torch_material_is_batched_per_bounce():
    _, t = _scenes()
    from render.integrators import SceneData
    sd = SceneData(t)
    assert len(sd.torch_bsdfs) == 1 and isinstance(sd.torch_bsdfs[0], TorchBSDF)
    render_loaded(t, seed=0, integrator="torch", sd=sd, max_depth=3)
    # 1 spp pass of 24x24x4 samples, max_depth 3: at most one eval call per bounce that shades (2 bounces).
    assert 1 <= sd.torch_bsdfs[0].calls <= 2


def test_unknown_parameter_and_fused_request_are_user_errors():
    assert torch_bsdf_plugin("torchlambert") is not None and torch_bsdf_plugin("nosuchplugin") is None
    _, t = _scenes()
    with pytest.raises(UserError, match="fused"):
        render_loaded(t, integrator="fused")
    bad = SCENE.replace('<bsdf type="diffuse">\n            <rgb name="reflectance" value="0.2, 0.5, 0.8"/>',
                        '<bsdf type="torchlambert">\n            <rgb name="reflectanse" value="0.2, 0.5, 0.8"/>')
    with pytest.raises(UserError, match="unknown parameter 'reflectanse'.*did you mean 'reflectance'"):
        load_string(bad)


def test_sphere_dp_du_is_mitsubas():
    """Mitsuba sphere.cpp: dp_du = to_world * 2 pi (-y, x, 0); its length 2 pi r sin(theta) sets the neural LOD's
    uv footprint (a transpose of world-to-local gave 1/r and no 2 pi: levels 2.65x too coarse on the preview)."""
    from render.integrators import SceneData
    xml = """<scene version="3.0.0">
      <shape type="sphere"><point name="center" x="1" y="0" z="0"/><float name="radius" value="2"/>
        <bsdf type="diffuse"/></shape>
      <emitter type="constant"/>
    </scene>"""
    sd = SceneData(load_string(xml))
    o = torch.tensor([[1.0, -10.0, 0.0], [1.0, 0.0, 10.0]])  # hit the equator (z = 0) and the pole (z = 2)
    d = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    hits = sd.bvh.closest_hit(o, d, torch.zeros(2), torch.full((2,), 1e4))
    assert hits.hit.all()
    surf = sd.surface(o, d, hits.t, hits.prim, hits.u, hits.v)
    # Equator point (1, -2, 0): local (0, -1, 0) -> 2 pi * 2 * (1, 0, 0).
    assert torch.allclose(surf.dp_du[0], torch.tensor([4 * np.pi, 0.0, 0.0]), atol=1e-4)
    assert surf.dp_du[1].norm() < 1e-3  # sin(theta) = 0 at the pole
