"""Malformed-dataset corpus: each broken dataset -> exit 2, one line naming the file (and frame), no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from render.cli import main

from .helpers import make_monosdf, make_nerfstudio, write_png


def _npz_edit(folder: Path, **changes):
    with np.load(folder / "cameras.npz") as z:
        mats = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            mats.pop(k)
        else:
            mats[k] = v
    np.savez(folder / "cameras.npz", **mats)


def _json_edit(folder: Path, edit):
    meta = json.loads((folder / "transforms.json").read_text())
    edit(meta)
    (folder / "transforms.json").write_text(json.dumps(meta))


def _bad_k(f):
    p = np.load(f / "cameras.npz")["world_mat_1"].copy()
    p[0, :] = 0.0  # the fx row vanishes: K R is singular
    _npz_edit(f, world_mat_1=p)


def _nan_pose(f):
    p = np.load(f / "cameras.npz")["world_mat_2"].copy()
    p[1, 3] = np.nan
    _npz_edit(f, world_mat_2=p)


def _non_similarity(f):
    s = np.diag([1.0, 2.0, 1.0, 1.0])
    _npz_edit(f, **{f"scale_mat_{i}": s for i in range(3)})


MONOSDF_CASES = {
    "missing_image": (lambda f: (f / "000001_rgb.png").unlink(), "cameras.npz", "3 world_mat_i but 2"),
    "extra_image": (lambda f: write_png(f / "000003_rgb.png", np.zeros((12, 16, 3))), "cameras.npz", "4 *_rgb.png"),
    "matrix_shape": (lambda f: _npz_edit(f, world_mat_1=np.eye(3)), "world_mat_1", "3x4 or 4x4"),
    "nan_pose": (_nan_pose, "world_mat_2", "finite"),
    "singular_k": (_bad_k, "world_mat_1", "singular"),
    "gap_in_cameras": (lambda f: _npz_edit(f, world_mat_1=None, world_mat_3=np.eye(4)), "world_mat_1", "missing"),
    "scale_mats_differ": (lambda f: _npz_edit(f, scale_mat_2=np.eye(4)), "scale_mat_2", "same 4x4"),
    "scale_not_similarity": (_non_similarity, "scale_mat_0", "similarity"),
    "depth_shape": (lambda f: np.save(f / "000001_depth.npy", np.zeros((6, 8), np.float32)), "frame 1 (000001)",
                    "expected shape (12, 16)"),
    "depth_nan": (lambda f: np.save(f / "000000_depth.npy", np.full((12, 16), np.nan, np.float32)), "frame 0",
                  "finite"),
    "normal_shape": (lambda f: np.save(f / "000002_normal.npy", np.zeros((12, 16), np.float32)), "frame 2",
                     "expected shape (3, 12, 16)"),
    "normal_range": (lambda f: np.save(f / "000002_normal.npy", np.full((3, 12, 16), -1.0, np.float32)), "frame 2",
                     "[0, 1]"),
    "mask_shape": (lambda f: np.save(f / "000000_mask.npy", np.ones((12, 15), bool)), "frame 0", "mask"),
    "prior_only_some": (lambda f: (f / "000001_depth.npy").unlink(), "frame 1", "no depth"),
    "not_npz": (lambda f: (f / "cameras.npz").write_bytes(b"this is not a zip"), "cameras.npz", "cannot read"),
    "corrupt_png": (lambda f: (f / "000002_rgb.png").write_bytes(b"\x89PNG broken"), "frame 2", "cannot read image"),
    "image_size_differs": (lambda f: write_png(f / "000001_rgb.png", np.zeros((10, 16, 3))), "frame 1", "16x10"),
    "depth_not_npy": (lambda f: (f / "000000_depth.npy").write_text("1 2 3"), "frame 0", "cannot read"),
}


def _nan_transform(meta):
    meta["frames"][1]["transform_matrix"][0][3] = float("nan")


def _escape(meta):
    meta["frames"][0]["file_path"] = "../outside.png"


def _mono_depth_some(meta):
    meta["frames"][0]["mono_depth_path"] = "d.npy"


NERFSTUDIO_CASES = {
    "not_json": (lambda f: (f / "transforms.json").write_text("{frames: oops"), "transforms.json", "not valid JSON"),
    "missing_fl_x": (lambda f: _json_edit(f, lambda m: m.pop("fl_x")), "frame 0", "missing fl_x"),
    "fl_x_text": (lambda f: _json_edit(f, lambda m: m.update(fl_x="twenty")), "fl_x", "expected a number"),
    "unknown_camera_model": (lambda f: _json_edit(f, lambda m: m.update(camera_model="EQUIRECTANGULAR")),
                             "transforms.json", "camera_model 'EQUIRECTANGULAR'"),
    "escaping_file_path": (lambda f: _json_edit(f, _escape), "outside", "outside the dataset folder"),
    "empty_frames": (lambda f: _json_edit(f, lambda m: m.update(frames=[])), "transforms.json", "non-empty 'frames'"),
    "nan_transform": (lambda f: _json_edit(f, _nan_transform), "frame 1", "finite"),
    "transform_shape": (lambda f: _json_edit(f, lambda m: m["frames"][2].update(transform_matrix=[[1, 0], [0, 1]])),
                        "frame 2", "4x4"),
    "transform_not_rigid": (lambda f: _json_edit(f, lambda m: m["frames"][0].update(
        transform_matrix=(np.diag([2.0, 2.0, 2.0, 1.0])).tolist())), "frame 0", "rigid"),
    "size_mismatch": (lambda f: _json_edit(f, lambda m: m.update(w=20)), "frame 0", "expected w x h = 20x12"),
    "missing_image": (lambda f: (f / "images" / "frame_00001.png").unlink(), "frame 1", "does not exist"),
    "missing_file_path": (lambda f: _json_edit(f, lambda m: m["frames"][1].pop("file_path")), "frames[1]",
                          "missing file_path"),
    "mono_depth_some_frames": (lambda f: (np.save(f / "d.npy", np.ones((12, 16), np.float32)),
                                          _json_edit(f, _mono_depth_some)), "frame 1", "no mono_depth_path"),
    "mask_shape": (lambda f: (np.save(f / "m.npy", np.ones((3, 3), bool)),
                              _json_edit(f, lambda m: [fr.update(mask_path="m.npy") for fr in m["frames"]])),
                   "frame 0", "mask"),
    "frames_not_list": (lambda f: _json_edit(f, lambda m: m.update(frames={"a": 1})), "transforms.json", "'frames'"),
    "applied_transform_shape": (lambda f: _json_edit(f, lambda m: m.update(applied_transform=[[1, 0, 0]])),
                                "applied_transform", "3x4"),
}


def _check(capsys, target: Path, name_part: str, what: str):
    rc = main(["inspect-dataset", str(target)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    assert name_part in err and what in err, err


@pytest.mark.parametrize("case", sorted(MONOSDF_CASES))
def test_malformed_monosdf(tmp_path, capsys, case):
    make_monosdf(tmp_path, n=3)
    assert main(["inspect-dataset", str(tmp_path)]) == 0
    capsys.readouterr()
    breaker, name_part, what = MONOSDF_CASES[case]
    breaker(tmp_path)
    _check(capsys, tmp_path, name_part, what)


@pytest.mark.parametrize("case", sorted(NERFSTUDIO_CASES))
def test_malformed_nerfstudio(tmp_path, capsys, case):
    make_nerfstudio(tmp_path, n=3)
    assert main(["inspect-dataset", str(tmp_path)]) == 0
    capsys.readouterr()
    breaker, name_part, what = NERFSTUDIO_CASES[case]
    breaker(tmp_path)
    _check(capsys, tmp_path, name_part, what)


def test_corpus_is_large_enough():
    assert len(MONOSDF_CASES) + len(NERFSTUDIO_CASES) >= 15


def test_malformed_dataset_from_a_real_process(tmp_path):
    make_nerfstudio(tmp_path, n=2)
    (tmp_path / "transforms.json").write_text("[1, 2")
    r = subprocess.run([sys.executable, "-m", "render.cli", "inspect-dataset", str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "transforms.json: not valid JSON" in r.stderr
