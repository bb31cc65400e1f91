"""The layered reference material (render/bsdfs/layered.py): sampler vs pdf (chi2), white furnace, limit cases
against the analytic BSDFs, determinism per (wi, wo), reciprocity, parameter maps, XML."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from chi2 import chi2_test
from render.bsdfs import bsdf_eval_reference, pack_bsdf
from render.bsdfs.layered import LayeredBSDF
from render.errors import UserError
from render.scene import load_scene, mitsuba_tables
from render.scene.loader import load_string
from render.scene.types import Texture

ROOT = Path(__file__).resolve().parents[2]
AU = mitsuba_tables.CONDUCTORS["Au"]


def direction(theta_deg, phi_deg=30.0):
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    return torch.tensor([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)], dtype=torch.float32)


def random_pairs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(2 * n, 3, generator=g)
    v[:, 2] = v[:, 2].abs() + 0.05
    v = v / v.norm(dim=1, keepdim=True)
    return v[:n], v[n:], torch.rand(n, 2, generator=g)


def tilted_normalmap():
    img = np.zeros((4, 4, 3), np.float32)
    n = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    img[:] = n * 0.5 + 0.5
    img[:2, :2] = [0.5, 0.5, 1.0]
    return Texture("bitmap", {"filter_type": "nearest", "wrap_mode": "repeat", "raw": True}, image=img)


MATERIALS = {
    "conductor": dict(base="conductor", coat_eta=1.5, coat_alpha=0.1, base_alpha=0.3, base_eta=AU[0], base_k=AU[1]),
    "diffuse": dict(base="diffuse", coat_eta=1.5, coat_alpha=0.3, base_color=[0.7, 0.5, 0.2], thickness=0.1,
                    albedo=[0.5, 0.5, 0.5], g=0.4),
    "normalmap": dict(base="conductor", coat_eta=1.3, coat_alpha=0.2, base_alpha=0.15, normalmap=tilted_normalmap()),
}


@pytest.mark.parametrize("name,theta", [("conductor", 40), ("diffuse", 70), ("normalmap", 20)])
def test_chi2_sample_matches_pdf(name, theta):
    bsdf = LayeredBSDF(**MATERIALS[name])
    wi = direction(theta)
    uv = torch.tensor([0.8, 0.8])  # the tilted quadrant of the normal map

    def sample(u):
        n = len(u)
        wo, pdf = bsdf.sample_direction(uv.expand(n, 2), wi.expand(n, 3), u[:, 1:], u[:, 0])
        return wo, pdf > 0

    def pdf(dirs):
        n = len(dirs)
        return bsdf.pdf(uv.expand(n, 2), wi.expand(n, 3), dirs)

    result = chi2_test(sample, pdf, sample_count=200_000, res=30, ires=6, test_count=3)
    assert result.passed, result.message
    assert abs(result.pdf_sum - result.histogram_sum) < 2e-2, result.message


def test_sample_weight_is_eval_over_pdf():
    bsdf = LayeredBSDF(**MATERIALS["conductor"])
    wi, _, uv = random_pairs(256)
    u = torch.rand(256, 3, generator=torch.Generator().manual_seed(1))
    wo, weight, pdf = bsdf.sample(uv, wi, u[:, 1:], u[:, 0])
    ok = pdf > 0
    assert ok.float().mean() > 0.9
    assert torch.allclose(pdf[ok], bsdf.pdf(uv, wi, wo)[ok], rtol=1e-4)
    expected = bsdf.eval(uv, wi, wo)[ok] / pdf[ok, None]
    assert torch.allclose(weight[ok], expected, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(weight).all() and (weight[~ok] == 0).all()


def furnace(bsdf, theta, n=16000, seed=0):
    """Directional albedo by the material's own sampling: mean of eval / pdf, and its standard error."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 3, generator=g)
    wi = direction(theta).expand(n, 3)
    _, weight, _ = bsdf.sample(torch.rand(n, 2, generator=g), wi, u[:, 1:], u[:, 0])
    return weight.mean(0), weight.std(0) / math.sqrt(n)


@pytest.mark.parametrize("base,theta", [("diffuse", 10), ("conductor", 60)])
def test_white_furnace(base, theta):
    # Lossless: white base (Lambertian 1 or a perfect mirror, eta 0 k 1), clear thin coat, no absorption.
    white = dict(base_color=1.0) if base == "diffuse" else dict(base_eta=[0, 0, 0], base_k=[1, 1, 1], base_alpha=0.1)
    bsdf = LayeredBSDF(base=base, coat_eta=1.5, coat_alpha=0.02, thickness=1e-4, max_depth=30, **white)
    mean, err = furnace(bsdf, theta)
    assert (mean <= 1 + 4 * err + 1e-3).all(), (theta, mean, err)
    # single-scattering microfacet interfaces (separable Smith) lose a little energy at every crossing
    assert (mean > 0.9).all(), (theta, mean, err)
    # Absorbing or coloured layers only lose energy.
    mean, err = furnace(LayeredBSDF(**MATERIALS[base]), 45)
    assert (mean <= 1 + 4 * err).all() and (mean > 0).all(), (base, mean)


@pytest.mark.parametrize("thickness", [0.0, 1e-7])
def test_index_matched_thin_coat_is_the_base(thickness):
    wi, wo, uv = random_pairs(2000)
    conductor = LayeredBSDF(base="conductor", coat_eta=1.0, thickness=thickness, base_alpha=0.3, base_eta=AU[0],
                            base_k=AU[1], coat_alpha=0.4)
    row = pack_bsdf("roughconductor", distribution="ggx", alpha=0.3, eta=list(AU[0]), k=list(AU[1]))[None]
    ref = bsdf_eval_reference(row, wi, wo)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(conductor.eval(uv, wi, wo), ref, rtol=2e-3, atol=1e-6)
    diffuse = LayeredBSDF(base="diffuse", coat_eta=1.0, thickness=thickness, base_color=[0.2, 0.5, 0.8])
    ref = bsdf_eval_reference(pack_bsdf("diffuse", reflectance=[0.2, 0.5, 0.8])[None], wi, wo)
    torch.testing.assert_close(diffuse.eval(uv, wi, wo), ref, rtol=2e-3, atol=1e-6)


def test_deterministic_per_direction_pair():
    bsdf = LayeredBSDF(**MATERIALS["diffuse"])
    wi, wo, uv = random_pairs(300)
    a = bsdf.eval(uv, wi, wo)
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(3))
    b = bsdf.eval(uv[perm], wi[perm], wo[perm])
    assert torch.equal(a[perm], b)  # same value whatever the batch and position
    assert torch.equal(bsdf.eval(uv[:7], wi[:7], wo[:7]), a[:7])
    # ... and still a random walk: other sample counts give other estimates of the same value.
    c = bsdf.eval(uv, wi, wo, n_samples=8)
    assert not torch.equal(a, c)
    assert abs(float(a.mean() / c.mean()) - 1) < 0.1


def _reciprocity_gap(bsdf, n_samples):
    """Relative differences f(wi, wo) vs f(wo, wi) over 24 pairs: (mean |gap|, |mean signed gap|)."""
    wi, wo, uv = random_pairs(24, seed=5)
    f_io = bsdf.eval(uv, wi, wo, n_samples=n_samples) / wo[:, 2:3]
    f_oi = bsdf.eval(uv, wo, wi, n_samples=n_samples) / wi[:, 2:3]
    gap = (f_io - f_oi) / (f_io + f_oi)
    return float(gap.abs().mean()), float(gap.mean().abs())


def test_reciprocity_in_expectation():
    # The walk's estimate is not symmetric, its expectation is: the gap is noise that shrinks with more walks.
    diffuse = LayeredBSDF(base="diffuse", coat_eta=1.5, coat_alpha=0.3, base_color=[0.8, 0.6, 0.4], thickness=0.3,
                          albedo=[0.9, 0.5, 0.2], g=0.5)
    assert _reciprocity_gap(diffuse, 256)[0] < 0.06
    conductor = LayeredBSDF(base="conductor", coat_eta=1.5, coat_alpha=0.1, base_alpha=0.2, thickness=0.05)
    few, many = _reciprocity_gap(conductor, 64), _reciprocity_gap(conductor, 1024)
    assert many[0] < 0.6 * few[0] and many[1] < 0.02, (few, many)


def test_zero_below_the_surface_and_finite_at_grazing():
    bsdf = LayeredBSDF(**MATERIALS["conductor"])
    wi, wo, uv = random_pairs(200)
    below = wo * torch.tensor([1.0, 1.0, -1.0])
    assert (bsdf.eval(uv, wi, below) == 0).all() and (bsdf.pdf(uv, wi, below) == 0).all()
    graze = torch.nn.functional.normalize(torch.cat([wi[:, :2], torch.full((200, 1), 1e-5)], 1), dim=1)
    assert torch.isfinite(bsdf.eval(uv, graze, wo)).all() and torch.isfinite(bsdf.pdf(uv, graze, wo)).all()


def test_parameter_textures_and_values_at_uv():
    tex = Texture("bitmap", {"filter_type": "nearest", "wrap_mode": "repeat", "raw": True},
                  image=np.arange(16, dtype=np.float32).reshape(4, 4, 1) / 16)
    bsdf = LayeredBSDF(base="conductor", base_alpha=tex, coat_alpha=0.05, base_color=[0.9, 0.8, 0.7])
    maps = bsdf.parameter_textures(4)
    assert maps.shape == (12, 4, 4)
    torch.testing.assert_close(maps[3], torch.from_numpy(tex.image[..., 0]))
    assert torch.allclose(maps[0], torch.tensor(0.9)) and torch.allclose(maps[4], torch.tensor(0.05))
    uv = torch.tensor([[0.6, 0.1]])  # texel (row 0, column 2)
    assert float(bsdf.layer_params(uv).base_alpha) == pytest.approx(2 / 16)
    assert bsdf.parameters_at(uv).shape == (1, 12)


def test_bundled_materials_load_with_textures():
    scene = load_scene(ROOT / "scenes" / "materials" / "materials.xml")
    assert {b.type for b in scene.bsdfs.values()} >= {"layered", "coatedconductor", "coateddiffuse"}
    from render.integrators import SceneData
    sd = SceneData(scene)
    assert len(sd.torch_bsdfs) == 3
    wood = next(b for b in sd.torch_bsdfs if b.base == "diffuse")
    maps = wood.parameter_textures(32)
    assert maps[:3].std() > 0.01 and maps[9:12].std() > 1e-3  # textured albedo and normal map
    brass = next(b for b in sd.torch_bsdfs if b.reflectance_base)
    assert brass.parameter_textures(32)[3].std() > 0.01  # roughness texture
    # pbrt's coated materials shade both sides; `layered` is one-sided like Mitsuba's BSDFs.
    from render.bsdfs import FIELDS
    rows = {s.bsdf.id: sd.bsdf_rows[sd.bsdf_of_shape[i]] for i, s in enumerate(scene.shapes) if s.bsdf.id}
    assert {k: bool(r[FIELDS["twosided"][0]]) for k, r in rows.items()} == {"carpaint": False, "brass": True,
                                                                            "wood": True}


@pytest.mark.parametrize("xml,match", [
    ('<bsdf type="coateddiffuse"><float name="rougness" value="0.1"/></bsdf>', "did you mean 'roughness'"),
    ('<bsdf type="layered"><string name="base" value="plastic"/></bsdf>', "expected one of: conductor, diffuse"),
    ('<bsdf type="layered"><float name="thickness" value="-1"/></bsdf>', "thickness must be >= 0"),
    ('<bsdf type="coatedconductor"><rgb name="reflectance" value="0.5"/><string name="material" value="Au"/></bsdf>',
     "either reflectance"),
    ('<bsdf type="layered"><integer name="max_depth" value="0"/></bsdf>', "max_depth must be >= 1"),
    ('<bsdf type="coateddifuse"/>', "did you mean 'coateddiffuse'"),
    ('<bsdf type="coateddiffuse"><float name="g" value="1.5"/></bsdf>', "g must lie in"),
])
def test_bad_xml_is_one_line_error(xml, match):
    scene = f'<scene version="3.0.0"><shape type="sphere">{xml}</shape></scene>'
    with pytest.raises(UserError, match=match) as e:
        load_string(scene)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["carpaint", "brass", "wood"])
def test_bundled_material_renders_through_radiant_render(name, tmp_path):
    from render.cli import main
    from render.core.image import read_exr_channels

    out = tmp_path / f"{name}.exr"
    scene = str(ROOT / "scenes" / "materials" / f"{name}.xml")
    args = ["render", scene, "--out", str(out), "--spp", "2", "-D", "width=24", "-D", "height=24", "--aov", "albedo"]
    assert main(args) == 0
    ch = read_exr_channels(out)
    rgb = ch["RGB"]
    assert np.isfinite(rgb).all() and 0.01 < rgb.mean() < 10
    centre = np.stack([ch["albedo.R"], ch["albedo.G"], ch["albedo.B"]], -1)[10:14, 10:14]
    assert centre.mean() > 0.05  # the sphere's albedo AOV comes from the layered material


@pytest.mark.parametrize("name", list(MATERIALS))
def test_pdf_positive_wherever_there_is_energy(name):
    bsdf = LayeredBSDF(**MATERIALS[name])
    wi, wo, uv = random_pairs(3000, seed=7)
    value, pdf = bsdf.eval(uv, wi, wo), bsdf.pdf(uv, wi, wo)
    lit = value.amax(1) > 0
    assert lit.float().mean() > 0.5
    assert (pdf[lit] > 0).all()


def test_load_torch_material_by_file_and_id():
    from render.bsdfs.torch_bsdf import load_torch_material

    brass = load_torch_material(ROOT / "scenes" / "materials" / "brass.xml")
    assert isinstance(brass, LayeredBSDF) and brass.reflectance_base
    wood = load_torch_material(ROOT / "scenes" / "materials" / "materials.xml", "wood")
    assert wood.base == "diffuse"
    with pytest.raises(UserError, match="found 3 .*pick one by id"):
        load_torch_material(ROOT / "scenes" / "materials" / "materials.xml")
    with pytest.raises(UserError, match="no layered/neural bsdf with id 'nope'"):
        load_torch_material(ROOT / "scenes" / "materials" / "materials.xml", "nope")
