"""evaluate: metrics on hand-made meshes with known answers, visibility culling, malformed mesh inputs, CLI."""

import json

import numpy as np
import pytest
import torch
import trimesh

from render.cli import main
from render.recon.dataset import ReconDataset
from render.recon.evaluate import evaluate_meshes, visible_points

from .helpers import look_at_opencv


def plane(z: float = 0.0, half: float = 0.5) -> trimesh.Trimesh:
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def test_identical_meshes_score_one():
    r = evaluate_meshes(plane(), plane())
    assert r.fscore["0.05"] == 1.0 and r.fscore["0.02"] > 0.9999
    assert r.accuracy < 0.01 and r.completeness < 0.01  # sampling noise only: mean spacing 1 cm -> ~5 mm
    assert r.chamfer == pytest.approx((r.accuracy + r.completeness) / 2)


def test_shifted_plane_known_distances():
    r = evaluate_meshes(plane(0.0), plane(0.03), num_points=40_000)
    assert 0.03 <= r.accuracy < 0.0325 and 0.03 <= r.completeness < 0.0325
    assert r.precision["0.05"] == 1.0 and r.recall["0.05"] == 1.0 and r.fscore["0.05"] == 1.0
    assert r.precision["0.02"] == 0.0 and r.recall["0.02"] == 0.0 and r.fscore["0.02"] == 0.0


def test_half_missing_prediction_halves_recall():
    half = trimesh.Trimesh([[-0.5, -0.5, 0], [0, -0.5, 0], [0, 0.5, 0], [-0.5, 0.5, 0]], [[0, 1, 2], [0, 2, 3]])
    r = evaluate_meshes(half, plane(), thresholds=[0.05])
    assert r.precision["0.05"] == 1.0
    assert r.recall["0.05"] == pytest.approx(0.55, abs=0.02)  # the GT half plus the 5 cm band next to it
    assert r.fscore["0.05"] == pytest.approx(2 * 0.55 / 1.55, abs=0.02)


def _one_camera_dataset(eye, target, w=32, h=24, f=20.0) -> ReconDataset:
    k = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=torch.float32)
    c2w = torch.from_numpy(look_at_opencv(eye, target, up=(0, 1, 0))).float()
    return ReconDataset(images=torch.zeros(1, h, w, 3), intrinsics=k[None], cam_to_world=c2w[None], depths=None,
                        normals=None, masks=None, normalization=torch.eye(4, dtype=torch.float64), names=["a"])


def test_culling_drops_what_no_camera_sees():
    wall = plane(0.0, half=0.5)
    hidden = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    hidden.apply_translation((0, 0, -1.0))           # behind the wall, seen by no camera
    outside = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    outside.apply_translation((3.0, 0, 1.0))         # in front of the wall, outside the frustum
    gt = trimesh.util.concatenate([wall, hidden, outside])
    ds = _one_camera_dataset((0, 0, 2.0), (0, 0, 0))
    r_all = evaluate_meshes(wall, gt, thresholds=[0.05])
    r_cull = evaluate_meshes(wall, gt, dataset=ds, thresholds=[0.05])
    assert r_all.recall["0.05"] < 0.8
    assert r_cull.recall["0.05"] > 0.999 and r_cull.fscore["0.05"] > 0.999 and r_cull.culled
    # directly: points on the hidden box are not visible, points on the wall are
    from render.recon.evaluate import world_cameras

    k, c2w = world_cameras(ds)
    pts = np.array([[0.1, 0.1, 0.0], [0.0, 0.0, -0.9], [3.0, 0.0, 1.1]])
    assert visible_points(pts, gt, k, c2w, 32, 24).tolist() == [True, False, False]


def test_culling_uses_the_normalization():
    # the same camera described in a normalized space (world = 2 x + (1, 0, 0)) culls the same points
    ds = _one_camera_dataset((0, 0, 1.0), (0, 0, 0))
    ds.normalization = torch.tensor([[2.0, 0, 0, 1.0], [0, 2.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    wall = plane(0.0, half=0.5)
    wall.apply_translation((1.0, 0, 0))
    from render.recon.evaluate import world_cameras

    k, c2w = world_cameras(ds)
    np.testing.assert_allclose(c2w[0, :3, 3], [1.0, 0.0, 2.0])
    np.testing.assert_allclose(c2w[0, :3, :3] @ c2w[0, :3, :3].T, np.eye(3), atol=1e-6)


def _write(tmp_path, name, mesh):
    p = tmp_path / name
    mesh.export(p)
    return p


BAD_MESHES = {
    "missing": (lambda p: None, "no such file"),
    "garbage": (lambda p: p.write_bytes(b"ply\nformat nonsense\n"), "cannot read"),
    "point_cloud": (lambda p: trimesh.PointCloud(np.random.rand(10, 3)).export(p), "expected a triangle mesh"),
    "nan_vertices": (lambda p: p.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                                            "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                                            "end_header\n0 0 0\nnan 1 0\n0 1 0\n3 0 1 2\n"), "NaN"),
    "zero_area": (lambda p: trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False).export(p),
                  "zero surface area"),
}


@pytest.mark.parametrize("case", sorted(BAD_MESHES))
def test_malformed_mesh_inputs(tmp_path, capsys, case):
    gt = _write(tmp_path, "gt.ply", plane())
    bad = tmp_path / "bad.ply"
    BAD_MESHES[case][0](bad)
    for args in (["evaluate", str(bad), str(gt)], ["evaluate", str(gt), str(bad)]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "bad.ply" in err and BAD_MESHES[case][1] in err, err
        assert ("ground truth" in err) == (args[2] == str(bad))


def test_cli_json_and_force(tmp_path, capsys):
    a = _write(tmp_path, "a.ply", plane(0.0))
    b = _write(tmp_path, "b.ply", plane(0.03))
    out = tmp_path / "m.json"
    assert main(["evaluate", str(a), str(b), "--json", str(out), "--threshold", "0.05", "--points", "20000"]) == 0
    data = json.loads(out.read_text())
    assert data["fscore"] == {"0.05": 1.0} and data["culled"] is False
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] == pytest.approx(data["accuracy"])
    assert main(["evaluate", str(a), str(b), "--json", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate", str(a), str(b), "--threshold", "-1"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_thin_part_recall():
    rod = trimesh.creation.box(extents=(0.03, 0.6, 0.03))
    rod.apply_translation((0.0, 0.3, 0.2))
    gt = trimesh.util.concatenate([plane(), rod])
    without = evaluate_meshes(plane(), gt, thin=rod)
    with_rod = evaluate_meshes(gt, gt, thin=rod)
    assert without.thin_recall["0.05"] < 0.1 and without.thin_completeness > 0.1
    assert with_rod.thin_recall["0.05"] == 1.0 and with_rod.thin_recall["0.02"] > 0.999 and with_rod.thin_points > 1000
    assert evaluate_meshes(gt, gt).thin_recall is None
    # the same for objects (gt_objects.ply: furniture), side by side with thin
    both = evaluate_meshes(plane(), gt, thin=rod, objects=rod)
    assert both.objects_recall == both.thin_recall and both.objects_points == both.thin_points
    assert evaluate_meshes(gt, gt, objects=rod).objects_recall["0.05"] == 1.0
