"""The reconstruction tab on a real (tiny) run: the checkpoint's SDF sphere-traced and moved with the mouse, the
dataset cameras as frusta, per-view maps and the sampler's heat map, mesh export in world units, live reload of a
newer checkpoint, a run started from a dataset folder, the worker thread stopped on close, and --screenshot."""

import math
import shutil

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox

from render.cli import main
from render.recon.dataset import load_dataset
from render.recon.run import load_run
from render.recon.trainer import atomic_torch_save, load_checkpoint
from viewer.recon import EDGE_PIECES, frustum_segments, opencv_to_mitsuba, project
from viewer.window import ViewerWindow

TIMEOUT_MS = 60_000
SMALL = {"sdf_resolution": 48, "trace_width": 96}  # a coarser SDF grid and a smaller view: fast on 2 cores


@pytest.fixture
def window(qtbot, monkeypatch):
    w = ViewerWindow(poll_ms=100, recon_options=SMALL)
    w.shown_errors = []  # the error dialog, recorded instead of shown (a modal dialog would block the test)
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: w.shown_errors.append(text))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def open_and_wait(qtbot, w, folder):
    w.open_scene(folder)
    tab = w.recon_tab
    assert w.tabs.currentWidget() is tab
    # (the first frame comes from a coarser grid; the full one follows)
    qtbot.waitUntil(lambda: tab.last_frame is not None and tab.last_frame.fine and tab.last_maps is not None,
                    timeout=TIMEOUT_MS)
    return tab


def wait_frame(qtbot, tab):
    qtbot.waitUntil(lambda: tab.last_frame is not None and tab.last_frame.generation == tab.generation,
                    timeout=TIMEOUT_MS)
    return tab.last_frame


def test_sdf_view_shows_the_sphere_and_follows_a_drag(qtbot, window, recon_run):
    _, run = recon_run
    tab = open_and_wait(qtbot, window, run)
    first = tab.last_frame
    img = first.image
    assert img.shape == (72, 96, 3) and img.std() > 10
    # Home: the first camera's view pulled back to 2 x 1.8 from the centre, looking at the sphere (radius 0.4 to
    # 0.5 after 30 steps): a small disc in the middle, its front at view depth ~3.1, background at the borders.
    assert 0.02 < first.hit_fraction < 0.15
    assert 2.9 < first.depth[36, 48] < 3.35 and np.isinf(first.depth[0, 0])
    assert (img[36, 48] != img[0, 0]).any() and (img[0, 0] == [38, 38, 42]).all()
    view = tab.sdf_view
    home = tab.camera.to_world
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(180, 140))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(180, 140))
    assert not np.allclose(tab.camera.to_world, home)
    moved = wait_frame(qtbot, tab)
    assert moved.generation > first.generation
    assert np.abs(moved.image.astype(int) - img).mean() > 1.0
    window.reset_camera()  # View > Reset camera (R) on the recon tab
    assert np.array_equal(tab.camera.to_world, home)
    assert np.array_equal(wait_frame(qtbot, tab).image, img)  # same view, same checkpoint: the same picture


def test_frusta_one_per_dataset_camera_where_the_cameras_are(qtbot, window, recon_run):
    data, run = recon_run
    ds = load_dataset(data)
    tab = open_and_wait(qtbot, window, run)
    assert len(tab.sdf_view.frusta) == ds.num_images == 8
    tab.camera.zoom(-6)  # back off: every camera in front of the viewer, every edge drawn
    tab.update_frusta()
    assert [len(s) for s, _ in tab.sdf_view.frusta] == [8 * EDGE_PIECES] * 8
    # Seen from camera 0 with its own fov, camera 4's centre lands where camera 0's K projects it.
    c2w, k = ds.cam_to_world.double().numpy(), ds.intrinsics.double().numpy()
    fov_x = math.degrees(2 * math.atan(ds.width / 2 / k[0, 0, 0]))
    segs = frustum_segments(opencv_to_mitsuba(c2w[0]), fov_x, ds.width, ds.height, c2w, k, ds.width, ds.height)
    apex = segs[4][0][0, 0]  # the first edge starts at the camera centre
    cam = np.linalg.inv(c2w[0]) @ np.append(c2w[4, :3, 3], 1.0)
    uv = (k[0] @ (cam[:3] / cam[2]))[:2]
    assert np.allclose(apex, uv, atol=1e-6)
    uv2, z = project(opencv_to_mitsuba(c2w[0]), fov_x, ds.width, ds.height, c2w[4:5, :3, 3])
    assert np.allclose(uv2[0], uv) and z[0] > 0
    # Look through camera 0: its pose and fov; camera 4, straight behind the sphere, is hidden by the surface there.
    tab.look_through(0)
    assert np.array_equal(tab.camera.to_world, opencv_to_mitsuba(c2w[0])) and np.isclose(tab.camera.fov_x, fov_x)
    wait_frame(qtbot, tab)
    behind = [tab.sdf_view.hidden(*f) for f in tab.sdf_view.frusta]
    assert behind[4][0] and not behind[2].any() and not behind[6].any()
    # The checkbox hides them.
    with_frusta = tab.sdf_view.grab().toImage()
    tab.frusta_box.setChecked(False)
    assert tab.sdf_view.grab().toImage() != with_frusta
    tab.frusta_box.setChecked(True)
    assert tab.sdf_view.grab().toImage() == with_frusta


def test_view_selector_switches_maps_and_heat_map_is_the_samplers(qtbot, window, recon_run):
    data, run = recon_run
    ds = load_dataset(data)
    train, test = ds.split()
    tab = open_and_wait(qtbot, window, run)
    assert tab.last_maps.index == train[0] and tab.last_maps.heat is not None  # a training view first
    tab.view_box.setCurrentIndex(test[0])
    qtbot.waitUntil(lambda: tab.last_maps.index == test[0], timeout=TIMEOUT_MS)
    held = tab.last_maps
    assert held.heat is None and "sampling" not in held.images  # never sampled
    assert set(held.images) == {"gt", "rgb", "depth", "normal", "depth_uncertainty", "normal_uncertainty"}
    assert tab.map_labels["sampling"].pixmap().isNull() and "held-out" in tab.map_labels["sampling"].text()
    view = train[2]
    tab.view_box.setCurrentIndex(view)
    qtbot.waitUntil(lambda: tab.last_maps.index == view, timeout=TIMEOUT_MS)
    maps = tab.last_maps
    # The dataset RGB of that view (32 px wide: rendered at full resolution, so exactly the stored pixels).
    assert np.array_equal(maps.images["gt"], (ds.images[view].numpy() * 255 + 0.5).astype(np.uint8))
    assert not np.array_equal(maps.images["gt"], held.images["gt"])
    # The heat map is the checkpoint's sampler: P of that training view's cells, not uniform after 30 steps.
    probs = load_checkpoint(run / "ckpt" / "latest.pt")["sampler"]["probs"][train.index(view)]
    assert np.array_equal(maps.heat, probs.reshape(6, 8).numpy())
    assert np.isclose(maps.heat.sum(), 1.0, atol=1e-5) and maps.heat.std() > 0
    assert maps.images["sampling"].shape == (24, 32, 3)
    assert not tab.map_labels["sampling"].pixmap().isNull()


def test_export_mesh_writes_the_clis_mesh_in_world_units(qtbot, window, recon_run, tmp_path):
    import trimesh

    from render.errors import UserError

    _, run = recon_run
    tab = open_and_wait(qtbot, window, run)
    out = tmp_path / "mine.ply"
    with qtbot.waitSignal(tab.worker.exported, timeout=TIMEOUT_MS):
        tab.export_mesh(out)
    mesh, cli = trimesh.load(out, process=False), trimesh.load(run / "mesh.ply", process=False)
    assert len(mesh.vertices) > 100 and np.allclose(mesh.bounds, cli.bounds, atol=1e-6)
    # World units (world = 2 x normalized here): the vertices halved lie on the SDF's zero set, not as they are.
    _, model, _ = load_run(run)
    v = torch.from_numpy(np.asarray(mesh.vertices)).float()
    cell = 2.0 / 31  # the marching-cubes lattice spacing (mesh_resolution 32)
    assert model.sdf(v / 2).abs().max() < cell and model.sdf(v).abs().mean() > 5 * cell
    with pytest.raises(UserError, match="expected .ply"):
        tab.export_mesh(tmp_path / "mesh.obj")
    (tmp_path / "afile").write_text("")
    tab.export_mesh(tmp_path / "afile" / "x.ply")  # its folder is a file: the one-line error dialog
    qtbot.waitUntil(lambda: len(window.shown_errors) == 1, timeout=TIMEOUT_MS)
    line = window.shown_errors[0]
    assert line.startswith(f"{tmp_path / 'afile' / 'x.ply'}: cannot write the mesh") and "\n" not in line


def test_newer_checkpoint_is_reloaded_live(qtbot, window, recon_run, tmp_path):
    _, run = recon_run
    live = tmp_path / "live"
    shutil.copytree(run, live)
    tab = open_and_wait(qtbot, window, live)
    before = tab.last_frame
    assert tab.info.step == 30
    # A later checkpoint (as a running `radiant reconstruct` writes it, atomically): a smaller sphere.
    state = load_checkpoint(live / "ckpt" / "latest.pt")
    state["step"] = 31
    last = max(k for k in state["model"] if k.startswith("sdf_net.linears.") and k.endswith(".bias"))
    state["model"][last][0] += 0.15  # the SDF output's bias: every distance grows, the surface shrinks
    atomic_torch_save(state, live / "ckpt" / "latest.pt")
    qtbot.waitUntil(lambda: tab.last_frame.step == 31, timeout=TIMEOUT_MS)
    assert tab.info.step == 31 and tab.last_frame.hit_fraction < 0.7 * before.hit_fraction


def test_switching_between_a_run_and_a_dataset(qtbot, window, recon_run):
    data, run = recon_run
    tab = open_and_wait(qtbot, window, run)
    assert not tab.start_panel.isVisibleTo(tab) and tab.export_button.isEnabled()
    window.open_scene(data)
    qtbot.waitUntil(lambda: tab.info.step is None, timeout=TIMEOUT_MS)
    assert tab.run is None and not tab.timer.isActive() and tab.start_panel.isVisibleTo(tab)
    assert not tab.export_button.isEnabled() and tab.plot.rows == []
    window.open_scene(run)
    qtbot.waitUntil(lambda: tab.info.step == 30, timeout=TIMEOUT_MS)
    assert not tab.start_panel.isVisibleTo(tab) and tab.export_button.isEnabled() and tab.plot.rows


def test_close_stops_the_recon_worker(qtbot, recon_run):
    _, run = recon_run
    w = ViewerWindow(recon_options=SMALL)
    qtbot.addWidget(w)
    w.show()
    tab = open_and_wait(qtbot, w, run)
    assert tab.worker.is_running()
    w.close()
    assert tab.worker.is_finished() and not tab.timer.isActive()


def test_dataset_folder_starts_a_reconstruction_and_watches_it(qtbot, window, recon_run, tmp_path, monkeypatch):
    from recon_fixture import TINY_RUN

    data, _ = recon_run
    window.open_scene(data)
    tab = window.recon_tab
    qtbot.waitUntil(lambda: tab.info is not None, timeout=TIMEOUT_MS)
    assert tab.info.step is None and len(tab.sdf_view.frusta) == 8 and tab.start_panel.isVisible()
    assert not tab.export_button.isEnabled()
    qtbot.waitUntil(lambda: tab.last_maps is not None, timeout=TIMEOUT_MS)  # the dataset's image of the view
    ds = load_dataset(data)
    assert list(tab.last_maps.images) == ["gt"] and np.array_equal(
        tab.last_maps.images["gt"], (ds.images[tab.last_maps.index].numpy() * 255 + 0.5).astype(np.uint8))
    # Tiny settings through the --config file the viewer writes, with a checkpoint every ~0.6 s.
    monkeypatch.setattr("viewer.recon.live_config",
                        lambda minutes: {**TINY_RUN, "minutes": minutes, "ckpt_minutes": 0.01})
    out = tmp_path / "run"
    tab.start_reconstruction(out, 5.0)
    assert tab.process is not None
    # Watched while it trains: the first checkpoint's SDF shows, then a later one replaces it.
    qtbot.waitUntil(lambda: tab.last_frame is not None, timeout=120_000)
    first = tab.last_frame.step
    qtbot.waitUntil(lambda: tab.last_frame.step > first, timeout=TIMEOUT_MS)
    assert tab.process is not None and tab.export_button.isEnabled() and len(tab.plot.rows) >= 1
    # Closing the window interrupts the run with a checkpoint (resumable), without an error dialog.
    window.close()
    assert tab.process is None and window.shown_errors == []
    assert load_checkpoint(out / "ckpt" / "latest.pt")["step"] >= tab.last_frame.step
    assert not (out / "mesh.ply").exists()


def test_screenshot_of_a_run_shows_the_sdf_view(recon_run, tmp_path):
    import imageio.v3 as iio

    _, run = recon_run
    out = tmp_path / "recon.png"
    assert main(["view", str(run), "--screenshot", str(out)]) == 0
    img = iio.imread(out)[..., :3].astype(int)
    left = img[:, : img.shape[1] // 2]  # the SDF view's side of the window
    colourful = (left.max(-1) - left.min(-1)) > 60  # normal shading; frusta, controls and background are grey
    assert colourful.sum() > 2000
    # A dataset folder: its cameras (white frusta) over the empty view, and the start panel.
    data, _ = recon_run
    shot = tmp_path / "data.png"
    assert main(["view", str(data), "--screenshot", str(shot)]) == 0
    left = iio.imread(shot)[..., :3].astype(int)[100:700, : img.shape[1] // 2]
    assert ((left.min(-1) > 200) & (left.max(-1) - left.min(-1) < 30)).sum() > 100  # white lines
