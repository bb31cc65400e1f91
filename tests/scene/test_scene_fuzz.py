"""Random one-line mutations of valid scenes either load or raise a one-line SceneError, never anything else."""

import random
import re
from pathlib import Path

import numpy as np

from render.scene import SceneError, load_string

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_XML = '''<scene version="3.0.0">
<default name="a" value="0.3"/>
<bsdf type="twosided" id="ts"><bsdf type="roughplastic"><float name="alpha" value="$a"/></bsdf></bsdf>
<texture type="checkerboard" id="cb"><rgb name="color0" value="0.1 0.2 0.3"/></texture>
<shape type="sphere"><point name="center" value="1 2 3"/><ref id="ts"/>
<emitter type="area"><spectrum name="radiance" value="400:1, 700:2"/></emitter></shape>
<shape type="disk"><bsdf type="roughconductor"><string name="material" value="Au"/>
<float name="alpha_u" value="0.1"/><float name="alpha_v" value="0.2"/></bsdf></shape>
<shape type="cube"><bsdf type="roughdielectric"><ref name="alpha" id="cb"/></bsdf></shape>
<emitter type="spot"><float name="cutoff_angle" value="30"/>
<transform name="to_world"><lookat origin="0 5 0" target="0 0 0" up="0 0 1"/></transform></emitter>
<emitter type="directional"><vector name="direction" value="0 -1 0"/></emitter>
<integrator type="aov"><string name="aovs" value="d:depth"/><integrator type="direct"/></integrator>
</scene>'''


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    line, op = lines[i], rng.randrange(5)
    if op == 0 and line:
        j = rng.randrange(len(line))
        lines[i] = line[:j] + line[j + 1:]
    elif op == 1:
        j = rng.randrange(len(line) + 1)
        lines[i] = line[:j] + rng.choice('<>"/=$ 0.1-xe:,abc') + line[j:]
    elif op == 2:
        lines.insert(i, line)
    elif op == 3:
        lines[i] = ""
    else:
        numbers = ["-1", "0", "nan", "1e40", "3.5", "1.0.0", "", "7"]
        lines[i] = re.sub(r"\d+(\.\d+)?", lambda m: rng.choice(numbers), line, count=1)
    return "\n".join(lines)


def test_mutated_scenes_fail_cleanly():
    rng = random.Random(0)
    files = ("scenes/cbox/cbox.xml", "scenes/spheres/spheres.xml")
    sources = [((ROOT / f).read_text(), (ROOT / f).parent) for f in files]
    sources.append((PLUGINS_XML, ROOT))
    outcomes = {"ok": 0, "error": 0}
    with np.errstate(all="raise"):  # numeric overflow must be caught as a SceneError, not warn
        for _ in range(400):
            text, base = rng.choice(sources)
            try:
                load_string(_mutate(rng, text), base)
                outcomes["ok"] += 1
            except SceneError as e:
                assert "\n" not in str(e) and str(e).startswith("<string>:"), str(e)
                outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 50
