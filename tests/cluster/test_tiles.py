"""Tiles x sample batches merge to the single-process render (same seed), for box and gaussian filters."""

import numpy as np
import pytest

from render.cluster.tiles import FrameAccumulator, RenderJob, TileRenderer, auto_tiling, plan_work, render_tiled
from render.errors import UserError
from render.render import render_loaded
from render.scene import load_scene


@pytest.mark.parametrize("scene_path, filt", [("scenes/cbox/cbox.xml", "gaussian"), ("scenes/spheres/spheres.xml", "box")])
def test_tiled_equals_single_process(scene_path, filt):
    scene = load_scene(scene_path)
    assert scene.sensor.film.rfilter.type == filt
    job = RenderJob(spp=6, seed=3, width=37, height=29)
    whole = render_loaded(scene, spp=6, seed=3, width=37, height=29, integrator="fused").rgb
    # Odd tiles and sample batches that do not divide the counts, merged in a shuffled order.
    items = plan_work(37, 29, 6, tile=11, batch_spp=4)
    assert sum(i.samples for i in items) == 37 * 29 * 6
    order = np.random.default_rng(0).permutation(len(items))
    tiled = render_tiled(scene, job, items=[items[i] for i in order])
    assert whole.mean() > 0.01
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-6)


def test_missing_units_change_the_image():
    """The comparison above can fail: dropping one unit (a lost tile) changes the merged image."""
    scene = load_scene("scenes/cbox/cbox.xml")
    job = RenderJob(spp=2, seed=0, width=24, height=24)
    items = plan_work(24, 24, 2, tile=8)
    full = render_tiled(scene, job, items=items)
    partial = render_tiled(scene, job, items=items[:-1])
    assert np.abs(full - partial).max() > 1e-3


def test_plan_covers_every_pixel_and_sample_once():
    items = plan_work(100, 70, 10, tile=32, batch_spp=3)
    count = np.zeros((70, 100), dtype=int)
    for it in items:
        count[it.y0:it.y0 + it.h, it.x0:it.x0 + it.w] += it.spp
    assert (count == 10).all()
    tile, batch = auto_tiling(512, 512, 256, workers=2)
    n = len(plan_work(512, 512, 256, tile=tile, batch_spp=batch))
    assert 8 <= n <= 64 and tile >= 32


def test_bad_tiling_is_a_user_error():
    with pytest.raises(UserError, match="--tile"):
        plan_work(10, 10, 4, tile=0)
    with pytest.raises(UserError, match="--batch-spp"):
        plan_work(10, 10, 4, batch_spp=0)


def test_accumulator_develops_like_film():
    acc = FrameAccumulator(4, 3)
    a = np.zeros((2 * 2, 4))
    a[:, :3], a[:, 3] = 2.0, 4.0
    acc.add((1, 1, 2, 2), a, samples=4)
    img = acc.develop()
    assert img.shape == (3, 4, 3) and np.allclose(img[1:3, 1:3], 0.5) and img[0].sum() == 0


def test_cancel_on_interrupt_cancels_the_current_outstanding_tasks_and_stops_the_bar():
    from render.cluster.ray_backend import cancel_on_interrupt

    class FakeRay:
        def __init__(self):
            self.cancelled = []

        def cancel(self, ref, force=False):
            assert force
            self.cancelled.append(ref)

    class FakeBar:
        stopped = False

        def stop(self):
            self.stopped = True

    ray, bar = FakeRay(), FakeBar()
    pending = ["a", "b", "c"]
    with pytest.raises(KeyboardInterrupt):
        with cancel_on_interrupt(ray, lambda: pending, (bar, 0)):
            pending = ["c"]  # the loop has moved on: only what is still outstanding is cancelled
            raise KeyboardInterrupt
    assert ray.cancelled == ["c"] and bar.stopped
    ray2, bar2 = FakeRay(), FakeBar()
    with cancel_on_interrupt(ray2, lambda: ["x"], (bar2, 0)):
        pass
    assert ray2.cancelled == [] and bar2.stopped
