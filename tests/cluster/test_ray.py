"""Distributed rendering on a local Ray cluster (loopback workers): same image as one process, complete and
correct after a worker is killed mid-render, frames, and the one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from render.cluster.ray_backend import frame_paths, parse_cluster
from render.core.image import read_exr_channels
from render.errors import UserError

ray = pytest.importorskip("ray", reason="Ray (the [cluster] extra) is not installed")

SCENE = "scenes/cbox/cbox.xml"
ARGS = ["--spp", "8", "--seed", "5", "--width", "48", "--height", "40"]


def radiant(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "render.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def rgb(path):
    ch = read_exr_channels(path)
    return np.stack([ch["R"], ch["G"], ch["B"]], -1)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "single.exr"
    radiant("render", SCENE, "--out", str(out), *ARGS, "--integrator", "fused")
    return rgb(out)


def test_cluster_render_equals_single_process(tmp_path, single_process):
    out = tmp_path / "cluster.exr"
    proc = radiant("render", SCENE, "--out", str(out), *ARGS, "--cluster", "local:2", "--tile", "16",
                   "--batch-spp", "3")
    assert "on 2 workers" in proc.stdout
    img = rgb(out)
    assert img.mean() > 0.01
    np.testing.assert_allclose(img, single_process, rtol=1e-5, atol=1e-6)


def test_killed_worker_still_gives_the_full_image(tmp_path, single_process):
    out = tmp_path / "killed.exr"
    radiant("render", SCENE, "--out", str(out), *ARGS, "--cluster", "local:2", "--tile", "16",
            env={"RADIANT_CLUSTER_FAULT_DIR": str(tmp_path)})
    assert (tmp_path / "killed").exists()  # a worker really died mid-task
    np.testing.assert_allclose(rgb(out), single_process, rtol=1e-5, atol=1e-6)


def test_frames_on_the_cluster(tmp_path):
    out = tmp_path / "f_{frame}.png"
    radiant("render", SCENE, "--out", str(out), "--spp", "2", "--frames", "res=24,32", "--cluster", "local:2")
    import imageio.v3 as iio

    shapes = [iio.imread(tmp_path / f"f_{i:04d}.png").shape for i in range(2)]
    assert shapes == [(24, 24, 3), (32, 32, 3)]


def test_without_ray_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from render.cli import main; "
            f"sys.exit(main(['render', '{SCENE}', '--out', '{tmp_path / 'x.exr'}', '--cluster', 'local:2']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'radiant[cluster]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.exr").exists()


@pytest.mark.parametrize("spec", ["local:0", "local:x", "remote", "ray://nohost"])
def test_bad_cluster_spec(spec):
    with pytest.raises(UserError, match="--cluster"):
        parse_cluster(spec)


def test_frame_paths(tmp_path):
    assert frame_paths(tmp_path / "a.exr", 1) == [tmp_path / "a.exr"]
    assert frame_paths(tmp_path / "a.exr", 2) == [tmp_path / "a_0000.exr", tmp_path / "a_0001.exr"]
    assert frame_paths(tmp_path / "a_{frame}.png", 1) == [tmp_path / "a_0000.png"]
