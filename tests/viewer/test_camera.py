"""Orbit camera and <lookat> export: moves keep their invariants; the exported XML loads back to the same camera."""

import numpy as np

from render.scene import load_scene
from render.scene.camera import lookat_xml
from render.scene.transforms import look_at
from viewer.camera import OrbitCamera

HOME = look_at([0, 0, 3.9], [0, 0, 0], [0, 1, 0])


def polar(cam):
    off = cam.origin - cam.target
    return np.degrees(np.arccos(np.dot(off, cam.up) / np.linalg.norm(off)))


def test_home_is_exact_and_target_at_scene_center():
    cam = OrbitCamera(HOME, 40.0, center=np.array([0.0, 0.0, -0.5]))
    assert np.array_equal(cam.to_world, HOME)
    assert np.allclose(cam.target, [0, 0, -0.5]) and np.isclose(cam.distance, 4.4)


def test_orbit_keeps_distance_and_target_and_moves_with_the_mouse():
    cam = OrbitCamera(HOME, 40.0, center=np.zeros(3))
    cam.orbit(50, 0, width=100)  # half a view width: 90 degrees about up
    assert np.isclose(cam.distance, 3.9) and np.allclose(cam.target, 0)
    assert np.allclose(cam.origin, [-3.9, 0, 0], atol=1e-9) or np.allclose(cam.origin, [3.9, 0, 0], atol=1e-9)
    # Drag down: the camera rises above the target (polar angle to up shrinks), clamped off the pole.
    p0 = polar(cam)
    cam.orbit(0, 10, width=100)
    assert np.isclose(polar(cam), p0 - 18.0)
    cam.orbit(0, 1000, width=100)
    assert np.isclose(polar(cam), 2.0)
    m = cam.to_world
    assert np.allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-9)  # still a rigid frame


def test_pan_moves_target_and_origin_together_and_zoom_scales_distance():
    cam = OrbitCamera(HOME, 40.0, center=np.zeros(3))
    cam.pan(10, 0, width=100)
    assert np.allclose(cam.origin - cam.target, [0, 0, 3.9])
    # +x camera is image LEFT (Mitsuba): dragging right moves the camera toward its left.
    assert np.dot(cam.target, HOME[:3, 0]) > 0
    cam.zoom(2)
    assert np.isclose(cam.distance, 3.9 * 0.85 ** 2)
    cam.reset()
    assert np.array_equal(cam.to_world, HOME)


def test_lookat_xml_round_trips_through_the_scene_loader(tmp_path):
    cam = OrbitCamera(HOME, 40.0, center=np.zeros(3))
    cam.orbit(13, -7, width=100)
    cam.pan(3, 5, width=100)
    xml = cam.lookat_xml()
    assert xml.startswith("<lookat origin=") and 'target="' in xml and 'up="' in xml
    scene = tmp_path / "s.xml"
    scene.write_text(f'<scene version="3.0.0"><sensor type="perspective"><float name="fov" value="40"/>'
                     f'<transform name="to_world">{xml}</transform></sensor></scene>')
    loaded = load_scene(scene).sensor.to_world
    assert np.allclose(loaded, cam.to_world, atol=1e-5)
    assert lookat_xml(HOME) == '<lookat origin="0, 0, 3.9" target="0, 0, 2.9" up="0, 1, 0"/>'
