"""`radiant view --screenshot`: renders the window headless and writes a non-blank PNG; flags fail as one line;
and once for real, an X11 window under Xvfb."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from render.cli import main

ROOT = Path(__file__).resolve().parents[2]
CBOX = str(ROOT / "scenes" / "cbox" / "cbox.xml")


def assert_not_blank(png: Path):
    img = iio.imread(png)
    assert img.ndim == 3 and img.shape[0] >= 32 and img.shape[1] >= 32
    assert img.std() > 10, "a blank screenshot"
    return img


def test_screenshot_writes_a_window_png(tmp_path):
    out = tmp_path / "shot.png"
    assert main(["view", CBOX, "-D", "res=48", "--spp", "2", "--screenshot", str(out)]) == 0
    img = assert_not_blank(out)
    # The Cornell box's red left wall is in the picture (the window, not just the controls).
    red = (img[..., 0].astype(int) - img[..., 1] > 60) & (img[..., 0] > 100)
    assert red.sum() > 50
    # No overwrite without --force, and the file is untouched.
    before = out.read_bytes()
    assert main(["view", CBOX, "-D", "res=48", "--spp", "1", "--screenshot", str(out)]) == 2
    assert out.read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--screenshot", "{tmp}/a.jpg"], "expected a .png file"),
    (["--spp", "0"], "--spp: expected a positive value"),
    (["--device", "tpu"], "--device: expected cpu or cuda"),
])
def test_bad_flags_one_line_exit_2(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["view", CBOX, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not list(tmp_path.iterdir())


def test_screenshot_of_a_bad_scene_exits_2_with_one_line(tmp_path, capsys):
    out = tmp_path / "shot.png"
    assert main(["view", str(tmp_path / "missing.xml"), "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.xml" in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_without_pyside6_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PySide6", None)  # import PySide6 -> ImportError
    assert main(["view", CBOX]) == 2
    assert capsys.readouterr().err.strip() == "error: radiant view needs the viewer extra: pip install radiant[viewer]"


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed (make sysdeps-xvfb, as root)")
def test_real_x11_window_under_xvfb(tmp_path):
    out = tmp_path / "x11.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-m", "render.cli", "view",
                        CBOX, "-D", "res=48", "--spp", "2", "--screenshot", str(out)],
                       env=env, capture_output=True, text=True, timeout=300)
    log = r.stderr + r.stdout
    if r.returncode != 0 and "could not connect to display" in log:
        pytest.skip("Xvfb did not start here")
    if r.returncode != 0 and "no Qt platform plugin could be initialized" in log:
        pytest.skip("Qt's xcb plugin lacks its X libraries (make sysdeps-xvfb, as root)")
    assert r.returncode == 0, r.stderr[-2000:]
    assert_not_blank(out)
