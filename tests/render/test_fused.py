"""The fused path-tracing kernel (cuda/include/radiant/path.h) against the torch reference integrator and Mitsuba.

Both integrators must give the same expected image: per scene, the fused and torch image means agree within a few
standard deviations of their noise (estimated from two seeds each), and the fused render has no bias against the
Mitsuba references beyond noise (as tests/render/test_path_vs_mitsuba.py). Plus determinism, batching invariance,
the deferred-material seam and the binding's argument checks.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from render.core.image import read_exr_channels, rel_mse
from render.errors import UserError
from render.integrators import RenderSettings, SceneData
from render.integrators.fused import PACKED_FIELDS, FusedIntegrator, PackedScene
from render.kernels.build import load
from render.render import render_loaded, render_scene
from render.scene import load_scene

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "render" / "refs"
MANIFEST = json.loads((REFS / "manifest.json").read_text())
CASES = {c["name"]: c for c in MANIFEST["cases"]}
SPP_MITSUBA = {"cbox": 256, "spheres": 512, "lights": 128}
SPP_TORCH = {"cbox": 16, "spheres": 32, "lights": 16}


def _render(name, spp, seed, integrator, device="cpu"):
    case = CASES[name]
    r = render_scene(ROOT / case["scene"], spp=spp, seed=seed, params=case["params"], integrator=integrator,
                     device=device)
    assert r.integrator == integrator
    return r.rgb


@pytest.mark.parametrize("name", list(CASES))
def test_fused_matches_mitsuba_reference(name):
    ref = read_exr_channels(REFS / f"{name}.exr")["RGB"]
    a = _render(name, SPP_MITSUBA[name], 1, "fused")
    b = _render(name, SPP_MITSUBA[name], 2, "fused")
    assert a.shape == ref.shape
    ratio = (a + b).mean(axis=(0, 1)) / (2 * ref.mean(axis=(0, 1)))
    assert np.all(np.abs(ratio - 1) < 0.01), f"{name}: mean ratio to Mitsuba {ratio}"
    err, noise = rel_mse(a, ref), rel_mse(a, b)
    assert err < 0.75 * noise, f"{name}: relMSE vs Mitsuba {err:.3g} vs noise relMSE {noise:.3g}"


@pytest.mark.parametrize("name", list(CASES))
def test_fused_matches_torch_reference(name):
    spp = SPP_TORCH[name]
    f1, f2 = _render(name, spp, 1, "fused"), _render(name, spp, 2, "fused")
    t1, t2 = _render(name, spp, 3, "torch"), _render(name, spp, 4, "torch")
    n = f1.shape[0] * f1.shape[1]
    # Variance of one render's image mean from the seed-to-seed pixel differences; x4 for the pixels the
    # reconstruction filter correlates.
    var_f = ((f1 - f2) ** 2 / 2).sum(axis=(0, 1)) / n ** 2 * 4
    var_t = ((t1 - t2) ** 2 / 2).sum(axis=(0, 1)) / n ** 2 * 4
    diff = (f1 + f2).mean(axis=(0, 1)) / 2 - (t1 + t2).mean(axis=(0, 1)) / 2
    sigma = np.sqrt(var_f / 2 + var_t / 2)
    assert np.all(np.abs(diff) < 4 * sigma + 1e-4), f"{name}: fused - torch means {diff}, sigma {sigma}"
    # Pixel-level: fused vs torch differ no more than two renders of one integrator do.
    cross = 0.5 * (rel_mse(f1, t1) + rel_mse(f2, t2))
    within = 0.5 * (rel_mse(f1, f2) + rel_mse(t1, t2))
    assert cross < 1.3 * within, f"{name}: relMSE fused vs torch {cross:.3g}, within {within:.3g}"


def _cbox(res=32):
    return load_scene(ROOT / "scenes" / "cbox" / "cbox.xml", params={"res": str(res)})


def test_same_seed_same_image_and_batching_invariance():
    scene = _cbox()
    sd = SceneData(scene)
    a = render_loaded(scene, spp=4, seed=7, sd=sd, integrator="fused").rgb
    b = render_loaded(scene, spp=4, seed=7, sd=sd, integrator="fused").rgb
    c = render_loaded(scene, spp=4, seed=8, sd=sd, integrator="fused").rgb
    # One sample layer per pass: the same per-sample seeds and the same accumulation order.
    d = render_loaded(scene, spp=4, seed=7, sd=sd, integrator="fused", samples_per_pass=32 * 32).rgb
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(a, d)


def test_scene_switches_retrace_the_right_tree():
    """The CPU kernel keeps the 8-wide tree of the last scene (path_cpu.cpp, by content): rendering another scene in
    between, or the same scene with its triangles moved, must not reuse a stale tree."""
    case = CASES["lights"]
    cbox, lights = _cbox(), load_scene(ROOT / case["scene"], params={"width": "24", "height": "18"})
    a = render_loaded(cbox, spp=2, seed=3, integrator="fused").rgb
    render_loaded(lights, spp=2, seed=3, integrator="fused")
    assert np.array_equal(render_loaded(cbox, spp=2, seed=3, integrator="fused").rgb, a)
    sd, moved = SceneData(cbox), SceneData(cbox)
    moved.bvh.prims = moved.bvh.prims.clone()
    moved.bvh.prims[:, [1, 4, 7]] += 0.05  # every triangle up a bit (its box too, below)
    nodes = moved.bvh.nodes.clone()
    boxes = nodes[:, :24].view(torch.float32)
    boxes[:, 8:16] += 0.05  # lo_y, hi_y
    moved.bvh.nodes = nodes
    b = render_loaded(cbox, spp=2, seed=3, sd=moved, integrator="fused").rgb
    assert not np.array_equal(a, b)
    assert np.array_equal(render_loaded(cbox, spp=2, seed=3, sd=sd, integrator="fused").rgb, a)


def test_auto_picks_fused_and_falls_back_for_aovs():
    scene = _cbox(16)
    assert render_loaded(scene, spp=1).integrator == "fused"
    r = render_loaded(scene, spp=1, aovs=("normal",))
    assert r.integrator == "torch" and "normal" in r.aovs
    with pytest.raises(UserError, match="fused"):
        render_loaded(scene, spp=1, aovs=("normal",), integrator="fused")
    with pytest.raises(UserError, match="integrator"):
        render_loaded(scene, spp=1, integrator="mystery")


def test_deferred_materials_are_exported_not_shaded():
    scene = _cbox(16)
    sd = SceneData(scene)
    packed = PackedScene(sd)
    rows = packed.tensors[PACKED_FIELDS.index("bsdf_rows")]
    rows = rows.clone()
    rows[:, 0] = 100  # every material deferred (path.h kDeferredBSDFType)
    packed.tensors[PACKED_FIELDS.index("bsdf_rows")] = rows
    integ = FusedIntegrator(sd, RenderSettings(spp=1, max_depth=6), packed=packed)
    pos, L, deferred, count = integ.trace(0, 1, deferred_capacity=16 * 16)
    # Every camera ray that hits anything is exported at its first hit (depth 1, throughput 1).
    o, d, tmin, tmax = integ.camera_rays(pos / torch.tensor([16.0, 16.0]))
    hit = sd.bvh.closest_hit(o, d, tmin, tmax).hit
    assert count == int(hit.sum()) > 200
    q = deferred[:count]
    assert torch.all(q[:, 17] == 1) and torch.all(q[:, 6:9] == 1)
    order = torch.argsort(q[:, 18])
    pixels = q[order, 18].long()
    assert torch.equal(pixels, torch.nonzero(hit)[:, 0])
    assert torch.allclose(q[order, 12:14], pos[pixels])
    # Radiance so far (the light seen directly) stays in L and is exported too; nothing is shaded.
    assert torch.allclose(q[order, 9:12], L[pixels])
    # A smaller queue still reports the total.
    _, _, small, count2 = integ.trace(0, 1, deferred_capacity=10)
    assert count2 == count and small.shape[0] == 10


def _trace_args(packed, **over):
    args = dict(scene=list(packed.tensors), num_triangles=packed.num_triangles, env=packed.env,
                camera=[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 3.9, 0.3, 0.3, 0.01, 100.0], width=8, height=8,
                max_depth=4, rr_depth=5, hide_emitters=False, seed=0, first_sample=0, layers=1)
    args.update(over)
    return args


def test_binding_rejects_bad_input():
    sd = SceneData(_cbox(8))
    packed = PackedScene(sd)
    k = load()
    pos, L, _, _ = k.path_trace(**_trace_args(packed))
    assert pos.shape == (64, 2) and L.shape == (64, 3) and torch.isfinite(L).all()

    def bad(field, value, match):
        tensors = list(packed.tensors)
        tensors[PACKED_FIELDS.index(field)] = value
        with pytest.raises(ValueError, match=match):
            k.path_trace(**_trace_args(packed, scene=tensors))

    t = dict(zip(PACKED_FIELDS, packed.tensors))
    bad("vertices", t["vertices"].double(), "vertices")
    bad("faces", t["faces"] + 10_000, "faces")
    bad("prim_shape", t["prim_shape"] + 100, "prim_shape")
    bad("shape_info", t["shape_info"][:, :3].contiguous(), "shape_info")
    info = t["shape_info"].clone()
    info[0, 2] = 99
    bad("shape_info", info, "bsdf rows")
    em = t["emitter_info"].clone()
    em[0, 3] = 10_000
    bad("emitter_info", em, "triangle range")
    nodes = t["nodes"].clone()
    nodes[0, 24:28] = 10_000
    nodes[0, 28:32] = 0
    bad("nodes", nodes, "nodes")
    bad("bsdf_rows", t["bsdf_rows"][:, :10].contiguous(), "bsdf_rows")
    with pytest.raises(ValueError, match="scene"):
        k.path_trace(**_trace_args(packed, scene=packed.tensors[:-1]))
    with pytest.raises(ValueError, match="camera"):
        k.path_trace(**_trace_args(packed, camera=[0.0] * 3))
    with pytest.raises(ValueError, match="camera"):
        k.path_trace(**_trace_args(packed, camera=[math.nan] * 16))
    with pytest.raises(ValueError, match="width"):
        k.path_trace(**_trace_args(packed, width=0))
    with pytest.raises(ValueError, match="num_triangles"):
        k.path_trace(**_trace_args(packed, num_triangles=packed.num_triangles + 1))
    with pytest.raises(ValueError, match="env"):
        k.path_trace(**_trace_args(packed, env=5))
    with pytest.raises(ValueError, match="env"):
        k.path_trace(**_trace_args(packed, env=0))  # cbox's only emitter is its area light
    acc = torch.zeros(64, 4, dtype=torch.float64)
    k.film_splat(acc, pos, L, 8, 8, 1, 2.0, 0.5)
    assert acc[:, 3].sum() > 0
    with pytest.raises(ValueError, match="acc"):
        k.film_splat(torch.zeros(63, 4, dtype=torch.float64), pos, L, 8, 8, 1, 2.0, 0.5)
    with pytest.raises(ValueError, match="layers"):
        k.film_splat(acc, pos[:10].contiguous(), L[:10].contiguous(), 8, 8, 1, 2.0, 0.5)
    with pytest.raises(ValueError, match="filter_kind"):
        k.film_splat(acc, pos, L, 8, 8, 7, 2.0, 0.5)
    with pytest.raises(ValueError, match="radius"):
        k.film_splat(acc, pos, L, 8, 8, 1, 100.0, 25.0)


def test_film_splat_matches_torch_film():
    from render.integrators import Film
    from render.scene.types import RFilter

    g = torch.Generator().manual_seed(0)
    w, h, layers = 13, 7, 3
    pix = torch.arange(w * h).repeat(layers)
    pos = torch.stack([(pix % w).float(), (pix // w).float()], 1) + torch.rand(len(pix), 2, generator=g)
    vals = torch.rand(len(pix), 3, generator=g)
    for kind, kwargs, code, radius in (("box", {}, 0, 0.5), ("gaussian", {"stddev": 0.5}, 1, 2.0),
                                       ("tent", {"radius": 1.5}, 2, 1.5)):
        rf = RFilter(type=kind, **kwargs)
        film = Film(w, h, rf, 3, "cpu")
        film.splat(pos, vals)
        acc = torch.zeros(w * h, 4, dtype=torch.float64)
        load().film_splat(acc, pos, vals, w, h, code, radius, 0.5)
        assert torch.allclose(acc, film.acc, rtol=1e-6, atol=1e-9), kind


def test_film_splat_rows_match_scalar_bitwise(monkeypatch):
    """The RGB gaussian / tent splat's vectorized rows (path_cpu.cpp splat_row_rgb, AVX-512 or AVX2) accumulate exactly
    what the scalar loop does (RADIANT_SCALAR_SPLAT=1), bit for bit: samples everywhere incl. the film's edges,
    windows (accumulator smaller than the film), footprints of up to six taps (vectorized) and wider (the scalar
    loop), and several layers."""
    g = torch.Generator().manual_seed(3)
    w, h, layers = 37, 23, 4
    pix = torch.arange(w * h).repeat(layers)
    pos = torch.stack([(pix % w).float(), (pix // w).float()], 1) + torch.rand(len(pix), 2, generator=g)
    vals = torch.rand(len(pix), 3, generator=g) * 4
    for code, radius, stddev in ((1, 2.0, 0.5), (1, 1.5, 0.4), (2, 1.5, 0.5), (2, 2.5, 0.5), (2, 3.5, 0.5)):
        for window in (None, [5, 3, 20, 11, 2, 0, 26, 16]):
            out = []
            for scalar in ("1", "0"):
                monkeypatch.setenv("RADIANT_SCALAR_SPLAT", scalar)
                if window is None:
                    acc = torch.zeros(w * h, 4, dtype=torch.float64)
                    load().film_splat(acc, pos, vals, w, h, code, radius, stddev)
                else:
                    x0, y0, ww, hh = window[:4]
                    sel = ((pix % w >= x0) & (pix % w < x0 + ww) & (pix // w >= y0) & (pix // w < y0 + hh))
                    acc = torch.zeros(window[6] * window[7], 4, dtype=torch.float64)
                    load().film_splat(acc, pos[sel].contiguous(), vals[sel].contiguous(), w, h, code, radius,
                                      stddev, window)
                out.append(acc)
            assert out[0][:, 3].sum() > 0
            assert torch.equal(out[0], out[1]), (code, radius, window)


TEXTURED_SCENE = """<scene version="3.0.0">
    <integrator type="path"><integer name="max_depth" value="2"/></integrator>
    <sensor type="perspective">
        <float name="fov" value="60"/>
        <transform name="to_world"><lookat origin="0, 0, 2" target="0, 0, 0" up="0, 1, 0"/></transform>
        <film type="hdrfilm"><integer name="width" value="24"/><integer name="height" value="24"/>
            <rfilter type="box"/></film>
    </sensor>
    <emitter type="constant"><rgb name="radiance" value="1, 1, 1"/></emitter>
    <texture type="bitmap" id="t">
        <string name="filename" value="tex.exr"/>
        <string name="filter_type" value="{filter}"/><string name="wrap_mode" value="{wrap}"/>
        <transform name="to_uv"><scale x="2.5" y="1.5"/><translate x="-0.3" y="0.2"/></transform>
    </texture>
    <shape type="rectangle"><bsdf type="diffuse"><ref name="reflectance" id="t"/></bsdf></shape>
</scene>
"""


@pytest.mark.parametrize("filt,wrap", [("bilinear", "repeat"), ("nearest", "mirror"), ("bilinear", "clamp")])
def test_bitmap_textures_match_torch(tmp_path, filt, wrap):
    from render.core.image import write_exr

    tex = np.random.default_rng(0).uniform(0.05, 0.95, (3, 4, 3)).astype(np.float32)
    write_exr(tmp_path / "tex.exr", {"R": tex[..., 0], "G": tex[..., 1], "B": tex[..., 2]})
    (tmp_path / "s.xml").write_text(TEXTURED_SCENE.format(filter=filt, wrap=wrap))
    scene = load_scene(tmp_path / "s.xml")
    sd = SceneData(scene)
    f = [render_loaded(scene, spp=64, seed=s, sd=sd, integrator="fused").rgb for s in (1, 2)]
    t = [render_loaded(scene, spp=64, seed=s, sd=sd, integrator="torch").rgb for s in (3, 4)]
    within = 0.5 * (rel_mse(f[0], f[1]) + rel_mse(t[0], t[1]))
    cross = 0.5 * (rel_mse(f[0], t[0]) + rel_mse(f[1], t[1]))
    assert cross < 1.3 * within, f"relMSE fused vs torch {cross:.3g}, within {within:.3g}"
    # A diffuse plane under a white sky reflects its albedo: the texture itself, up to noise.
    assert np.abs((f[0] + f[1]).mean() / 2 - (t[0] + t[1]).mean() / 2) < 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA build is only compile-checked")
@pytest.mark.parametrize("name", list(CASES))
def test_cuda_fused_matches_mitsuba_and_cpu(name):
    """The CUDA build of the fused kernel (same headers) against the Mitsuba references, as the CPU build above,
    and against the CPU build at the same seed: same expected image (pixel differences no larger than noise)."""
    if not load().with_cuda:
        pytest.skip("kernels built without CUDA")
    ref = read_exr_channels(REFS / f"{name}.exr")["RGB"]
    spp = SPP_MITSUBA[name]
    a, b = _render(name, spp, 1, "fused", "cuda"), _render(name, spp, 2, "fused", "cuda")
    ratio = (a + b).mean(axis=(0, 1)) / (2 * ref.mean(axis=(0, 1)))
    assert np.all(np.abs(ratio - 1) < 0.01), f"{name}: CUDA mean ratio to Mitsuba {ratio}"
    err, noise = rel_mse(a, ref), rel_mse(a, b)
    assert err < 0.75 * noise, f"{name}: CUDA relMSE vs Mitsuba {err:.3g} vs noise relMSE {noise:.3g}"
    c = _render(name, spp, 1, "fused")
    same_seed = rel_mse(a, c)
    print(f"{name}: CUDA vs CPU at one seed: relMSE {same_seed:.3g} (noise {noise:.3g}), "
          f"max |diff| {np.abs(a - c).max():.3g}")
    assert same_seed < 1.3 * noise, f"{name}: CUDA vs CPU relMSE {same_seed:.3g} vs noise {noise:.3g}"
