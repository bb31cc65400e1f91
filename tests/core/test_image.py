"""Image output: EXR round trips (RGB + AOV channels, exact float32), PNG encoding, atomic writes, no overwrite."""

import numpy as np
import pytest

from render.core.image import linear_to_srgb, read_exr_channels, to_png8, write_exr, write_image, write_png
from render.errors import UserError


def test_exr_round_trip_exact(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 50, (7, 5, 3)).astype(np.float32)
    rgb[0, 0] = [1e-8, 6.5e4, 3.0e5]  # beyond half-float range: must survive as float32
    depth = rng.uniform(0, 10, (7, 5)).astype(np.float32)
    normal = rng.normal(size=(7, 5, 3)).astype(np.float32)
    write_exr(tmp_path / "a.exr", {"RGB": rgb, "depth": depth, "normal": normal})
    ch = read_exr_channels(tmp_path / "a.exr")
    assert np.array_equal(ch["RGB"], rgb)
    assert np.array_equal(ch["depth"], depth)
    assert np.array_equal(np.stack([ch["normal.X"], ch["normal.Y"], ch["normal.Z"]], -1), normal)


def test_exr_read_with_imageio_agrees(tmp_path):
    """Guards against an EXR plugin that silently misreads: the standard reader must agree with ours."""
    rgb = np.linspace(0, 4, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    write_exr(tmp_path / "b.exr", {"RGB": rgb})
    import OpenEXR

    with OpenEXR.File(str(tmp_path / "b.exr")) as f:
        assert np.array_equal(f.channels()["RGB"].pixels, rgb)


def test_png_is_srgb_8bit(tmp_path):
    import imageio.v3 as iio

    rgb = np.array([[[0.0, 0.5, 1.0], [2.0, 0.0031308, 0.2140]]], np.float32)
    write_png(tmp_path / "a.png", rgb)
    img = iio.imread(tmp_path / "a.png")
    assert img.dtype == np.uint8 and img.shape == (1, 2, 3)
    assert img[0, 0].tolist() == [0, 188, 255] and img[0, 1, 0] == 255
    assert np.array_equal(img, to_png8(rgb))
    assert abs(float(linear_to_srgb(np.array(0.214))) - 0.5) < 1e-3


def test_no_overwrite_and_atomic(tmp_path):
    path = tmp_path / "a.exr"
    path.write_bytes(b"old")
    with pytest.raises(UserError, match="exists; pass --force"):
        write_image(path, np.zeros((2, 2, 3), np.float32))
    assert path.read_bytes() == b"old"
    with pytest.raises(UserError, match="unsupported extension"):
        write_image(tmp_path / "a.tiff", np.zeros((2, 2, 3), np.float32))
    # A failing write leaves neither a partial file nor a temp file behind.
    with pytest.raises(Exception):
        write_exr(tmp_path / "c.exr", {"RGB": np.zeros((2, 2, 3), np.float32), "bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.exr"]
    write_image(path, np.ones((2, 2, 3), np.float32), force=True)
    assert np.array_equal(read_exr_channels(path)["RGB"], np.ones((2, 2, 3), np.float32))


def test_write_text_is_atomic_and_needs_force(tmp_path):
    from render.core.image import write_text
    from render.errors import UserError

    p = tmp_path / "sub" / "a.json"
    write_text(p, "one")
    assert p.read_text() == "one"
    with pytest.raises(UserError, match="--force"):
        write_text(p, "two")
    write_text(p, "two", force=True)
    assert p.read_text() == "two" and [q.name for q in p.parent.iterdir()] == ["a.json"]
