"""`radiant sweep` on a local Ray cluster: a 2-run grid on a tiny dataset yields both results; re-running reads
finished runs back and resumes unfinished ones from their checkpoints."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from render.cluster.sweep import expand, parse_grid, plan_runs, run_name
from render.errors import UserError
from tests.recon.helpers import make_monosdf

pytest.importorskip("ray", reason="Ray (the [cluster] extra) is not installed")


def radiant(*args):
    proc = subprocess.run([sys.executable, "-m", "render.cli", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweepdata")
    _, _, scale_mat = make_monosdf(folder, n=4, w=16, h=12)
    import trimesh

    gt = trimesh.creation.icosphere(subdivisions=3, radius=0.4 * scale_mat[0, 0])
    gt.apply_translation(scale_mat[:3, 3])
    gt.export(folder / "gt.ply")
    return folder


def test_two_run_sweep_and_resume(tmp_path, dataset):
    out = tmp_path / "sweep"
    args = ["sweep", str(dataset), "--out", str(out), "--grid", "uncertainty_sampling=true,false", "--iters", "3",
            "--set", "mesh_resolution=24", "--set", "report_views=1", "--set", "grid_resolution=16",
            "--eval-points", "3000", "--cluster", "local:2"]
    radiant(*args)
    rows = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in rows] == ["uncertainty_sampling=True", "uncertainty_sampling=False"]
    for r in rows:
        assert r["steps"] == 3 and not r["resumed"]
        assert (out / "runs" / r["name"] / "mesh.ply").is_file()
    assert any(k.startswith(("f", "F")) for k in rows[0])  # evaluated against gt.ply
    assert (out / "index.html").is_file() and (out / "results.csv").is_file()
    # Re-invoked: the finished run is read back as it is; the unfinished one resumes from its checkpoint.
    done = out / "runs" / rows[0]["name"] / "sweep_result.json"
    stamp = done.stat().st_mtime_ns
    (out / "runs" / rows[1]["name"] / "sweep_result.json").unlink()
    radiant(*args)
    again = json.loads((out / "results.json").read_text())
    assert done.stat().st_mtime_ns == stamp
    assert again[1]["resumed"] is True and again[0] == rows[0]


def test_grid_parsing():
    grid = parse_grid(["uncertainty=true,false", "uniform_ratio=0.1,0.3"])
    assert grid == [("uncertainty", [True, False]), ("uniform_ratio", [0.1, 0.3])]
    runs = expand(grid)
    assert len(runs) == 4 and runs[1] == {"uncertainty": True, "uniform_ratio": 0.3}
    assert run_name(runs[1]) == "uncertainty=True,uniform_ratio=0.3"
    for bad in (["x"], ["a="], ["a=1,,2"], ["a=1", "a=2"]):
        with pytest.raises(UserError, match="--grid"):
            parse_grid(bad)


def test_unknown_key_fails_before_anything_runs(tmp_path):
    with pytest.raises(UserError, match="unknown config key 'no_such_key'"):
        plan_runs(tmp_path, tmp_path / "out", ["no_such_key=1,2"], {"iters": 3, "minutes": None})
    assert not (tmp_path / "out").exists()
