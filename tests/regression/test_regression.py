"""Render regression against Mitsuba 3 references: scenes pass within noise, the report is written, and a
perturbed integrator (MIS weights dropped) is caught on the scenes it affects and only there."""

import json
import re
from pathlib import Path

import pytest

from render.integrators import path as path_integrator
from render.regress import run_regression, scene_names
from render.render import render_scene

SCENES = Path(__file__).parent / "scenes"
FAST = ["diffuse", "roughconductor_ggx", "point_spot", "envmap", "thindielectric"]


def test_suite_covers_every_plugin():
    names = scene_names()
    assert len(names) >= 12
    text = "".join((SCENES / f"{n}.xml").read_text() for n in names)
    for plugin in ["diffuse", "conductor", "roughconductor", "dielectric", "thindielectric", "roughdielectric",
                   "plastic", "roughplastic", "twosided", "area", "point", "spot", "directional", "constant",
                   "envmap", "bitmap", "checkerboard", "obj", "ply", "sphere", "rectangle", "cube"]:
        assert re.search(rf'type="{plugin}"', text), plugin


@pytest.mark.parametrize("name", FAST)
def test_fast_scenes_match_mitsuba(name):
    (r,) = run_regression(name, spp=64)
    assert r.passed, f"{name}: {r.reasons}"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in scene_names() if n not in FAST])
def test_all_scenes_match_mitsuba(name):
    (r,) = run_regression(name, spp=64)
    assert r.passed, f"{name}: {r.reasons}"


def test_report_has_images_and_numbers(tmp_path):
    report = tmp_path / "regress" / "index.html"
    results = run_regression("diffuse", spp=16, report=report)
    text = report.read_text()
    for kind in ("ref", "ours", "flip", "relerr"):
        img = report.parent / results[0].images[kind]
        assert img.exists() and img.stat().st_size > 100, kind
        assert results[0].images[kind] in text
    data = json.loads(re.search(r'<script type="application/json" id="results">(.*?)</script>', text, re.S)
                      .group(1).replace("&quot;", '"'))
    assert data[0]["name"] == "diffuse" and data[0]["flip"] > 0


def test_perturbed_mis_is_caught(monkeypatch):
    """Dropping the MIS weights double-counts light wherever NEE and BSDF sampling overlap (area and environment
    lights on non-delta surfaces); scenes lit only by delta lights have no MIS and must still pass."""
    monkeypatch.setitem(path_integrator.TEST_HOOKS, "drop_mis", True)

    def torch_render(*args, **kwargs):  # the hook lives in the torch integrator
        return render_scene(*args, integrator="torch", **kwargs)

    affected = {r.name: r for r in run_regression("diffuse", spp=32, render_fn=torch_render)
                + run_regression("envmap", spp=32, render_fn=torch_render)}
    assert not any(r.passed for r in affected.values()), {n: r.mean_ratio for n, r in affected.items()}
    (unaffected,) = run_regression("point_spot", spp=32, render_fn=torch_render)
    assert unaffected.passed, unaffected.reasons
