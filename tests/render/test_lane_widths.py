"""Lane and packet widths other than the CPU's default build (cuda/include/radiant/lane.h RADIANT_LANES, bvh_wide.h
RADIANT_PACKET_WIDTH), each its own build of the extension (RADIANT_EXTRA_CFLAGS is part of the cache key), run in a
child pytest of some of tests/render/test_lanes_path.py's bitwise lane-vs-scalar checks and of tests/kernels/
test_bvh.py's packet-vs-single-ray traversal checks.
- On an AVX2 CPU: 16 lanes with 16-ray packets (the AVX-512 build's default, here in generic vector code: the same
  traversal and lane loop as on AVX-512, but for the intrinsics) and, marked slow, 16 lanes as two 8-ray packets.
- On an AVX-512 CPU: 16 lanes as two 8-ray packets (-DRADIANT_PACKET_WIDTH=8) and 8 lanes (-DRADIANT_LANES=8).
These builds check the code; on AVX2 they are not fast (GCC's 16-float vectors over AVX2 run several times slower)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from render.kernels.build import _cpu_flags

ROOT = Path(__file__).resolve().parents[2]
CPU = _cpu_flags()  # the kernels' build's view of the CPU (its model and feature flags)
X86_AVX2 = platform.machine() in ("x86_64", "AMD64") and " avx2" in CPU
if " avx512f" in CPU:
    BUILDS = [pytest.param("-DRADIANT_PACKET_WIDTH=8", id="16-lanes-2x8-packets"),
              pytest.param("-DRADIANT_LANES=8", id="8-lanes")]
else:
    BUILDS = [pytest.param("-DRADIANT_LANES=16 -DRADIANT_PACKET_WIDTH=16", id="16-lanes-16-packets"),
              pytest.param("-DRADIANT_LANES=16", id="16-lanes-2x8-packets", marks=pytest.mark.slow)]


@pytest.mark.skipif(not X86_AVX2, reason="ray packets need AVX2")
@pytest.mark.parametrize("flags", BUILDS)
def test_other_widths_match_the_scalar_loop(flags):
    env = dict(os.environ, RADIANT_EXTRA_CFLAGS=(os.environ.get("RADIANT_EXTRA_CFLAGS", "") + " " + flags).strip(),
               RADIANT_NO_CUDA="1")
    # The default hybrid and pure packets (emitters hidden, depth 3) on every scene; the other checks, packets on.
    f = "tests/render/test_lanes_path.py::test_lane_loop_"
    ids = [f"{f}matches_scalar_loop_bitwise[{p}-{s}]" for p in ("None--1-False", "0-3-True")
           for s in ("cbox", "spheres", "lights")]
    ids += [f"{f}twosided_diffuse_and_deferred_rows[None]", f"{f}mesh_emitters_with_normals_and_flip[True]",
            f"{f}sphere_light_inside_and_outside[None]",
            "tests/kernels/test_bvh.py::test_packet_traversal_matches_single_ray"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ids],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "failed" not in r.stdout and " passed" in r.stdout
