"""MonoSDF reader: decomposition of world_mat, pixel conventions, normalization from scale_mat, priors."""

import numpy as np
import pytest
import torch

from render.errors import UserError
from render.recon.dataset import load_dataset
from render.recon.monosdf import decompose_projection, monosdf_world_mat

from .helpers import make_monosdf, project


def test_decompose_projection_recovers_k_and_pose():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    k = np.array([[300.0, 0.5, 160.0], [0, 310.0, 120.0], [0, 0, 1]])
    t = rng.normal(size=3)
    for lam in (1.0, 2.7, -0.4):
        p = lam * k @ np.concatenate([q, t[:, None]], 1)
        k2, c2w = decompose_projection(p, "P")
        np.testing.assert_allclose(k2, k, rtol=1e-9, atol=1e-7)
        np.testing.assert_allclose(c2w[:3, :3], q.T, atol=1e-9)
        np.testing.assert_allclose(c2w[:3, 3], -q.T @ t, atol=1e-9)


def test_reader_projects_known_point_to_right_pixel(tmp_path):
    k, c2ws, scale_mat = make_monosdf(tmp_path, n=3)
    ds = load_dataset(tmp_path)
    assert ds.num_images == 3 and (ds.height, ds.width) == (12, 16)
    assert ds.names == ["000000", "000001", "000002"]
    np.testing.assert_allclose(ds.intrinsics.numpy(), np.stack([k] * 3), atol=1e-4)
    np.testing.assert_allclose(ds.normalization.numpy(), scale_mat)
    x_world = scale_mat[:3, 3] + np.array([0.3, -0.2, 0.1])
    x_norm = ds.to_normalized(torch.tensor(x_world)).numpy()
    for i, c2w in enumerate(c2ws):
        uv = project(k, c2w, x_world)
        assert 0 < uv[0] < 16 and 0 < uv[1] < 12
        o, d = ds.rays(torch.tensor([i]), torch.tensor(uv[None], dtype=torch.float32))
        o, d = o[0].double().numpy(), d[0].double().numpy()
        t = (x_norm - o) @ d
        np.testing.assert_allclose(o + t * d, x_norm, atol=1e-4)
        # cameras keep orthonormal axes in normalized space; centre maps back to the world eye
        r = ds.cam_to_world[i, :3, :3].double()
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
        np.testing.assert_allclose(ds.to_world(ds.cam_to_world[i, :3, 3].double()).numpy(), c2w[:3, 3], atol=1e-4)


def test_reader_priors_and_inverse_normalization(tmp_path):
    make_monosdf(tmp_path, n=2)
    ds = load_dataset(tmp_path / "cameras.npz")
    assert ds.depths.shape == (2, 12, 16) and ds.normals.shape == (2, 12, 16, 3) and ds.masks.dtype == torch.bool
    torch.testing.assert_close(ds.normals.norm(dim=-1), torch.ones(2, 12, 16), atol=1e-5, rtol=0)
    raw = np.load(tmp_path / "000001_normal.npy")
    n = np.moveaxis(raw, 0, -1) * 2 - 1
    np.testing.assert_allclose(ds.normals[1].numpy(), n / np.linalg.norm(n, axis=-1, keepdims=True), atol=1e-5)
    pts = torch.randn(100, 3, dtype=torch.float64) * 5
    torch.testing.assert_close(ds.to_world(ds.to_normalized(pts)), pts, atol=1e-12, rtol=0)
    assert ds.scale == pytest.approx(2.5)


def test_world_mat_writer_round_trip(tmp_path):
    k, c2ws, scale_mat = make_monosdf(tmp_path, n=2, priors=False)
    p = monosdf_world_mat(k, c2ws[0])
    k2, c2w = decompose_projection(p[:3], "P")
    k2[:2, 2] += 0.5
    np.testing.assert_allclose(k2, k, atol=1e-9)
    np.testing.assert_allclose(c2w, c2ws[0], atol=1e-9)


def test_split_holds_out_every_kth(tmp_path):
    make_monosdf(tmp_path, n=3, priors=False)
    ds = load_dataset(tmp_path)
    assert ds.split(2) == ([1], [0, 2])
    assert ds.split(0) == ([0, 1, 2], [])
    assert ds.depths is None and ds.normals is None and ds.masks is None


def test_missing_dataset_is_user_error(tmp_path):
    with pytest.raises(UserError, match="expected cameras.npz"):
        load_dataset(tmp_path)
