"""render.progressive.Accumulator: adding spp in steps gives render_loaded's image; a camera override renders the
scene as if its XML had that camera; reset starts over; AOVs come from the torch integrator."""

from pathlib import Path

import numpy as np
import pytest

from render.errors import UserError
from render.integrators import SceneData
from render.progressive import Accumulator
from render.render import render_loaded
from render.scene import load_scene
from render.scene.transforms import look_at
from render.scene.types import RFilter

ROOT = Path(__file__).resolve().parents[2]
CBOX = ROOT / "scenes" / "cbox" / "cbox.xml"


@pytest.fixture(scope="module")
def cbox():
    scene = load_scene(CBOX, params={"res": "16"})
    return scene, SceneData(scene, "cpu")


@pytest.mark.parametrize("integrator", ["fused", "torch"])
def test_steps_of_one_spp_equal_one_render(cbox, integrator):
    scene, sd = cbox
    acc = Accumulator(scene, sd=sd, integrator=integrator, samples_per_pass=16 * 16)
    for _ in range(4):
        acc.add(1)
    assert acc.spp == 4 and acc.samples == 4 * 16 * 16 and acc.msamples_per_second > 0
    ref = render_loaded(scene, spp=4, sd=sd, integrator=integrator, samples_per_pass=16 * 16)
    assert np.allclose(acc.rgb(), ref.rgb, atol=1e-6)
    assert acc.result().integrator == integrator


def test_camera_override_matches_the_scene_with_that_camera(cbox, tmp_path):
    scene, sd = cbox
    moved = look_at([0.8, 0.5, 3.5], [0, 0, 0], [0, 1, 0])
    acc = Accumulator(scene, sd=sd, integrator="fused", to_world=moved)
    acc.add(2)
    text = CBOX.read_text().replace('origin="0, 0, 3.9"', 'origin="0.8, 0.5, 3.5"')
    moved_xml = tmp_path / "cbox.xml"
    moved_xml.write_text(text)
    ref = render_loaded(load_scene(moved_xml, params={"res": "16"}), spp=2, integrator="fused")
    assert np.allclose(acc.rgb(), ref.rgb, atol=1e-6)
    home = render_loaded(scene, spp=2, sd=sd, integrator="fused")
    assert np.abs(acc.rgb() - home.rgb).mean() > 0.01
    assert np.array_equal(scene.sensor.to_world, load_scene(CBOX, params={"res": "16"}).sensor.to_world)


def test_reset_starts_over_with_new_size_and_aovs(cbox):
    scene, sd = cbox
    acc = Accumulator(scene, sd=sd, integrator="torch", max_depth=1, color=False, rfilter=RFilter(type="box"))
    acc.add(2)
    acc.reset(width=12, height=8, aovs=("normal", "depth"))
    assert acc.spp == 0 and (acc.width, acc.height) == (12, 8)
    acc.add(1)
    aovs = acc.aov_images()
    assert aovs["normal"].shape == (8, 12, 3) and aovs["depth"].shape == (8, 12)
    assert 4.5 < float(aovs["depth"][4, 6]) < 5.1
    # An AOV-only accumulator has no colour film to read.
    with pytest.raises(ValueError, match="AOVs only"):
        acc.rgb()
    with pytest.raises(UserError, match="unknown AOV 'bogus'"):
        acc.reset(aovs=("bogus",))
    with pytest.raises(UserError, match="--spp: expected a positive"):
        acc.add(0)
