"""make-dataset: both formats agree, camera conventions match the renderer, priors behave like mono priors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from render.cli import main
from render.recon.dataset import load_dataset
from render.recon.make_dataset import Clearance, Recipe, sample_views, scene_up, simulate_priors

ROOT = Path(__file__).resolve().parents[2]
ROOM = ROOT / "scenes" / "room" / "room.xml"
OBJECT = ROOT / "scenes" / "object" / "object.xml"


@pytest.fixture(scope="module")
def room_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("room") / "data"
    assert main(["make-dataset", str(ROOM), "--views", "4", "--width", "64", "--height", "48", "--spp", "2",
                 "--priors", "gt", "--out", str(out)]) == 0
    return out


def test_both_formats_agree(room_data):
    a, b = load_dataset(room_data), load_dataset(room_data / "transforms.json")
    assert a.source.name == "cameras.npz" and b.source.name == "transforms.json"
    assert a.num_images == b.num_images == 4 and (a.height, a.width) == (48, 64)
    torch.testing.assert_close(a.images, b.images)
    torch.testing.assert_close(a.intrinsics, b.intrinsics)
    torch.testing.assert_close(a.depths, b.depths)
    torch.testing.assert_close(a.normals, b.normals)
    torch.testing.assert_close(a.normalization, b.normalization)
    idx = torch.randint(0, 4, (200,))
    xy = torch.rand(200, 2) * torch.tensor([64.0, 48.0])
    (oa, da), (ob, db) = a.rays(idx, xy), b.rays(idx, xy)
    torch.testing.assert_close(oa, ob, atol=1e-5, rtol=0)
    torch.testing.assert_close(da, db, atol=1e-5, rtol=0)
    # the scene lies in the unit sphere and the normalization inverts exactly
    gt = trimesh.load(a.gt_mesh, process=False)
    v = torch.from_numpy(np.asarray(gt.vertices))
    assert a.to_normalized(v).norm(dim=-1).max() <= 1.0
    torch.testing.assert_close(a.to_world(a.to_normalized(v)), v, atol=1e-12, rtol=0)
    assert json.loads((room_data / "recipe.json").read_text())["views"] == 4
    thin = trimesh.load(room_data / "gt_thin.ply", process=False)   # the 8 legs, 2 posts of table and chair
    assert len(thin.faces) == 10 * 12 and thin.bounds[1][1] < 1.0
    # gt_objects.ply: everything but the six walls/floor/ceiling (and the emitting lights): furniture, ball, books
    objects = trimesh.load(room_data / "gt_objects.ply", process=False)
    assert len(objects.faces) == len(gt.faces) - 6 * 2 - 2 * 2
    assert (np.ptp(objects.bounds, 0)[[0, 2]] < np.ptp(gt.bounds, 0)[[0, 2]] - 0.5).all()  # no wall, floor


def test_sdfstudio_meta_data_matches_our_readers(room_data):
    """meta_data.json read as nerfstudio's sdfstudio dataparser + SDFDataset do (written out here, independently):
    OpenCV camtoworld in the normalized frame, 4x4 intrinsics, worldtogt, mono depth H x W, normals 3 x H x W in
    [0,1] in the camera frame, rotated to world by camtoworld."""
    meta = json.loads((room_data / "meta_data.json").read_text())
    ds = load_dataset(room_data)
    assert meta["has_mono_prior"] and (meta["height"], meta["width"]) == (48, 64) and len(meta["frames"]) == 4
    np.testing.assert_allclose(np.array(meta["worldtogt"]), ds.normalization.numpy(), atol=1e-12)
    for i, frame in enumerate(meta["frames"]):
        c2w = np.array(frame["camtoworld"])
        np.testing.assert_allclose(c2w, ds.cam_to_world[i].double().numpy(), atol=1e-5)
        np.testing.assert_allclose(np.array(frame["intrinsics"])[:3, :3], ds.intrinsics[i].numpy(), rtol=1e-6, atol=1e-6)
        assert (room_data / frame["rgb_path"]).is_file()
        depth = np.load(room_data / frame["mono_depth_path"])
        np.testing.assert_allclose(depth, ds.depths[i].numpy(), rtol=1e-6)
        normal = np.load(room_data / frame["mono_normal_path"]) * 2 - 1                # 3 x H x W
        n_world = (c2w[:3, :3] @ normal.reshape(3, -1)).T.reshape(48, 64, 3)
        ours = ds.normals[i].double().numpy() @ c2w[:3, :3].T
        np.testing.assert_allclose(n_world, ours, atol=1e-5)


def test_gt_depth_and_normals_land_on_the_gt_mesh(room_data):
    ds = load_dataset(room_data)
    gt = trimesh.load(ds.gt_mesh, process=False)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 4, (60,), generator=g)
    px = torch.stack([torch.randint(0, 64, (60,), generator=g), torch.randint(0, 48, (60,), generator=g)], 1)
    o, d = ds.rays(idx, px.float() + 0.5)
    z = ds.depths[idx, px[:, 1], px[:, 0]]                       # z-depth, world units (gt priors)
    fwd = ds.cam_to_world[idx, :3, 2]
    t_pred = (z / (d * fwd).sum(1)).double()                    # world distance along the ray
    # shoot the same rays, taken to world units, at gt.ply (icospheres, not the renderer's analytic spheres)
    from render.kernels.bvh import BVH

    bvh = BVH(np.asarray(gt.vertices, np.float32), np.asarray(gt.faces, np.int32))
    o_w = ds.to_world(o.double())
    d_w = d.double() @ ds.normalization[:3, :3].T
    d_w = d_w / d_w.norm(dim=-1, keepdim=True)
    hits = bvh.closest_hit(o_w.float(), d_w.float())
    assert hits.hit.all()
    assert (hits.t.double() - t_pred).abs().max() < 2e-3
    n_cam = ds.normals[idx, px[:, 1], px[:, 0]].double()
    n_world = torch.einsum("nij,nj->ni", ds.cam_to_world[idx, :3, :3].double(), n_cam).numpy()
    cos = np.abs((n_world * gt.face_normals[hits.prim.numpy()]).sum(1))
    assert np.mean(cos > 0.999) > 0.95                            # edges may pick the neighbouring face
    assert ((n_world * d.double().numpy()).sum(1) < 0).all()       # prior normals face the camera


def test_rendered_pixels_match_the_cameras(tmp_path):
    # object scene under a constant sky: the pixels our cameras say see no geometry must show the sky colour,
    # which fails if the renderer's camera were mirrored or shifted against the dataset's
    out = tmp_path / "obj"
    assert main(["make-dataset", str(OBJECT), "--orbit", "--views", "3", "--width", "64", "--height", "48",
                 "--spp", "4", "--out", str(out)]) == 0
    ds = load_dataset(out / "transforms.json")
    assert ds.depths.shape == (3, 48, 64) and ds.normals.shape == (3, 48, 64, 3)   # noisy priors by default
    assert (out / "gt_thin.ply").is_file()
    assert out.stat().st_mode & 0o077   # a plain folder's permissions, not mkdtemp's 0700
    assert ds.masks is not None and (~ds.masks).any() and ds.masks.any()
    # masks are 8-bit single-channel PNGs (nerfstudio's mask_path loader: PIL, 0 = ignore), the same for MonoSDF
    from PIL import Image

    for i, frame in enumerate(json.loads((out / "transforms.json").read_text())["frames"]):
        png = Image.open(out / frame["mask_path"])
        assert png.mode == "L" and set(np.unique(np.array(png))) <= {0, 255}
        np.testing.assert_array_equal(np.array(png) > 0, ds.masks[i].numpy())
    torch.testing.assert_close(load_dataset(out).masks, ds.masks)
    from scipy import ndimage

    sky = np.array([0.8, 0.85, 1.0])
    sky_srgb = np.where(sky <= 0.0031308, 12.92 * sky, 1.055 * sky ** (1 / 2.4) - 0.055)
    for i in range(3):
        m = ds.masks[i].numpy()
        far_sky = ndimage.binary_erosion(~m, iterations=2)
        far_geo = ndimage.binary_erosion(m, iterations=2)
        img = ds.images[i].numpy()
        # (a sub-pixel sliver, e.g. the disk seen edge-on, can be missed by the centre ray but hit by samples)
        assert np.mean(np.abs(img[far_sky] - sky_srgb).max(1) < 0.02) > 0.99
        assert np.mean(np.abs(img[far_geo] - sky_srgb).max(1) > 0.05) > 0.95


def test_views_are_deterministic_and_clear():
    from render.integrators import SceneData
    from render.scene import load_scene

    scene = load_scene(ROOM)
    sd = SceneData(scene, "cpu")
    recipe = Recipe(scene=str(ROOM), views=5, mode="inside", seed=3)
    lo, hi = sd.vertices.min(0).values.double().numpy(), sd.vertices.max(0).values.double().numpy()
    a = sample_views(sd, recipe, np.stack([lo, hi]), scene_up(scene))
    b = sample_views(sd, recipe, np.stack([lo, hi]), scene_up(scene))
    np.testing.assert_array_equal(a.c2w, b.c2w)
    c = sample_views(sd, Recipe(scene=str(ROOM), views=5, mode="inside", seed=4), np.stack([lo, hi]), scene_up(scene))
    assert not np.allclose(a.c2w, c.c2w)
    clear = Clearance(sd)
    for c2w in a.c2w:
        back, escape, nearest = clear.probe(c2w[:3, 3])
        assert back == 0 and escape == 0 and nearest > 0.25
        np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-9)
    # a point inside the table top is inside geometry
    back, _, _ = clear.probe(np.array([0.2, 0.73, -0.9]))
    assert back > 0.5


def test_inside_mode_on_an_open_scene_is_a_user_error(tmp_path, capsys):
    assert main(["make-dataset", str(OBJECT), "--inside", "--views", "2", "--width", "16", "--height", "12",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not place camera 0" in err and "--orbit" in err
    assert not (tmp_path / "x").exists()


def test_existing_output_needs_force(room_data, capsys):
    before = sorted(p.name for p in room_data.iterdir())
    assert main(["make-dataset", str(ROOM), "--views", "1", "--width", "16", "--height", "12", "--spp", "1",
                 "--out", str(room_data)]) == 2
    assert "--force" in capsys.readouterr().err
    assert sorted(p.name for p in room_data.iterdir()) == before


def test_force_replaces_the_folder(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert main(["make-dataset", str(ROOM), "--views", "1", "--width", "16", "--height", "12", "--spp", "1",
                 "--priors", "none", "--out", str(out), "--force"]) == 0
    assert not (out / "stale.txt").exists() and (out / "cameras.npz").exists()
    ds = load_dataset(out)
    assert ds.depths is None and ds.normals is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folders left behind


def test_simulated_priors_are_affine_ambiguous_and_fail_on_thin_parts():
    h, w = 60, 80
    wall_depth = np.tile(2.5 + 0.02 * np.arange(w), (h, 1))  # a slanted wall
    depth = wall_depth.copy()
    depth[:, 40:43] = 1.5                                    # a 3-pixel chair leg in front of it
    normal = np.zeros((h, w, 3))
    normal[..., 2] = -1.0
    normal[:, 40:43] = [-1.0, 0.0, 0.0]
    mask = np.ones((h, w), bool)
    scales = []
    for seed in range(4):
        prior, n_prior, thin = simulate_priors(depth, normal, mask, np.random.default_rng(seed))
        assert thin[:, 40:43].all() and not thin[:, :30].any()
        away = np.zeros((h, w), bool)
        away[5:-5, 5:35] = away[5:-5, 48:-5] = True
        a, b = np.polyfit(depth[away], prior[away], 1)        # the per-image scale and shift
        scales.append(a)
        recovered = (prior - b) / a
        assert np.median(np.abs(recovered[away] - depth[away])) < 0.03   # good away from edges and thin parts
        # the leg is gone from the prior: after undoing scale and shift it reads like the wall behind it
        assert abs(np.median(recovered[:, 41]) - wall_depth[0, 41]) < 0.25   # not the leg's 1.5
        np.testing.assert_allclose(np.linalg.norm(n_prior, axis=-1), 1.0, atol=1e-5)
        assert (n_prior[h // 2, 41] @ np.array([0, 0, -1.0])) > 0.8        # leg normals replaced by the wall's
        assert np.mean(n_prior[10:-10, 10:30] @ np.array([0, 0, -1.0])) > 0.95
    assert max(scales) / min(scales) > 1.2                   # per-image scale/shift differ: affine-ambiguous
