"""The CPU's lane path loop (cuda/cpu/path_lanes.h: 16 or 8 paths in lockstep, each with its own RNG stream) against
the one-path-at-a-time loop (path.h trace_sample); RADIANT_SCALAR_PATHS=0 / 1 forces one or the other (by default
path_cpu.cpp picks the lane loop for scenes whose BSDFs all have lane forms). The same film positions, radiance and
deferred-queue rows, bit for bit, on the bundled scenes (diffuse, plastic and dielectric in lane form, roughconductor
and roughplastic eval / pdf in lanes and their sampling lane by lane, twosided rows), with depth limits, hidden
emitters, twosided diffuse rows, deferred rows and a sample range that is not a whole number of lane groups. With
AVX-512 the lane loop traces its rays as 16-ray packets (bvh_wide.h packet_traverse; the camera rays of 16
consecutive samples ahead as one packet); RADIANT_PACKET_RAYS sets when a packet hands its rays over to single-ray
traversal (-1: no packets): each setting gives the scalar loop's image too."""

from pathlib import Path

import pytest
import torch

from render.integrators import RenderSettings, SceneData
from render.integrators.fused import EM_RADIUS, PACKED_FIELDS, FusedIntegrator, PackedScene
from render.integrators.scene_data import AREA_SPHERE
from render.scene import load_scene

ROOT = Path(__file__).resolve().parents[2]
SCENES = {
    "cbox": ("scenes/cbox/cbox.xml", {"res": "40"}),
    "spheres": ("scenes/spheres/spheres.xml", {"width": "48", "height": "27"}),
    "lights": ("scenes/lights/lights.xml", {"width": "48", "height": "36"}),
}


PACKETS = [None, "-1", "0", "16"]  # the default hybrid, no packets, pure packets, every packet handed over at once


def _both(monkeypatch, integ, first_sample, layers, capacity=0, window=None):
    monkeypatch.setenv("RADIANT_SCALAR_PATHS", "1")
    scalar = integ.trace(first_sample, layers, deferred_capacity=capacity, window=window)
    monkeypatch.setenv("RADIANT_SCALAR_PATHS", "0")
    lanes = integ.trace(first_sample, layers, deferred_capacity=capacity, window=window)
    return scalar, lanes


def _assert_same(scalar, lanes):
    pos_s, L_s, _, n_s = scalar
    pos_l, L_l, _, n_l = lanes
    assert torch.equal(pos_s, pos_l)
    assert torch.isfinite(L_s).all()
    bad = (L_s != L_l).any(dim=1)
    assert not bad.any(), f"{int(bad.sum())} of {L_s.shape[0]} paths differ, e.g. {L_s[bad][:3]} vs {L_l[bad][:3]}"
    assert n_s == n_l


@pytest.mark.parametrize("name", list(SCENES))
@pytest.mark.parametrize("max_depth,hide", [(-1, False), (3, True), (0, False)])
@pytest.mark.parametrize("packet", PACKETS)
def test_lane_loop_matches_scalar_loop_bitwise(monkeypatch, name, max_depth, hide, packet):
    if packet is not None:
        monkeypatch.setenv("RADIANT_PACKET_RAYS", packet)
    path, params = SCENES[name]
    sd = SceneData(load_scene(ROOT / path, params=params))
    integ = FusedIntegrator(sd, RenderSettings(spp=4, max_depth=max_depth, hide_emitters=hide, seed=11))
    scalar, lanes = _both(monkeypatch, integ, 2, 3)
    _assert_same(scalar, lanes)
    assert float(scalar[1].sum()) > 0 or max_depth == 0
    # A window whose item count is no multiple of the lane width.
    _assert_same(*_both(monkeypatch, integ, 0, 1, window=(3, 2, 7, 5)))
    # A window smaller than a lane group, several layers: a camera packet's items wrap around it (to the next sample
    # index) more than once.
    _assert_same(*_both(monkeypatch, integ, 1, 3, window=(5, 3, 3, 2)))


@pytest.mark.parametrize("packet", PACKETS[:2])
def test_lane_loop_twosided_diffuse_and_deferred_rows(monkeypatch, packet):
    if packet is not None:
        monkeypatch.setenv("RADIANT_PACKET_RAYS", packet)
    sd = SceneData(load_scene(ROOT / SCENES["cbox"][0], params={"res": "24"}))
    packed = PackedScene(sd)
    i = PACKED_FIELDS.index("bsdf_rows")
    rows = packed.tensors[i].clone()
    rows[:, 1] = 1  # twosided (back sides shaded as the front): the lane form's flip
    packed.tensors[i] = rows
    integ = FusedIntegrator(sd, RenderSettings(spp=2, seed=5), packed=packed)
    _assert_same(*_both(monkeypatch, integ, 0, 2))

    rows = rows.clone()
    rows[1:, 0] = 100  # all but the first material deferred (path.h kDeferredBSDFType)
    packed.tensors[i] = rows
    integ = FusedIntegrator(sd, RenderSettings(spp=2, max_depth=8, seed=5), packed=packed)
    scalar, lanes = _both(monkeypatch, integ, 0, 2, capacity=4 * 24 * 24)
    _assert_same(scalar, lanes)
    count = scalar[3]
    assert count > 100
    # The queue's order depends on the loop; its rows, sorted by (pixel, sample), do not.
    qs, ql = scalar[2][:count], lanes[2][:count]
    order_s = torch.argsort(qs[:, 18] * 16 + qs[:, 19])
    order_l = torch.argsort(ql[:, 18] * 16 + ql[:, 19])
    assert torch.equal(qs[order_s], ql[order_l])


@pytest.mark.parametrize("flip", [False, True])
def test_lane_loop_mesh_emitters_with_normals_and_flip(monkeypatch, flip):
    # Area-mesh emitters sampled in lanes (path.h area_mesh_sample): interpolated vertex normals and flipped normals,
    # next to the lights scene's other emitter kinds (sampled lane by lane) and Beckmann rough lobes.
    sd = SceneData(load_scene(ROOT / SCENES["lights"][0], params={"width": "40", "height": "30"}))
    packed = PackedScene(sd)
    i = PACKED_FIELDS.index("shape_info")
    info = packed.tensors[i].clone()
    emitting = info[:, 3] >= 0
    assert bool(emitting.any())
    info[emitting, 1] = 1
    if flip:
        info[emitting, 0] = 1 - info[emitting, 0]
    packed.tensors[i] = info
    integ = FusedIntegrator(sd, RenderSettings(spp=2, seed=3), packed=packed)
    scalar, lanes = _both(monkeypatch, integ, 0, 2)
    _assert_same(scalar, lanes)
    assert float(scalar[1].sum()) > 0


@pytest.mark.parametrize("packet", PACKETS[:2])
def test_lane_loop_sphere_light_inside_and_outside(monkeypatch, packet):
    # The spherical area light sampled in lanes (path.h sphere_sample): its radius for emitter sampling and the hit
    # pdf grown to 2 (the floor and back wall cut it) so that shading points inside it (uniform on the surface) and
    # outside it (in the cone) mix in one lane group, flipped normals too.
    if packet is not None:
        monkeypatch.setenv("RADIANT_PACKET_RAYS", packet)
    sd = SceneData(load_scene(ROOT / SCENES["lights"][0], params={"width": "40", "height": "30"}))
    packed = PackedScene(sd)
    emitter_info = packed.tensors[PACKED_FIELDS.index("emitter_info")]
    sphere = int((emitter_info[:, 0] == AREA_SPHERE).nonzero()[0])
    i = PACKED_FIELDS.index("emitter_params")
    prm = packed.tensors[i].clone()
    prm[sphere, EM_RADIUS] = 2.0
    packed.tensors[i] = prm
    for flip in (False, True):
        if flip:
            j = PACKED_FIELDS.index("shape_info")
            info = packed.tensors[j].clone()
            info[emitter_info[sphere, 1], 0] = 1 - info[emitter_info[sphere, 1], 0]
            packed.tensors[j] = info
        integ = FusedIntegrator(sd, RenderSettings(spp=2, seed=7), packed=packed)
        scalar, lanes = _both(monkeypatch, integ, 0, 2)
        _assert_same(scalar, lanes)
        assert float(scalar[1].sum()) > 0
