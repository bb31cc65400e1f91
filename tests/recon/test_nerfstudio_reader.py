"""nerfstudio transforms.json reader: OpenGL -> OpenCV, intrinsics, distortion models, priors, normalization."""

import json

import numpy as np
import pytest
import torch

from render.recon.dataset import distort_fisheye, distort_opencv, load_dataset

from .helpers import make_nerfstudio, project_opengl


def _ray_hits(ds, i, uv, x_world, atol=1e-4):
    x_norm = ds.to_normalized(torch.tensor(x_world)).numpy()
    o, d = ds.rays(torch.tensor([i]), torch.tensor(np.asarray(uv)[None], dtype=torch.float32))
    o, d = o[0].double().numpy(), d[0].double().numpy()
    t = (x_norm - o) @ d
    assert t > 0
    np.testing.assert_allclose(o + t * d, x_norm, atol=atol)


def test_pinhole_projects_known_point(tmp_path):
    meta, c2ws = make_nerfstudio(tmp_path, n=3)
    ds = load_dataset(tmp_path)
    assert ds.camera_model == "PINHOLE" and ds.num_images == 3 and (ds.height, ds.width) == (12, 16)
    assert ds.names == ["frame_00000", "frame_00001", "frame_00002"]
    x = np.array([0.6, -0.9, 2.1])
    for i, c2w in enumerate(c2ws):
        uv = project_opengl(20.0, 21.0, 8.3, 5.8, c2w, x)
        _ray_hits(ds, i, uv, x)
    # camera z axis (OpenCV forward) is minus the OpenGL z axis
    z_world = ds.cam_to_world[0, :3, 2].double() @ ds.normalization[:3, :3].T
    np.testing.assert_allclose((z_world / z_world.norm()).numpy(), -c2ws[0][:3, 2], atol=1e-5)
    # orbit cameras converge: the frustum fit centres the sphere at the look-at point
    np.testing.assert_allclose(ds.normalization[:3, 3].numpy(), [0.5, -1.0, 2.0], atol=1e-6)


def test_opencv_distortion_round_trip_and_rays(tmp_path):
    k = dict(k1=-0.2, k2=0.05, p1=0.01, p2=-0.005, k3=0.01)
    meta, c2ws = make_nerfstudio(tmp_path, n=2, camera_model="OPENCV", **k)

    def distort(x, y):  # nerfstudio camera_utils radial-tangential model, written out independently
        r2 = x * x + y * y
        radial = 1 + k["k1"] * r2 + k["k2"] * r2 ** 2 + k["k3"] * r2 ** 3
        return (x * radial + 2 * k["p1"] * x * y + k["p2"] * (r2 + 2 * x * x),
                y * radial + k["p1"] * (r2 + 2 * y * y) + 2 * k["p2"] * x * y)

    ds = load_dataset(tmp_path / "transforms.json")
    assert ds.distortion.shape == (2, 6)
    x = np.array([0.9, -0.5, 2.4])
    for i, c2w in enumerate(c2ws):
        _ray_hits(ds, i, project_opengl(20.0, 21.0, 8.3, 5.8, c2w, x, distort), x)
    xy = torch.rand(50, 2, dtype=torch.float64) - 0.5
    dist = ds.distortion[:1].double().expand(50, 6)
    from render.recon.dataset import undistort_opencv
    torch.testing.assert_close(undistort_opencv(distort_opencv(xy, dist), dist), xy, atol=1e-9, rtol=0)


def test_fisheye_rays(tmp_path):
    kk = [0.05, -0.01, 0.002, 0.0]
    meta, c2ws = make_nerfstudio(tmp_path, n=2, camera_model="OPENCV_FISHEYE", k1=kk[0], k2=kk[1], k3=kk[2], k4=kk[3])

    def distort(x, y):
        r = np.hypot(x, y)
        th = np.arctan(r)
        thd = th * (1 + kk[0] * th ** 2 + kk[1] * th ** 4 + kk[2] * th ** 6 + kk[3] * th ** 8)
        return x * thd / r, y * thd / r

    ds = load_dataset(tmp_path)
    x = np.array([1.2, -0.4, 2.3])
    for i, c2w in enumerate(c2ws):
        _ray_hits(ds, i, project_opengl(20.0, 21.0, 8.3, 5.8, c2w, x, distort), x)
    assert torch.allclose(distort_fisheye(torch.zeros(1, 2), ds.distortion[:1]), torch.zeros(1, 2))


def test_per_frame_intrinsics_priors_and_applied_transform(tmp_path):
    meta, c2ws = make_nerfstudio(tmp_path, n=2)
    applied = [[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]]
    meta["applied_transform"] = applied
    rng = np.random.default_rng(3)
    for i, fr in enumerate(meta["frames"]):
        fr["fl_x"] = 20.0 + i
        np.save(tmp_path / f"d{i}.npy", rng.random((12, 16)).astype(np.float32))
        np.save(tmp_path / f"n{i}.npy", rng.random((3, 12, 16)).astype(np.float32))
        np.save(tmp_path / f"m{i}.npy", rng.random((12, 16)) > 0.5)
        fr.update(mono_depth_path=f"d{i}.npy", mono_normal_path=f"n{i}.npy", mask_path=f"m{i}.npy")
    del meta["fl_x"]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    ds = load_dataset(tmp_path)
    assert ds.intrinsics[:, 0, 0].tolist() == [20.0, 21.0]
    assert ds.depth_kind == "mono" and ds.depths.shape == (2, 12, 16)
    np.testing.assert_allclose(ds.depths[1].numpy(), np.load(tmp_path / "d1.npy"))
    assert ds.normals.shape == (2, 12, 16, 3) and ds.masks.shape == (2, 12, 16)
    np.testing.assert_array_equal(ds.applied_transform, np.array(applied, dtype=float))


def test_metric_depth_png_and_normalization_from_depth(tmp_path):
    import imageio.v3 as iio

    meta, c2ws = make_nerfstudio(tmp_path, n=2)
    for i, fr in enumerate(meta["frames"]):
        iio.imwrite(tmp_path / f"depth{i}.png", np.full((12, 16), 3000, np.uint16))  # 3 m in millimetres
        fr["depth_file_path"] = f"depth{i}.png"
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    ds = load_dataset(tmp_path)
    assert ds.depth_kind == "metric"
    np.testing.assert_allclose(ds.depths.numpy(), 3.0)
    # the fitted sphere holds the back-projected points: every depth point lies inside radius 1
    o, d = ds.rays(torch.zeros(4, dtype=torch.long), torch.tensor([[0.5, 0.5], [15.5, 0.5], [0.5, 11.5], [8, 6]]))
    z = d @ ds.cam_to_world[0, :3, 2]
    pts = o + d * (3.0 / ds.scale / z)[:, None]
    assert (pts.norm(dim=-1) <= 1.0 + 1e-5).all()


def test_frustum_fit_for_cameras_looking_out(tmp_path):
    # cameras on a ring looking outwards (a room): the sphere is centred on them and holds them all
    from render.recon.dataset import fit_unit_sphere

    from .helpers import look_at_opencv

    c2w = np.stack([look_at_opencv([np.cos(a), 2.0, np.sin(a)], [3 * np.cos(a), 2.0, 3 * np.sin(a)], up=(0, 1, 0))
                    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)])
    k = np.repeat(np.array([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]])[None], 8, 0)
    m = fit_unit_sphere(c2w, k, 16, 12)
    np.testing.assert_allclose(m[:3, 3], [0.0, 2.0, 0.0], atol=1e-9)
    assert m[0, 0] > 2.0 and np.allclose(m[:3, :3], m[0, 0] * np.eye(3))


def test_to_device_keeps_everything(tmp_path):
    make_nerfstudio(tmp_path, n=2)
    ds = load_dataset(tmp_path)
    moved = ds.to("cpu")
    assert moved is not ds and moved.names == ds.names and moved.normalization.dtype == torch.float64
    torch.testing.assert_close(moved.cam_to_world, ds.cam_to_world)


def test_ns_process_data_layout_per_frame_fisheye_applied_transform_masks_depth(tmp_path):
    """A transforms.json as ns-process-data writes it for a fisheye capture: everything per frame (w, h, fl_x, fl_y,
    cx, cy, k1..k4), `applied_transform`, masks as 8-bit single-channel PNG (0 = ignore, what nerfstudio's
    mask loader reads), metric depth as .npy through depth_unit_scale_factor."""
    import imageio.v3 as iio
    from PIL import Image

    meta, c2ws = make_nerfstudio(tmp_path, n=2, camera_model="OPENCV_FISHEYE", depth_unit_scale_factor=0.01)
    applied = [[0, 1, 0, 0.5], [1, 0, 0, -0.2], [0, 0, -1, 0.1]]
    meta["applied_transform"] = applied
    intr = [dict(fl_x=19.0, fl_y=20.5, cx=8.1, cy=5.7, k1=0.04, k2=-0.01, k3=0.0, k4=0.001),
            dict(fl_x=22.0, fl_y=21.0, cx=7.6, cy=6.2, k1=-0.02, k2=0.003, k3=0.001, k4=0.0)]
    rng = np.random.default_rng(5)
    masks = [rng.random((12, 16)) > 0.3 for _ in range(2)]
    for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
        del meta[key]
    for i, fr in enumerate(meta["frames"]):
        fr.update(intr[i], w=16, h=12, mask_path=f"masks/m{i}.png", depth_file_path=f"depths/d{i}.npy")
        (tmp_path / "masks").mkdir(exist_ok=True)
        (tmp_path / "depths").mkdir(exist_ok=True)
        iio.imwrite(tmp_path / "masks" / f"m{i}.png", (masks[i] * 255).astype(np.uint8))
        np.save(tmp_path / "depths" / f"d{i}.npy", np.full((12, 16), 250.0 + i, np.float32))
        assert Image.open(tmp_path / "masks" / f"m{i}.png").mode == "L"  # one channel, as nerfstudio expects
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    ds = load_dataset(tmp_path)
    assert ds.camera_model == "OPENCV_FISHEYE"
    np.testing.assert_allclose(ds.intrinsics[:, [0, 1, 0, 1], [0, 1, 2, 2]].numpy(), [[19.0, 20.5, 8.1, 5.7], [22.0, 21.0, 7.6, 6.2]], rtol=1e-6)
    np.testing.assert_array_equal(ds.masks.numpy(), np.stack(masks))
    assert ds.depth_kind == "metric"
    np.testing.assert_allclose(ds.depths[:, 0, 0].numpy(), [2.5, 2.51], rtol=1e-6)
    np.testing.assert_array_equal(ds.applied_transform, np.array(applied, dtype=float))
    x = np.array([0.9, -0.7, 2.2])
    for i, c2w in enumerate(c2ws):  # poses are used as written (applied_transform recorded, not undone)
        kk = [intr[i][f"k{j}"] for j in range(1, 5)]

        def distort(x, y, kk=kk):
            r = np.hypot(x, y)
            th = np.arctan(r)
            thd = th * (1 + kk[0] * th ** 2 + kk[1] * th ** 4 + kk[2] * th ** 6 + kk[3] * th ** 8)
            return x * thd / r, y * thd / r

        uv = project_opengl(intr[i]["fl_x"], intr[i]["fl_y"], intr[i]["cx"], intr[i]["cy"], c2w, x, distort)
        _ray_hits(ds, i, uv, x)
