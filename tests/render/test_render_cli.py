"""`radiant render` end to end: outputs, AOV channels, overwrite protection and one-line errors (exit 2)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from render.cli import main
from render.core.image import read_exr_channels

ROOT = Path(__file__).resolve().parents[2]
CBOX = str(ROOT / "scenes" / "cbox" / "cbox.xml")


def test_render_exr_with_aovs_and_png(tmp_path, capsys):
    out = tmp_path / "img.exr"
    assert main(["render", CBOX, "--out", str(out), "--spp", "2", "-D", "res=32", "--aov", "albedo,normal,depth"]) == 0
    ch = read_exr_channels(out)
    assert ch["RGB"].shape == (32, 32, 3) and np.isfinite(ch["RGB"]).all() and ch["RGB"].mean() > 0.05
    for name in ("albedo.R", "normal.X", "depth"):
        assert name in ch, sorted(ch)
    # The back wall is straight ahead at about 4.9 units (camera z = 3.9, wall z = -1).
    assert 4.5 < float(np.median(ch["depth"][12:20, 12:20])) < 5.1
    png = tmp_path / "img.png"
    assert main(["render", CBOX, "--out", str(png), "--spp", "1", "-D", "res=16"]) == 0
    import imageio.v3 as iio

    assert iio.imread(png).shape == (16, 16, 3)


def test_refuses_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "img.png"
    out.write_bytes(b"keep me")
    assert main(["render", CBOX, "--out", str(out), "--spp", "1", "-D", "res=8"]) == 2
    assert out.read_bytes() == b"keep me"
    assert "pass --force" in capsys.readouterr().err
    assert main(["render", CBOX, "--out", str(out), "--spp", "1", "-D", "res=8", "--force"]) == 0
    assert out.read_bytes() != b"keep me"


@pytest.mark.parametrize("args,message", [
    (["--out", "x.jpg"], "unsupported extension '.jpg'"),
    (["--out", "{tmp}/a.exr", "--aov", "bogus"], "unknown AOV 'bogus'"),
    (["--out", "{tmp}/a.exr", "--spp", "0"], "--spp: expected a positive sample count"),
    (["--out", "{tmp}/a.exr", "--width", "-3"], "--width: expected a positive size"),
    (["--out", "{tmp}/a.exr", "-D", "novalue"], "-D novalue: expected name=value"),
    (["--out", "{tmp}/a.exr", "--device", "tpu"], "--device: expected cpu or cuda"),
])
def test_bad_flags_one_line_exit_2(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["render", CBOX, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "no output file may be left behind"


def test_bad_scene_exit_2_no_output(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text('<scene version="3.0.0">\n  <shape type="teapot"/>\n</scene>\n')
    out = tmp_path / "o.exr"
    r = subprocess.run([sys.executable, "-m", "render.cli", "render", str(bad), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{bad}:2:" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_help_and_version():
    r = subprocess.run([sys.executable, "-m", "render.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "render" in r.stdout and "bench" in r.stdout
    r = subprocess.run([sys.executable, "-m", "render.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("radiant ")


def test_render_integrator_option_and_bench_render(tmp_path, capsys):
    import json

    for integ in ("fused", "torch"):
        out = tmp_path / f"{integ}.exr"
        assert main(["render", CBOX, "--out", str(out), "--spp", "1", "-D", "res=16", "--integrator", integ]) == 0
    assert main(["render", CBOX, "--out", str(tmp_path / "x.exr"), "--spp", "1", "--integrator", "nope"]) == 2
    assert main(["bench", "render", "--quick", "--device", "tpu"]) == 2
    assert "--device: expected cpu or cuda" in capsys.readouterr().err
    pytest.importorskip("mitsuba")
    capsys.readouterr()
    out = tmp_path / "render.jsonl"
    assert main(["bench", "render", "--quick", "--scene", "cbox", "--spp", "1", "--torch-spp", "1", "--ref-spp", "2",
                 "--repeats", "1", "--mitsuba-variant", "scalar_rgb", "--out", str(out)]) == 0
    row = json.loads(out.read_text().splitlines()[0])
    assert row["scene"] == "cbox" and row["mitsuba_variant"] == "scalar_rgb"
    for key in ("fused_msamples_s", "torch_msamples_s", "mitsuba_msamples_s", "fused_vs_mitsuba", "relmse_fused",
                "relmse_torch", "relmse_mitsuba"):
        assert row[key] > 0, key
