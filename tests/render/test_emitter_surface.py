"""Area-emitter shapes without a bsdf do not reflect light (Mitsuba 3 gives them a black diffuse BSDF).

Regression test: the loader used to give them the ordinary default (diffuse, reflectance 0.5), so light bounced off
the back of every area light; scenes/lights/lights.xml rendered ~0.6% brighter than Mitsuba. Here a large
emitter hangs just above a diffuse floor, which makes that extra bounce worth tens of percent.
"""

import numpy as np
import pytest

from render.render import render_scene

SCENE = """<scene version="3.0.0">
    <integrator type="path"><integer name="max_depth" value="6"/></integrator>
    <sensor type="perspective">
        <float name="fov" value="60"/>
        <transform name="to_world"><lookat origin="0, 0.25, 3" target="0, 0.1, 0" up="0, 1, 0"/></transform>
        <sampler type="independent"><integer name="sample_count" value="64"/></sampler>
        <film type="hdrfilm"><integer name="width" value="24"/><integer name="height" value="16"/>
            <rfilter type="box"/></film>
    </sensor>
    <shape type="rectangle">
        <transform name="to_world"><scale value="2"/><rotate x="1" angle="-90"/></transform>
        <bsdf type="diffuse"><rgb name="reflectance" value="0.8"/></bsdf>
    </shape>
    <shape type="rectangle">
        <transform name="to_world"><scale value="2"/><rotate x="1" angle="90"/><translate y="0.5"/></transform>
        <emitter type="area"><rgb name="radiance" value="1"/></emitter>
    </shape>
</scene>
"""


def test_area_emitter_shape_is_black(tmp_path):
    path = tmp_path / "emitter_over_floor.xml"
    path.write_text(SCENE)
    ours = render_scene(path, spp=64, seed=3).rgb
    mi = pytest.importorskip("mitsuba")
    mi.set_variant("scalar_rgb")
    ref = np.array(mi.render(mi.load_file(str(path)), spp=256, seed=3))
    # Bottom half: the floor (the top half sees the emitter's face, radiance 1 either way).
    ratio = ours[8:].mean() / ref[8:].mean()
    assert abs(ratio - 1) < 0.02, f"floor brightness vs Mitsuba: ratio {ratio:.4f}"
