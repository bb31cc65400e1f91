"""Positive tests of the Mitsuba XML loader: transforms, properties, $params, refs and every plugin."""

import math
from pathlib import Path

import numpy as np
import pytest

from render.scene import SceneError, camera_frame, camera_rays, load_scene, load_string
from render.scene import mitsuba_tables
from render.core.image import write_exr
from render.scene.images import read_hdr, read_image, srgb_to_linear

ROOT = Path(__file__).resolve().parents[2]


def scene(body: str, base_dir=".", **kw):
    return load_string(f'<scene version="3.0.0">\n{body}\n</scene>', base_dir, **kw)


def shape_world(transform_xml: str, shape="rectangle"):
    return scene(f'<shape type="{shape}"><transform name="to_world">{transform_xml}</transform></shape>').shapes[0]


# ------------------------------------------------------------------ transforms
def T(x, y, z):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def S(x, y, z):
    return np.diag([x, y, z, 1.0])


def Rz90():
    return np.array([[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)


@pytest.mark.parametrize("xml, expected", [
    ('<translate x="1" y="2" z="3"/>', T(1, 2, 3)),
    ('<translate value="1, 2, 3"/>', T(1, 2, 3)),
    ('<translate y="-2"/>', T(0, -2, 0)),
    ('<scale value="2"/>', S(2, 2, 2)),
    ('<scale value="1 2 3"/>', S(1, 2, 3)),
    ('<scale y="4"/>', S(1, 4, 1)),
    ('<rotate z="1" angle="90"/>', Rz90()),
    ('<rotate value="0 0 1" angle="90"/>', Rz90()),
    ('<matrix value="1 0 0 5  0 1 0 6  0 0 1 7  0 0 0 1"/>', T(5, 6, 7)),
    ('<matrix value="2 0 0 0 3 0 0 0 4"/>', S(2, 3, 4)),
    # document order: each op left-multiplies -> translate then scale = S @ T
    ('<translate x="1"/><scale value="2"/>', S(2, 2, 2) @ T(1, 0, 0)),
    ('<scale value="2"/><translate x="1"/>', T(1, 0, 0) @ S(2, 2, 2)),
    ('<rotate z="1" angle="90"/><translate x="1"/>', T(1, 0, 0) @ Rz90()),
])
def test_transform_ops(xml, expected):
    sh = shape_world(xml)
    np.testing.assert_allclose(sh.to_world, expected, atol=1e-12)


def test_rotate_x_by_hand():
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    sh = shape_world('<rotate x="1" angle="30"/>', "cube")
    np.testing.assert_allclose(sh.to_world[:3, :3], [[1, 0, 0], [0, c, -s], [0, s, c]], atol=1e-12)


def test_lookat_matches_mitsuba_convention():
    sc = scene('<sensor type="perspective"><transform name="to_world">'
               '<lookat origin="0 0 5" target="0 0 0" up="0 1 0"/></transform></sensor>')
    # Mitsuba: columns (left, up, dir, origin); camera looking down -z has +x camera axis = world -x
    np.testing.assert_allclose(sc.sensor.to_world, [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 5], [0, 0, 0, 1]],
                               atol=1e-12)
    # without up, Mitsuba picks coordinate_system(dir).s; for dir = -z that gives left = +y
    sc = scene('<sensor type="perspective"><transform name="to_world">'
               '<lookat origin="0 0 5" target="0 0 0"/></transform></sensor>')
    np.testing.assert_allclose(sc.sensor.to_world[:3, :3], [[0, 1, 0], [1, 0, 0], [0, 0, -1]], atol=1e-12)


# ------------------------------------------------------------------ properties, params, refs
def test_rgb_forms_and_spectrum():
    sc = scene('<bsdf type="diffuse" id="a"><rgb name="reflectance" value="0.1, 0.2, 0.3"/></bsdf>'
               '<bsdf type="diffuse" id="b"><rgb name="reflectance" value="0.1 0.2 0.3"/></bsdf>'
               '<bsdf type="diffuse" id="c"><rgb name="reflectance" value="0.25"/></bsdf>'
               '<bsdf type="diffuse" id="d"><spectrum name="reflectance" value="0.4"/></bsdf>'
               '<bsdf type="diffuse" id="f"><float name="reflectance" value="0.6"/></bsdf>')
    r = {k: b.params["reflectance"] for k, b in sc.bsdfs.items()}
    np.testing.assert_allclose(r["a"], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(r["b"], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(r["c"], [0.25] * 3)
    assert "e" not in r
    np.testing.assert_allclose(r["d"], [0.4] * 3, rtol=1e-6)
    np.testing.assert_allclose(r["f"], [0.6] * 3, rtol=1e-6)
    assert r["a"].dtype == np.float32


def test_params_defaults_and_overrides():
    body = ('<default name="spp" value="16"/><default name="w" value="$h"/>'
            '<default name="h" value="9"/>'
            '<sensor type="perspective"><sampler type="independent"><integer name="sample_count" value="$spp"/>'
            '</sampler><film type="hdrfilm"><integer name="height" value="$h"/></film></sensor>')
    with pytest.raises(SceneError, match=r"undefined parameter \$h"):
        scene(body)  # $h used by a default before h is declared
    body = body.replace('<default name="w" value="$h"/>', "")
    sc = scene(body)
    assert sc.sampler.sample_count == 16 and sc.film.height == 9
    sc = scene(body, params={"spp": "4", "h": "7"})
    assert sc.sampler.sample_count == 4 and sc.film.height == 7
    sc = scene('<default name="a" value="1"/><shape type="sphere"><float name="radius" value="$a.$a"/></shape>')
    assert sc.shapes[0].radius == pytest.approx(1.1)


def test_ref_reuse_shares_objects():
    sc = scene('<bsdf type="plastic" id="mat"/>'
               '<texture type="checkerboard" id="tex"/>'
               '<shape type="cube"><ref id="mat"/></shape>'
               '<shape type="sphere"><ref id="mat"/></shape>'
               '<shape type="disk"><bsdf type="diffuse"><ref name="reflectance" id="tex"/></bsdf></shape>'
               '<shape type="rectangle"><bsdf type="diffuse" id="inner"/></shape>')
    assert sc.shapes[0].bsdf is sc.shapes[1].bsdf is sc.bsdfs["mat"]
    assert sc.shapes[2].bsdf.params["reflectance"] is sc.textures["tex"]
    assert sc.shapes[3].bsdf is sc.bsdfs["inner"]
    # forward reference (defined after use) works as in Mitsuba
    sc = scene('<shape type="cube"><ref id="late"/></shape><bsdf type="conductor" id="late"/>')
    assert sc.shapes[0].bsdf.type == "conductor"


def test_missing_bsdf_is_diffuse_half():
    b = scene('<shape type="cube"/>').shapes[0].bsdf
    assert b.type == "diffuse"
    np.testing.assert_allclose(b.params["reflectance"], [0.5] * 3)


def test_missing_bsdf_on_area_emitter_is_black():
    # Mitsuba 3 Shape::Shape: an emitter shape without a bsdf gets diffuse with reflectance 0, not 0.5.
    sc = scene('<shape type="rectangle"><emitter type="area"/></shape>'
               '<shape type="sphere"><emitter type="area"><rgb name="radiance" value="2"/></emitter></shape>'
               '<shape type="cube"><emitter type="area"/><bsdf type="diffuse"/></shape>')
    for s in sc.shapes[:2]:
        assert s.bsdf.type == "diffuse"
        np.testing.assert_allclose(s.bsdf.params["reflectance"], [0.0] * 3)
    np.testing.assert_allclose(sc.shapes[2].bsdf.params["reflectance"], [0.5] * 3)  # an explicit bsdf is kept


# ------------------------------------------------------------------ bsdfs
def test_bsdf_defaults_as_mitsuba():
    sc = scene('<bsdf type="conductor" id="c"/><bsdf type="roughconductor" id="rc">'
               '<string name="material" value="Cu"/><float name="alpha_u" value="0.1"/>'
               '<float name="alpha_v" value="0.3"/>'
               '<string name="distribution" value="ggx"/><boolean name="sample_visible" value="false"/></bsdf>'
               '<bsdf type="conductor" id="eta"><rgb name="eta" value="0.2 0.9 1.1"/>'
               '<rgb name="k" value="3 2.5 2"/></bsdf>'
               '<bsdf type="dielectric" id="d"/><bsdf type="thindielectric" id="td">'
               '<string name="int_ior" value="Water"/></bsdf>'
               '<bsdf type="roughdielectric" id="rd"><float name="int_ior" value="1.33"/>'
               '<float name="alpha" value="0.3"/></bsdf>'
               '<bsdf type="plastic" id="p"/><bsdf type="roughplastic" id="rp">'
               '<boolean name="nonlinear" value="true"/></bsdf>'
               '<bsdf type="twosided" id="ts"><bsdf type="diffuse"/><bsdf type="conductor"/></bsdf>')
    b = sc.bsdfs
    np.testing.assert_allclose(b["c"].params["eta"], [0, 0, 0])
    np.testing.assert_allclose(b["c"].params["k"], [1, 1, 1])
    np.testing.assert_allclose(b["rc"].params["eta"], mitsuba_tables.CONDUCTORS["Cu"][0], rtol=1e-6)
    assert (b["rc"].params["alpha_u"], b["rc"].params["alpha_v"]) == (0.1, 0.3)
    assert b["rc"].params["distribution"] == "ggx" and b["rc"].params["sample_visible"] is False
    np.testing.assert_allclose(b["eta"].params["k"], [3, 2.5, 2])
    assert b["d"].params["int_ior"] == pytest.approx(1.5046) and b["d"].params["ext_ior"] == pytest.approx(1.000277)
    assert b["td"].params["int_ior"] == pytest.approx(1.333)
    rd = b["rd"].params
    assert rd["distribution"] == "beckmann" and rd["alpha_u"] == 0.3 and rd["sample_visible"] is True
    assert b["p"].params["int_ior"] == pytest.approx(1.49) and b["p"].params["nonlinear"] is False
    np.testing.assert_allclose(b["p"].params["diffuse_reflectance"], [0.5] * 3)
    assert b["rp"].params["alpha"] == 0.1 and b["rp"].params["nonlinear"] is True
    assert [n.type for n in b["ts"].nested] == ["diffuse", "conductor"]


def test_roughplastic_is_isotropic():
    with pytest.raises(SceneError, match="unknown parameter 'alpha_u'"):
        scene('<bsdf type="roughplastic"><float name="alpha_u" value="0.1"/><float name="alpha_v" value="0.1"/></bsdf>')


# ------------------------------------------------------------------ textures and images
def test_bitmap_png_srgb_and_raw(tmp_path):
    import imageio.v3 as iio

    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[0, 0] = (255, 128, 0)
    iio.imwrite(tmp_path / "t.png", img)
    sc = scene('<texture type="bitmap" id="a"><string name="filename" value="t.png"/>'
               '<string name="filter_type" value="nearest"/><string name="wrap_mode" value="clamp"/></texture>'
               '<texture type="bitmap" id="b"><string name="filename" value="t.png"/><boolean name="raw" value="true"/>'
               '<transform name="to_uv"><scale x="2" y="3"/></transform></texture>', tmp_path)
    a, b = sc.textures["a"], sc.textures["b"]
    assert a.image.shape == (2, 3, 3) and a.params["filter_type"] == "nearest" and a.params["wrap_mode"] == "clamp"
    np.testing.assert_allclose(a.image[0, 0], srgb_to_linear(np.array([1, 128 / 255, 0])), rtol=1e-6)
    np.testing.assert_allclose(b.image[0, 0], [1, 128 / 255, 0], rtol=1e-6)
    np.testing.assert_allclose(b.to_uv, np.diag([2, 3, 1]))


def test_exr_round_trip(tmp_path):
    rgb = np.random.default_rng(0).uniform(0, 50, (5, 7, 3)).astype(np.float32)
    write_exr(tmp_path / "a.exr", {"RGB": rgb})
    np.testing.assert_array_equal(read_image(tmp_path / "a.exr"), rgb)
    sc = scene('<emitter type="envmap"><string name="filename" value="a.exr"/><float name="scale" value="2"/>'
               '<transform name="to_world"><rotate y="1" angle="90"/></transform></emitter>', tmp_path)
    e = sc.emitters[0]
    np.testing.assert_array_equal(e.image, rgb)
    assert e.params["scale"] == 2
    np.testing.assert_allclose(e.to_world[:3, 2], [1, 0, 0], atol=1e-12)


def test_hdr_reader(tmp_path):
    # flat (uncompressed) RGBE: mantissa 128, exponent 129 -> 128 * 2^(129-136) = 1.0
    h, w = 2, 3
    px = np.tile(np.array([128, 64, 0, 129], dtype=np.uint8), (h, w, 1))
    (tmp_path / "a.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 3\n" + px.tobytes())
    np.testing.assert_allclose(read_hdr(tmp_path / "a.hdr"), np.tile([1.0, 0.5, 0.0], (h, w, 1)))


def test_checkerboard():
    t = scene('<texture type="checkerboard" id="c"/>').textures["c"]
    np.testing.assert_allclose(t.params["color0"], [0.4] * 3, rtol=1e-6)
    np.testing.assert_allclose(t.params["color1"], [0.2] * 3, rtol=1e-6)


# ------------------------------------------------------------------ shapes
def test_rectangle_geometry():
    sh = shape_world('<scale x="2" y="3"/><translate z="1"/>')
    np.testing.assert_allclose(sh.vertices, [[-2, -3, 1], [2, -3, 1], [-2, 3, 1], [2, 3, 1]])
    v = sh.vertices[sh.faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (n[:, 2] > 0).all()  # faces +z like Mitsuba
    np.testing.assert_allclose(sh.normals, [[0, 0, 1]] * 4)
    np.testing.assert_allclose(sh.uvs, [[0, 0], [1, 0], [0, 1], [1, 1]])
    assert sh.vertices.dtype == np.float32 and sh.faces.dtype == np.int32


def test_cube_and_disk_geometry():
    cube = scene('<shape type="cube"/>').shapes[0]
    assert cube.vertices.shape == (24, 3) and cube.faces.shape == (12, 3)
    np.testing.assert_allclose(np.abs(cube.vertices), 1)
    v = cube.vertices[cube.faces].astype(np.float64)
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert ((n * v.mean(axis=1)).sum(axis=1) > 0).all()  # outward
    disk = scene('<shape type="disk"><boolean name="flip_normals" value="true"/></shape>').shapes[0]
    assert disk.flip_normals
    np.testing.assert_allclose(np.linalg.norm(disk.vertices[1:], axis=1), 1, atol=1e-6)
    v = disk.vertices[disk.faces].astype(np.float64)
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2] > 0).all()


def test_sphere_center_radius_and_to_world():
    a = scene('<shape type="sphere"><point name="center" x="1" y="2" z="3"/><float name="radius" value="0.5"/>'
              '</shape>').shapes[0]
    assert a.kind == "sphere" and a.radius == 0.5
    np.testing.assert_allclose(a.center, [1, 2, 3])
    b = shape_world('<scale value="2"/><rotate y="1" angle="30"/><translate x="1"/>', "sphere")
    assert b.radius == pytest.approx(2) and b.vertices is None
    np.testing.assert_allclose(b.center, [1, 0, 0])


def test_obj_and_ply(tmp_path):
    import trimesh

    (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 0.25\n"
                                    "vn 0 0 1\nf 1/1/1 2/2/1 3/3/1\n")
    sc = scene('<shape type="obj"><string name="filename" value="m.obj"/>'
               '<transform name="to_world"><scale x="2"/></transform></shape>'
               '<shape type="obj"><string name="filename" value="m.obj"/>'
               '<boolean name="flip_tex_coords" value="false"/>'
               '<boolean name="face_normals" value="true"/></shape>', tmp_path)
    a, b = sc.shapes
    np.testing.assert_allclose(a.vertices, [[0, 0, 0], [2, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(a.normals, [[0, 0, 1]] * 3)
    np.testing.assert_allclose(a.uvs[:, 1], [1, 1, 0.75])  # Mitsuba flips OBJ v by default
    np.testing.assert_allclose(b.uvs[:, 1], [0, 0, 0.25])
    assert b.face_normals
    q = scene('<shape type="obj"><string name="filename" value="q.obj"/></shape>', tmp_path) if (
        tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf -4 -3 -2 -1\n") else None
    np.testing.assert_array_equal(q.shapes[0].faces, [[0, 1, 2], [0, 2, 3]])  # fan, negative indices
    trimesh.creation.box().export(tmp_path / "b.ply")
    p = scene('<shape type="ply"><string name="filename" value="b.ply"/></shape>', tmp_path).shapes[0]
    assert p.faces.shape == (12, 3)
    # no normals in the file: Mitsuba's angle-weighted smooth normals (cube corners -> diagonals)
    np.testing.assert_allclose(p.normals, np.sign(p.vertices) / math.sqrt(3), atol=1e-6)
    assert b.normals is None  # face_normals


def test_allow_outside(tmp_path):
    (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (tmp_path / "sub").mkdir()
    body = '<shape type="obj"><string name="filename" value="../m.obj"/></shape>'
    with pytest.raises(SceneError, match="leaves the scene folder"):
        scene(body, tmp_path / "sub")
    assert scene(body, tmp_path / "sub", allow_outside=True).shapes[0].faces.shape == (1, 3)


# ------------------------------------------------------------------ emitters
def test_emitters():
    sc = scene('<emitter type="point"><rgb name="intensity" value="1 2 3"/>'
               '<point name="position" value="1 2 3"/></emitter>'
               '<emitter type="point"><transform name="to_world"><translate x="4"/></transform></emitter>'
               '<emitter type="spot"><transform name="to_world"><lookat origin="0 5 0" target="0 0 0" up="0 0 1"/>'
               '</transform></emitter>'
               '<emitter type="constant"><rgb name="radiance" value="0.5"/></emitter>'
               '<emitter type="directional"><vector name="direction" x="0" y="-2" z="0"/></emitter>'
               '<shape type="rectangle"><emitter type="area"/></shape>')
    p0, p1, spot, const, dirl, area = sc.emitters
    np.testing.assert_allclose(p0.params["position"], [1, 2, 3])
    np.testing.assert_allclose(p1.params["position"], [4, 0, 0])
    assert spot.params["cutoff_angle"] == 20 and spot.params["beam_width"] == 15
    np.testing.assert_allclose(spot.to_world[:3, 2], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(const.params["radiance"], [0.5] * 3)
    np.testing.assert_allclose(dirl.params["direction"], [0, -1, 0], atol=1e-7)
    np.testing.assert_allclose(area.params["radiance"], [1, 1, 1])
    assert sc.shapes[0].emitter is area


# ------------------------------------------------------------------ sensor, film, integrator
def test_sensor_fov_axes():
    def fov_x(axis, w=200, h=100, fov=40):
        return scene(f'<sensor type="perspective"><float name="fov" value="{fov}"/>'
                     f'<string name="fov_axis" value="{axis}"/>'
                     f'<film type="hdrfilm"><integer name="width" value="{w}"/><integer name="height" value="{h}"/>'
                     '</film></sensor>').sensor.fov_x
    t = math.tan(math.radians(20))
    assert fov_x("x") == 40
    assert fov_x("y") == pytest.approx(math.degrees(2 * math.atan(t * 2)))
    assert fov_x("smaller") == pytest.approx(fov_x("y")) and fov_x("larger") == 40
    assert fov_x("smaller", 100, 200) == 40
    assert fov_x("diagonal") == pytest.approx(math.degrees(2 * math.atan(t * 2 / math.sqrt(5))))


def test_camera_frame_and_rays():
    sc = scene('<sensor type="perspective"><float name="fov" value="90"/><float name="focus_distance" value="9"/>'
               '<transform name="to_world">'
               '<lookat origin="0 0 5" target="0 0 0" up="0 1 0"/></transform>'
               '<film type="hdrfilm"><integer name="width" value="40"/><integer name="height" value="20"/>'
               '</film></sensor>')
    m, fx, fy = camera_frame(sc.sensor)
    assert fx == 90 and fy == pytest.approx(math.degrees(2 * math.atan(0.5)))
    o, d = camera_rays(sc.sensor, np.array([[0.5, 0.5], [0.0, 0.5], [1.0, 0.0]]))
    np.testing.assert_allclose(o, [[0, 0, 5]] * 3)
    np.testing.assert_allclose(d[0], [0, 0, -1], atol=1e-12)
    # pixel column 0 sees camera +x = world -x here (Mitsuba's camera x points left)
    np.testing.assert_allclose(d[1], np.array([-1, 0, -1]) / math.sqrt(2), atol=1e-12)
    np.testing.assert_allclose(d[2], np.array([1, 0.5, -1]) / 1.5, atol=1e-12)


def test_film_sampler_integrators():
    sc = scene('<integrator type="aov"><string name="aovs" value="dd.y:depth,nn:sh_normal"/>'
               '<integrator type="path"><integer name="max_depth" value="3"/></integrator></integrator>'
               '<sensor type="perspective"><film type="hdrfilm"><rfilter type="gaussian">'
               '<float name="stddev" value="0.3"/>'
               '</rfilter><string name="pixel_format" value="rgba"/></film>'
               '<sampler type="independent"><integer name="seed" value="7"/></sampler></sensor>')
    assert sc.integrator.type == "aov" and sc.integrator.nested[0].params["max_depth"] == 3
    assert (sc.film.width, sc.film.height, sc.film.rfilter.stddev, sc.film.pixel_format) == (768, 576, 0.3, "rgba")
    assert (sc.sampler.sample_count, sc.sampler.seed) == (4, 7)
    d = scene('').integrator
    assert d.params == {"max_depth": -1, "rr_depth": 5, "hide_emitters": False}
    d = scene('<integrator type="direct"><integer name="shading_samples" value="2"/></integrator>').integrator
    assert d.params["emitter_samples"] == 2 and d.params["bsdf_samples"] == 2


def test_focal_length_default():
    s = scene('<sensor type="perspective"/>').sensor
    assert s.fov_axis == "diagonal"
    assert s.fov == pytest.approx(math.degrees(2 * math.atan(math.hypot(36, 24) / 100)))


# ------------------------------------------------------------------ bundled scenes
def test_bundled_scenes_load():
    cbox = load_scene(ROOT / "scenes/cbox/cbox.xml")
    assert len(cbox.shapes) == 8 and [e.type for e in cbox.emitters] == ["area"]
    assert cbox.film.width == 256 and cbox.sampler.sample_count == 64
    light = cbox.shapes[0]
    v = light.vertices[light.faces].astype(np.float64)
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 1] < 0).all()  # light faces down
    sph = load_scene(ROOT / "scenes/spheres/spheres.xml", params={"spp": "8"})
    assert sph.sampler.sample_count == 8
    assert [s.kind for s in sph.shapes] == ["mesh", "sphere", "sphere", "sphere"]
    assert sph.emitters[0].type == "envmap" and sph.emitters[0].image.shape == (32, 64, 3)


def test_mitsuba_leniencies():
    """Forms Mitsuba accepts: single-value point/translate, upper-case fov_axis/distribution/IOR names,
    nested twosided, integer for a float, tent filter."""
    sc = scene('<emitter type="point"><point name="position" value="2"/></emitter>'
               '<shape type="cube"><transform name="to_world"><translate value="3"/></transform></shape>'
               '<bsdf type="roughconductor" id="g"><string name="distribution" value="GGX"/></bsdf>'
               '<bsdf type="dielectric" id="d"><string name="int_ior" value="BK7"/></bsdf>'
               '<bsdf type="twosided" id="t"><bsdf type="twosided"><bsdf type="diffuse"/></bsdf></bsdf>'
               '<shape type="sphere"><integer name="radius" value="2"/></shape>'
               '<sensor type="perspective"><integer name="fov" value="40"/><string name="fov_axis" value="X"/>'
               '<film type="hdrfilm"><rfilter type="tent"/></film></sensor>')
    np.testing.assert_allclose(sc.emitters[0].params["position"], [2, 2, 2])
    np.testing.assert_allclose(sc.shapes[0].to_world[:3, 3], [3, 3, 3])
    assert sc.bsdfs["g"].params["distribution"] == "ggx"
    assert sc.bsdfs["d"].params["int_ior"] == pytest.approx(1.5046)
    assert sc.shapes[1].radius == 2
    assert sc.sensor.fov_axis == "x" and sc.film.rfilter.type == "tent" and sc.film.rfilter.radius == 1.0


def test_scene_geometry_feeds_the_bvh():
    from render.scene import scene_geometry

    sc = load_scene(ROOT / "scenes/spheres/spheres.xml")
    g = scene_geometry(sc)
    assert g.vertices.shape == (4, 3) and g.faces.shape == (2, 3) and g.spheres.shape == (3, 4)
    np.testing.assert_array_equal(g.prim_shape, [0, 0, 1, 2, 3])
    np.testing.assert_allclose(g.spheres[2], [1.6, 0.6, 0, 0.6], rtol=1e-6)
    cbox = scene_geometry(load_scene(ROOT / "scenes/cbox/cbox.xml"))
    assert cbox.faces.max() == len(cbox.vertices) - 1 and len(cbox.prim_shape) == 6 * 2 + 2 * 12
    assert cbox.has_normals.all() and cbox.has_uvs.all()

