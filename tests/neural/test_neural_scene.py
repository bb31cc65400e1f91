"""Neural materials in scenes and on the command line: <bsdf type="neural">, bake-material, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from materials import TexturedMix
from test_neural import random_model

from render.bsdfs.torch_bsdf import register_torch_bsdf
from render.neural.material import NeuralBSDF
from render.cli import main
from render.neural.radmat import save_radmat
from render.render import render_loaded
from render.scene.loader import load_string
from render.scene.types import SceneError

register_torch_bsdf("texturedmix", lambda bsdf, where: TexturedMix(), lambda r: {})

SCENE = """<scene version="3.0.0">
    <integrator type="path"><integer name="max_depth" value="3"/></integrator>
    <sensor type="perspective"><float name="fov" value="40"/>
        <transform name="to_world"><lookat origin="0, 0, -4" target="0, 0, 0" up="0, 1, 0"/></transform>
        <film type="hdrfilm"><integer name="width" value="16"/><integer name="height" value="12"/></film>
    </sensor>
    <emitter type="constant"><rgb name="radiance" value="1, 1, 1"/></emitter>
    <shape type="sphere"><float name="radius" value="1"/>{bsdf}</shape>
</scene>"""


@pytest.fixture
def radmat(tmp_path):
    path = tmp_path / "m.radmat"
    save_radmat(path, random_model(0), {"source": "test"})
    return path


@pytest.mark.parametrize("twosided", [False, True])
def test_neural_material_renders(tmp_path, radmat, twosided):
    bsdf = f'<bsdf type="neural"><string name="filename" value="{radmat.name}"/></bsdf>'
    if twosided:
        bsdf = f'<bsdf type="twosided">{bsdf}</bsdf>'
    scene = load_string(SCENE.format(bsdf=bsdf), base_dir=tmp_path)
    r = render_loaded(scene, spp=4, seed=1, aovs=("albedo",))
    assert r.integrator == "torch"
    assert np.isfinite(r.rgb).all() and r.rgb.mean() > 0.01
    assert r.aovs["albedo"].max() > 0


def test_neural_sampling_is_unbiased_against_cosine(tmp_path, radmat):
    """Learned lobe sampling and cosine sampling of the same decoder converge to the same image (MIS exact)."""
    means = []
    for sampling in ("learned", "cosine"):
        bsdf = (f'<bsdf type="neural"><string name="filename" value="{radmat.name}"/>'
                f'<string name="sampling" value="{sampling}"/></bsdf>')
        scene = load_string(SCENE.format(bsdf=bsdf), base_dir=tmp_path)
        means.append(render_loaded(scene, spp=256, seed=2).rgb.mean())
    assert abs(means[0] - means[1]) < 0.03 * means[1], means


@pytest.mark.parametrize("value,message", [("missing.radmat", "file not found"),
                                           ("bad.radmat", "not a readable .radmat")])
def test_bad_radmat_in_scene_names_the_element(tmp_path, value, message):
    (tmp_path / "bad.radmat").write_bytes(b"garbage")
    bsdf = f'<bsdf type="neural"><string name="filename" value="{value}"/></bsdf>'
    with pytest.raises(SceneError, match=message) as e:
        load_string(SCENE.format(bsdf=bsdf), base_dir=tmp_path, name="scene.xml")
    assert "scene.xml" in str(e.value) and "\n" not in str(e.value)


def test_cli_render_malformed_radmat_exit_2(tmp_path, capsys):
    (tmp_path / "bad.radmat").write_bytes(b"\x00" * 64)
    xml = tmp_path / "s.xml"
    xml.write_text(SCENE.format(bsdf='<bsdf type="neural"><string name="filename" value="bad.radmat"/></bsdf>'))
    assert main(["render", str(xml), "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.radmat" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_cli_bake_material(tmp_path, capsys):
    xml = tmp_path / "mix.xml"
    xml.write_text('<bsdf type="texturedmix" id="mix"/>')
    out = tmp_path / "mix.radmat"
    args = ["bake-material", str(xml), "--out", str(out), "--minutes", "0.05", "--preview-spp", "1"]
    assert main(args) == 0
    assert out.is_file() and out.with_suffix(".html").is_file()
    html = out.with_suffix(".html").read_text()
    assert "BRDF slices" in html and "Preview" in html and "Training" in html
    from render.neural.material import NeuralBSDF

    n = NeuralBSDF.load(out)
    assert n.metadata["source"] == "mix.xml#mix" and n.metadata["errors"]["validation_log_l1"] > 0
    capsys.readouterr()
    # exists without --force: one line, exit 2, file untouched
    before = out.read_bytes()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--out", "x.png"], "expected a .radmat"),
    (["--out", "x.radmat", "--minutes", "0"], "--minutes"),
    (["--out", "x.radmat", "--latent-channels", "0"], "--latent-channels"),
    (["--out", "x.radmat", "--decoder", "4x4"], "--decoder"),
    (["--out", "x.radmat", "--device", "tpu"], "--device"),
    (["--out", "x.radmat", "--loss", "l2"], "--loss"),
    (["--out", "x.radmat", "--target-walks", "0"], "--target-walks"),
    (["--out", "x.radmat", "--phase-shares", "0.5,0.5"], "--phase-shares"),
    (["--out", "x.radmat", "--phase-shares", "0.4,0.4,0.4,0.4"], "--phase-shares"),
    (["--out", "x.radmat", "--phase-shares", "a,b,c,d"], "--phase-shares"),
    (["--out", "x.radmat", "--finetune-lr", "0"], "--finetune-lr"),
])
def test_cli_bake_bad_flags(tmp_path, capsys, args, message):
    xml = tmp_path / "mix.xml"
    xml.write_text('<bsdf type="texturedmix"/>')
    args = [a if not a.endswith((".radmat", ".png")) else str(tmp_path / a) for a in args]
    assert main(["bake-material", str(xml), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))


def test_cli_bake_no_material(tmp_path, capsys):
    xml = tmp_path / "d.xml"
    xml.write_text('<bsdf type="diffuse"/>')
    assert main(["bake-material", str(xml), "--out", str(tmp_path / "d.radmat")]) == 2
    assert "no material to bake" in capsys.readouterr().err
    assert main(["bake-material", str(tmp_path / "nope.xml"), "--out", str(tmp_path / "d.radmat")]) == 2


class FootprintSpy(TexturedMix):
    """Records the footprints the integrator passes (materials opt in with uses_footprint)."""
    uses_footprint = True
    seen: list = []

    def eval(self, uv, wi, wo, footprint=None):
        FootprintSpy.seen.append(footprint)
        return super().eval(uv, wi, wo)

    def pdf(self, uv, wi, wo, footprint=None):
        return super().pdf(uv, wi, wo)

    def sample(self, uv, wi, u, u_lobe, footprint=None):
        FootprintSpy.seen.append(footprint)
        return super().sample(uv, wi, u, u_lobe)


register_torch_bsdf("footprintspy", lambda bsdf, where: FootprintSpy(), lambda r: {})

PLANE = """<scene version="3.0.0">
    <integrator type="path"><integer name="max_depth" value="3"/></integrator>
    <sensor type="perspective"><float name="fov" value="40"/><string name="fov_axis" value="x"/>
        <transform name="to_world"><lookat origin="0, 0, -4" target="0, 0, 0" up="0, 1, 0"/></transform>
        <film type="hdrfilm"><integer name="width" value="16"/><integer name="height" value="16"/></film>
    </sensor>
    <emitter type="constant"><rgb name="radiance" value="1, 1, 1"/></emitter>
    <shape type="rectangle"><transform name="to_world"><rotate y="1" angle="180"/></transform>{bsdf}</shape>
</scene>"""


def test_primary_hits_get_the_pixel_footprint():
    """Facing a [-1,1]^2 plane 4 units away with a 40 degree, 16-pixel-wide camera: a pixel covers
    4 * 2 tan(20 deg) / 16 = 0.182 world units, and uv spans 2 world units per unit: footprint ~0.091 uv."""
    FootprintSpy.seen = []
    scene = load_string(PLANE.format(bsdf='<bsdf type="footprintspy"/>'))
    render_loaded(scene, spp=1, seed=0, max_depth=2)
    primary = [f for f in FootprintSpy.seen if f is not None]
    assert primary, "no footprint passed for primary hits"
    fp = torch.cat(primary)
    expected = 4 * 2 * np.tan(np.radians(20)) / 16 / 2
    assert abs(float(fp.median()) - expected) < 0.1 * expected, (float(fp.median()), expected)
    # more spp: each sample's footprint shrinks by 1/sqrt(spp), down to 1/8 (pbrt-v4's ray differential scale)
    for spp, scale in ((16, 0.25), (256, 0.125)):
        FootprintSpy.seen = []
        render_loaded(scene, spp=spp, seed=0, max_depth=2)
        fp = torch.cat([f for f in FootprintSpy.seen if f is not None])
        assert abs(float(fp.median()) - scale * expected) < 0.1 * scale * expected, (spp, float(fp.median()))


def test_neural_lod_from_footprint():
    model = random_model(2, res=16, levels=4)
    bsdf = NeuralBSDF(model)
    uv = torch.rand(500, 2)
    fine = bsdf.latent(uv)
    assert torch.allclose(bsdf.latent(uv, footprint=torch.full((500,), 1e-4)), fine, atol=1e-6)
    coarse = bsdf.latent(uv, footprint=torch.full((500,), 100.0))
    assert torch.allclose(coarse, model.pyramid.lookup(uv, torch.full((500,), 3.0)))
    # between two levels: a mix of both, chosen per point
    mid = bsdf.latent(uv, footprint=torch.full((500,), 2.5 / 16))   # lod = log2(2.5) = 1.32
    l1, l2 = (model.pyramid.lookup(uv, torch.full((500,), float(k))) for k in (1, 2))
    is1 = (mid - l1).abs().amax(1) < 1e-6
    is2 = (mid - l2).abs().amax(1) < 1e-6
    assert bool((is1 | is2).all()) and 0.15 < float(is2.float().mean()) < 0.5


def test_bundled_neural_materials_load_and_render():
    """The bakes shipped in scenes/materials load (checked .radmat) and the neural scene renders."""
    from pathlib import Path

    from render.scene import load_scene

    root = Path(__file__).resolve().parents[2] / "scenes" / "materials"
    for name in ("brass", "carpaint", "wood"):
        bsdf = NeuralBSDF.load(root / f"{name}.radmat")
        assert bsdf.metadata["source"].startswith(f"{name}.xml#")
        assert bsdf.metadata["errors"]["validation_log_l1"] < 0.2
    scene = load_scene(root / "materials_neural.xml", params={"width": "24", "height": "10", "spp": "1"})
    r = render_loaded(scene, seed=0)
    assert np.isfinite(r.rgb).all() and r.rgb.mean() > 0.01
