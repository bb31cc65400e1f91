"""The viewer window under pytest-qt (offscreen): it opens, accumulates in its worker thread, restarts when the
camera moves, switches AOVs, shows scene errors in a dialog and stays usable, and stops its thread on close."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from render.cli import main
from render.errors import UserError
from viewer.window import ViewerWindow
from viewer.worker import MAX_BATCH_SPP

ROOT = Path(__file__).resolve().parents[2]
CBOX = ROOT / "scenes" / "cbox" / "cbox.xml"
TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot):
    w = ViewerWindow(params={"res": "24"})  # a 24x24 Cornell box: a pass takes milliseconds
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    assert w.worker.wait(10_000)


def wait_spp(qtbot, w, spp, aov=None):
    qtbot.waitUntil(lambda: w.last_frame is not None and w.last_frame.generation == w.generation
                    and w.last_frame.aov == aov and not w.last_frame.preview and w.last_frame.spp >= spp,
                    timeout=TIMEOUT_MS)
    return w.last_frame


def test_opens_and_accumulates(qtbot, window):
    window.open_scene(CBOX)
    first = wait_spp(qtbot, window, 1)
    later = wait_spp(qtbot, window, first.spp + 4)
    assert later.spp > first.spp and later.image.shape == (24, 24, 3) and later.image.mean() > 0.05
    text = window.status.text()
    assert "spp" in text and "Msamples/s" in text and "24x24" in text
    assert window.render_tab.view.image is not None


def test_drag_moves_camera_and_restarts_accumulation(qtbot, window):
    window.open_scene(CBOX)
    before = wait_spp(qtbot, window, 2 * MAX_BATCH_SPP + 1)
    home, generation = window.camera.to_world, window.generation
    frames = []
    window.worker.frame.connect(frames.append)
    view = window.render_tab.view
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    qtbot.mouseMove(view, QPoint(40, 20))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(40, 20))
    assert not np.allclose(window.camera.to_world, home)
    assert window.generation > generation
    after = wait_spp(qtbot, window, 1)
    # frames.append gets its own queued call, which may come after the window's slot has already run.
    qtbot.waitUntil(lambda: any(f.generation == window.generation for f in frames), timeout=TIMEOUT_MS)
    first = next(f for f in frames if f.generation == window.generation)
    assert first.spp <= MAX_BATCH_SPP < before.spp, "a moved camera starts a new accumulation (within one batch)"
    assert np.abs(after.image - before.image).mean() > 1e-3
    window.reset_camera()
    assert np.array_equal(window.camera.to_world, home)
    xml = window.copy_camera()
    assert xml == '<lookat origin="0, 0, 3.9" target="0, 0, 0" up="0, 1, 0"/>'
    assert QGuiApplication.clipboard().text() == xml


def test_keys_and_wheel_move_the_camera(qtbot, window):
    window.open_scene(CBOX)
    wait_spp(qtbot, window, 1)
    view = window.render_tab.view
    m0 = window.camera.to_world
    qtbot.keyClick(view, Qt.Key.Key_Left)
    m1 = window.camera.to_world
    assert not np.allclose(m1, m0)
    d = window.camera.distance
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert window.camera.distance < d


def test_aov_switch_changes_the_image(qtbot, window, tmp_path):
    window.open_scene(CBOX)
    color = wait_spp(qtbot, window, 2)
    shown_color = window.display_image(color)
    window.render_tab.aov.setCurrentText("normal")
    normal = wait_spp(qtbot, window, 1, aov="normal")
    assert normal.image.shape == (24, 24, 3)
    # The back wall faces the camera: its normal is +z.
    assert normal.image[7, 12, 2] > 0.9
    assert np.abs(window.display_image(normal).astype(int) - shown_color).mean() > 10
    window.render_tab.aov.setCurrentText("depth")
    depth = wait_spp(qtbot, window, 1, aov="depth")
    assert 4.8 < float(depth.image[7, 12]) < 5.2  # back wall, 4.9 straight ahead
    window.save_image(tmp_path / "depth.exr")
    from render.core.image import read_exr_channels

    assert "depth" in read_exr_channels(tmp_path / "depth.exr")


def test_save_image_exr_linear_png_as_displayed(qtbot, window, tmp_path):
    import imageio.v3 as iio

    from render.core.image import read_exr_channels

    window.open_scene(CBOX)
    wait_spp(qtbot, window, 2)
    window.max_spp = window.last_frame.spp  # hold this frame: no newer one may replace it while we compare
    window.request_render()
    frame = wait_spp(qtbot, window, 1)
    qtbot.waitUntil(lambda: window.worker._idle(), timeout=TIMEOUT_MS)
    frame = window.last_frame
    window.render_tab.exposure.setValue(1.0)
    window.save_image(tmp_path / "img.exr")
    window.save_image(tmp_path / "img.png")
    assert np.allclose(read_exr_channels(tmp_path / "img.exr")["RGB"], frame.image)
    assert np.array_equal(iio.imread(tmp_path / "img.png"), window.display_image(frame))
    with pytest.raises(UserError, match="expected .exr or .png"):
        window.save_image(tmp_path / "img.jpg")


def test_exposure_and_tonemap_change_the_display(qtbot, window):
    window.open_scene(CBOX)
    frame = wait_spp(qtbot, window, 2)
    base = window.display_image(frame).astype(int)
    window.render_tab.exposure.setValue(2.0)
    brighter = window.display_image(frame).astype(int)
    assert brighter.mean() > base.mean() + 5
    window.render_tab.tonemap.setCurrentText("filmic")
    assert np.abs(window.display_image(frame).astype(int) - brighter).mean() > 1


def test_bad_scene_shows_the_cli_message_and_window_stays_usable(qtbot, window, monkeypatch, tmp_path, capsys):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append(text))
    bad = tmp_path / "bad.xml"
    bad.write_text('<scene version="3.0.0"><shape type="teapot"/></scene>')
    assert main(["render", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    cli_line = capsys.readouterr().err.strip().removeprefix("error: ")
    window.open_scene(bad)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=TIMEOUT_MS)
    assert shown[0] == cli_line and "\n" not in shown[0]
    window.open_scene(tmp_path / "missing.xml")
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=TIMEOUT_MS)
    assert "missing.xml" in shown[1]
    window.open_scene(CBOX)  # still usable
    assert wait_spp(qtbot, window, 2).spp >= 2


def test_close_stops_the_worker_thread(qtbot):
    w = ViewerWindow(params={"res": "24"})
    qtbot.addWidget(w)
    w.show()
    w.open_scene(CBOX)
    wait_spp(qtbot, w, 1)
    assert w.worker.isRunning()
    w.close()
    assert w.worker.wait(10_000) and w.worker.isFinished()
